"""Write the generated column tables of docs/export.md from src/sr2fhir/export/tables.py COLUMNS
(tests/export/test_docs.py checks it).

Usage: .venv/bin/python scripts/make_export_doc.py
"""

from __future__ import annotations

import re
from pathlib import Path

from sr2fhir.export.tables import markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "export.md"
text = DOC.read_text(encoding="utf-8")
new, n = re.subn(r"(<!-- columns: generated .*?-->\n)(.*?)(<!-- end columns -->)", lambda m: m.group(1) + markdown() + m.group(3), text, flags=re.S)
if n != 1:
    raise SystemExit(f"{DOC}: the generated-table markers are missing")
DOC.write_text(new, encoding="utf-8")
print(f"{DOC}: columns written")
