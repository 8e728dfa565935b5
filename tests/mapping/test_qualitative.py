"""ImagingQualitativeEvaluation (ConceptMap 05): which items qualify, and their values."""

from __future__ import annotations

from typing import Any

import pytest

from sr2fhir.dicom.content import Code
from sr2fhir.mapping.qualitative import is_qualitative
from tests.helpers import Converted, codings, convert_doc, document, group, item

UMLS_QE = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/umls", "code": "C0034375", "display": "Qualitative Evaluations"}]}]

# The IG's exclusion list (architecture.md): CODE/TEXT children of a group that are not QEs.
IG_EXCLUDED = [
    ("DCM", "112039"), ("DCM", "121071"), ("DCM", "130400"), ("NCIt", "C67447"),
    ("SCT", "276214006"), ("SCT", "363698007"), ("SCT", "370129005"),
]


@pytest.mark.parametrize(("scheme", "value"), IG_EXCLUDED)
def test_ig_exclusion_list(scheme: str, value: str) -> None:
    assert not is_qualitative(item("CONTAINS", "CODE", Code(value, scheme, "x"), Code("1", "SCT", "y")))


def test_legacy_srt_codes_are_recognised() -> None:
    """SNOMED-RT 'G-C0E3' is Finding Site (363698007): excluded, like its SCT form."""
    assert not is_qualitative(item("CONTAINS", "CODE", Code("G-C0E3", "SRT", "Finding Site"), Code("1", "SCT", "y")))


def test_context_relationships_are_not_qualitative() -> None:
    assert not is_qualitative(item("HAS CONCEPT MOD", "CODE", Code("121403", "DCM", "Level of Significance"), Code("1", "SCT", "y")))
    assert is_qualitative(item("CONTAINS", "CODE", Code("121403", "DCM", "Level of Significance"), Code("1", "SCT", "y")))


def test_qualitative_container(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1501_containers"]
    exp = manifest["fixtures"]["tid1501_containers"]["qualitative_container"]
    qes = [q for q in c.profile("imaging-qualitative-evaluation") if not q.get("derivedFrom")]
    assert [codings(q["code"])[0][1] for q in qes] == [e["code"] for e in exp]
    assert codings(qes[0]["valueCodeableConcept"])[0][1] == exp[0]["value_code"]
    assert qes[1]["valueCodeableConcept"] == {"text": exp[1]["text"]}
    for q in qes:
        assert q["category"] == UMLS_QE and "bodyStructure" not in q
    # Container QEs have no group: their device falls back to the participant device (D-7).
    assert c.resolve(qes[0]["device"])["meta"]["profile"][0].endswith("dicom-participant-device")


def test_group_qe_copies_group_selections_and_site(fixture_conversions: dict[str, Converted]) -> None:
    c = fixture_conversions["tid1410_planar_regions"]
    for g in c.profile("imaging-measurement-group"):
        qe = next(c.resolve(m) for m in g["hasMember"] if c.resolve(m)["meta"]["profile"][0].endswith("qualitative-evaluation"))
        assert qe["derivedFrom"] == g["derivedFrom"]
        assert qe.get("bodyStructure") == g.get("bodyStructure") and qe.get("bodySite") == g.get("bodySite")


def test_empty_value_is_skipped_and_reported() -> None:
    qe = item("CONTAINS", "TEXT", Code("121106", "DCM", "Comment"), None)
    c = convert_doc(document(group(qe)))
    assert not c.profile("imaging-qualitative-evaluation") and "qualitative-without-value" in c.rules()
