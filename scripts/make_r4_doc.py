"""Write the generated table of docs/r4.md from src/sr2fhir/fhir/r4.py ROWS (tests/fhir/test_r4.py checks it).

Usage: .venv/bin/python scripts/make_r4_doc.py
"""

from __future__ import annotations

import re
from pathlib import Path

from sr2fhir.fhir.r4 import markdown_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "r4.md"
text = DOC.read_text(encoding="utf-8")
new, n = re.subn(r"(<!-- rows: generated .*?-->\n)(.*?)(<!-- end rows -->)", lambda m: m.group(1) + markdown_table() + m.group(3), text, flags=re.S)
if n != 1:
    raise SystemExit(f"{DOC}: the generated-table markers are missing")
DOC.write_text(new, encoding="utf-8")
print(f"{DOC}: table written ({markdown_table().count(chr(10)) - 2} rows)")
