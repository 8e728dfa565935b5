"""Modifiers of measurements and evaluations (D-33): nothing that changes a value's meaning is lost.

Expected codes come from DICOM: CID 3488 Derivation via PS3.16 Annex O (SRT R-00317 "Mean" is SCT
373098007, G-A437 "Maximum" is SCT 56851009); the real reports are read independently with pydicom.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pydicom
import pytest

from sr2fhir.dicom.content import Code, ContentItem, MeasuredValue
from sr2fhir.diagnostics import Severity
from sr2fhir.fhir.ids import resource_id
from tests.helpers import FIXTURES, IG_EXAMPLE, SHARED, codings, convert_doc, convert_one, document, group, item

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"
SUV = Code("126401", "DCM", "SUVbw")
UNIT = Code("{SUVbw}g/ml", "UCUM", "Standardized Uptake Value body weight")
DERIVATION = Code("121401", "DCM", "Derivation")


def suv(derivation: Code, value: str, *extra: ContentItem) -> ContentItem:
    return item("CONTAINS", "NUM", SUV, MeasuredValue(value, unit=UNIT), [item("HAS CONCEPT MOD", "CODE", DERIVATION, derivation), *extra])


def test_derivation_becomes_a_component_and_names_the_code() -> None:
    c = convert_doc(document(group(suv(Code("R-00317", "SRT", "Mean"), "2.5"), suv(Code("G-A437", "SRT", "Maximum"), "7.25"))))
    mean, maximum = c.profile("imaging-measurement")
    assert mean["component"] == [{"code": {"coding": [{"system": DCM, "code": "121401", "display": "Derivation"}]}, "valueCodeableConcept": {"coding": [{"system": SCT, "code": "373098007", "display": "Mean"}]}}]
    assert codings(maximum["component"][0]["valueCodeableConcept"]) == [(SCT, "56851009")]
    assert mean["code"]["text"] == "SUVbw (Mean)" and maximum["code"]["text"] == "SUVbw (Maximum)"
    assert mean["code"]["coding"] == maximum["code"]["coding"] == [{"system": DCM, "code": "126401", "display": "SUVbw"}]
    assert "not-mapped" not in c.rules()


def test_numeric_and_text_modifiers() -> None:
    kernel = item("INFERRED FROM", "NUM", Code("tQ7SWu", "99PYRADIOMICS", "Kernel size"), MeasuredValue("1.0", unit=Code("mm", "UCUM", "millimeter")))
    note = item("HAS CONCEPT MOD", "TEXT", Code("121106", "DCM", "Comment"), "resampled")
    num = item("CONTAINS", "NUM", Code("81827009", "SCT", "Diameter"), MeasuredValue("4", unit=Code("mm", "UCUM", "millimeter")), [kernel, note])
    m = convert_doc(document(group(num))).one("imaging-measurement")
    assert m["component"][0]["valueQuantity"] == {"value": pytest.approx(1), "unit": "millimeter", "system": "http://unitsofmeasure.org", "code": "mm"}
    assert str(m["component"][0]["valueQuantity"]["value"]) == "1.0"  # the DS digits, kept
    assert m["component"][1] == {"code": {"coding": [{"system": DCM, "code": "121106", "display": "Comment"}]}, "valueString": "resampled"}
    assert m["code"]["text"] == "Diameter (Kernel size 1.0 millimeter, Comment resampled)"


def test_what_cannot_be_a_component_is_a_warning() -> None:
    nested = item("HAS CONCEPT MOD", "CODE", Code("G-A1F8", "SRT", "Topographical modifier"), Code("T-11531", "SRT", "Vertebral foramen"))
    mod = item("HAS CONCEPT MOD", "CODE", DERIVATION, Code("R-00317", "SRT", "Mean"), [nested])
    wave = item("HAS PROPERTIES", "WAVEFORM", Code("1", "99X", "Trace"))
    c = convert_doc(document(group(suv(Code("G-A437", "SRT", "Maximum"), "1"), item("CONTAINS", "NUM", SUV, MeasuredValue("2", unit=UNIT), [mod, wave]))))
    warned = {(d.path, d.severity) for d in c.diagnostics.items if d.rule == "not-mapped"}
    assert warned == {("1.1.1.2.1.1", Severity.WARNING), ("1.1.1.2.2", Severity.WARNING)}


def test_qualitative_modifiers() -> None:
    qe = item("CONTAINS", "CODE", Code("RID36042", "RADLEX", "Calcification"), Code("373067005", "SCT", "No"),
              [item("HAS CONCEPT MOD", "CODE", Code("C0234421", "UMLS", "Certainty"), Code("1", "99X", "Likely"))])
    c = convert_doc(document(group(qe)))
    q = c.one("imaging-qualitative-evaluation")
    assert q["component"][0]["code"]["coding"][0]["code"] == "C0234421" and q["code"]["text"] == "Calcification (Likely)"


# --- the rule of issue 9, on every real report and fixture ------------------------------------

_SET_ASIDE = {"id", "identifier", "meta", "text", "effectiveDateTime", "issued", "valueQuantity", "dataAbsentReason", "valueCodeableConcept"}


def _signature(item: ContentItem) -> Any:
    """A content item without its value, UID and time: what tells it apart from its siblings."""
    return (item.relationship, item.value_type, item.concept.key if item.concept else None,
            tuple((c.relationship, c.value_type, c.concept.key if c.concept else None, repr(c.value), _children(c)) for c in item.children))


def _children(item: ContentItem) -> Any:
    return tuple((c.relationship, c.value_type, c.concept.key if c.concept else None, repr(c.value), _children(c)) for c in item.children)


def _inputs() -> list[Path]:
    return sorted((SHARED / "data" / "tid1500").glob("*.dcm")) + sorted(FIXTURES.glob("*.dcm")) + [IG_EXAMPLE]


@pytest.mark.parametrize("path", _inputs(), ids=lambda p: p.name)
def test_no_two_measurements_of_a_group_read_the_same(path: Path) -> None:
    """Within a group, measurements equal but for identity, value, time and narrative come from equal SR items."""
    c = convert_one(path)
    doc = c.conversion.document
    item_of = {resource_id(doc.sop_instance_uid or "", "observation", i.path): i for i in doc.root.walk() if i.value_type == "NUM"}
    in_groups = sum(1 for g in doc.root.walk() if g.concept and g.concept.key == ("DCM", "125007") for n in g.children if n.value_type == "NUM" and n.concept)
    checked = 0
    for g in c.profile("imaging-measurement-group"):
        seen: dict[str, list[ContentItem]] = defaultdict(list)
        for ref in g.get("hasMember", []):
            m = c.resolve(ref)
            if "valueQuantity" not in m and "dataAbsentReason" not in m:
                continue
            key = json.dumps({k: v for k, v in m.items() if k not in _SET_ASIDE}, sort_keys=True, default=str)
            seen[key].append(item_of[m["id"]])
            checked += 1
        for items in seen.values():
            assert len({_signature(i) for i in items}) == 1, f"{path.name}: {[i.path for i in items]} differ in the SR but not in FHIR"
    assert checked == in_groups  # every NUM of every group was compared


def test_dcmqi_pet_suv_derivations_match_pydicom() -> None:
    """The dcmqi PET report: every SUVbw Observation names its Derivation, read independently with pydicom."""
    path = SHARED / "data" / "tid1500" / "dcmqi__sr-example__sr.dcm"
    expected: list[str] = []
    stack = [pydicom.dcmread(path)]
    while stack:
        ds = stack.pop()
        for ci in reversed(ds.get("ContentSequence", [])):
            stack.append(ci)
            if ci.get("ValueType") == "NUM" and ci.ConceptNameCodeSequence[0].CodeMeaning == "SUVbw":
                derivations = [m.ConceptCodeSequence[0].CodeMeaning for m in ci.get("ContentSequence", []) if m.ConceptNameCodeSequence[0].CodeValue == "121401"]
                expected.append(f"SUVbw ({derivations[0]})" if derivations else "SUVbw")
    ours = [o["code"].get("text", "SUVbw") for o in convert_one(path).of_type("Observation") if codings(o["code"]) == [(DCM, "126401")]]
    assert len(expected) >= 10 and sorted(ours) == sorted(expected)
    assert len(set(ours)) == len(ours)
