"""Write the generated sections of the docs from the code's tables (tests check them):
docs/r4.md's element table from src/sr2fhir/fhir/r4.py ROWS, docs/export.md's column tables from
src/sr2fhir/export/tables.py COLUMNS.

Usage: .venv/bin/python scripts/make_docs.py
"""

from __future__ import annotations

import re
from pathlib import Path

from sr2fhir.export.tables import markdown
from sr2fhir.fhir.r4 import markdown_table

DOCS = Path(__file__).resolve().parent.parent / "docs"
SECTIONS = [("r4.md", "rows", markdown_table), ("export.md", "columns", markdown)]

for name, marker, make in SECTIONS:
    doc = DOCS / name
    text = doc.read_text(encoding="utf-8")
    new, n = re.subn(rf"(<!-- {marker}: generated .*?-->\n)(.*?)(<!-- end {marker} -->)", lambda m: m.group(1) + make() + m.group(3), text, flags=re.S)
    if n != 1:
        raise SystemExit(f"{doc}: the generated-section markers are missing")
    doc.write_text(new, encoding="utf-8")
    print(f"{doc}: {marker} written")
