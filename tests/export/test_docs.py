"""docs/export.md's column tables are generated from export/tables.py COLUMNS (one definition)."""

from __future__ import annotations

import re

from sr2fhir.export.tables import markdown
from tests.helpers import ROOT


def test_docs_columns_are_generated_from_the_table_definition() -> None:
    doc = (ROOT / "docs" / "export.md").read_text()
    m = re.search(r"<!-- columns: generated .*?-->\n(.*?)<!-- end columns -->", doc, re.S)
    assert m is not None, "docs/export.md lost its generated columns"
    assert m.group(1) == markdown()
