"""Recognising TID 1500, and rejecting everything else with a message that says what it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr2fhir import convert, read
from sr2fhir.diagnostics import Diagnostics
from sr2fhir.errors import ConversionError
from tests.helpers import SHARED


def test_non_tid1500_rejected(non_tid1500_file: Path) -> None:
    with pytest.raises(ConversionError) as e:
        for doc in read(non_tid1500_file):
            convert(doc)
    msg = str(e.value)
    assert non_tid1500_file.name in msg
    if e.value.code == "not-tid1500":
        assert "SOP class" in msg and "root concept" in msg and "template" in msg
        assert e.value.exit_code == 14
    else:
        assert e.value.code == "not-sr" and e.value.exit_code == 13


def test_rdsr_names_its_template() -> None:
    path = SHARED / "data" / "non-tid1500" / "openrem__CT-RDSR-Siemens-Multi-1.dcm"
    (doc,) = read(path)
    with pytest.raises(ConversionError, match=r"X-Ray Radiation Dose SR Storage.*113701.*template 10011"):
        convert(doc)


def test_template_id_variant_is_accepted_with_a_warning() -> None:
    path = SHARED / "data" / "tid1500-variants" / "highdicom__sr_document__1958e5d6_2020-original.dcm"
    d = Diagnostics()
    (doc,) = read(path, diagnostics=d)
    convert(doc, diagnostics=d)
    assert "template-id-variant" in [x.rule for x in d.items]


def test_recognised_by_structure_without_template() -> None:
    from tests.helpers import convert_doc, document, group

    doc = document(group())
    doc.root.template = None
    c = convert_doc(doc)
    assert "no-template-id" in c.rules() and c.profile("imaging-measurement-group")
