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


# --- each value type a component can carry, and what it cannot (issue 25: mutation survivors) ---

TIME = Code("111526", "DCM", "DateTime Started")
KERNEL = Code("tQ7SWu", "99PYRADIOMICS", "Kernel size")


def triplet(c: Code | None) -> str | None:
    """A concept as diagnostics name it: DICOM's (value, scheme, "meaning") notation."""
    return None if c is None else f'({c.value}, {c.scheme}, "{c.meaning}")'


def _with(*children: ContentItem) -> Any:
    num = item("CONTAINS", "NUM", SUV, MeasuredValue("3", unit=UNIT), list(children))
    return convert_doc(document(group(num)))


def test_times_dates_and_the_label_that_names_them() -> None:
    """TIME (PS3.5 TM HHMMSS[.F]) becomes valueTime hh:mm:ss, its fraction dropped (FHIR time has
    no zone, a fraction it may have, but a component's time states when); DATETIME becomes
    valueDateTime; both name the modifier in code.text."""
    c = _with(item("HAS CONCEPT MOD", "TIME", Code("111527", "DCM", "Time"), "101530.25"),
              item("HAS CONCEPT MOD", "DATETIME", TIME, "20240301101500"))
    m = c.one("imaging-measurement")
    assert m["component"][0]["valueTime"] == "10:15:30"
    assert m["component"][1]["valueDateTime"].startswith("2024-03-01T10:15:00")
    assert m["code"]["text"] == f"SUVbw (Time 10:15:30, DateTime Started {m['component'][1]['valueDateTime']})"


def test_a_value_without_its_unit_meaning_is_labelled_by_its_code() -> None:
    """A Measurement Units Code without a Code Meaning: the UCUM code names the unit in code.text."""
    c = _with(item("INFERRED FROM", "NUM", KERNEL, MeasuredValue("1.0", unit=Code("mm", "UCUM", ""))))
    m = c.one("imaging-measurement")
    assert "unit" not in m["component"][0]["valueQuantity"] and m["code"]["text"] == "SUVbw (Kernel size 1.0 mm)"
    bare = _with(item("INFERRED FROM", "NUM", KERNEL, MeasuredValue("2"))).one("imaging-measurement")  # no unit at all
    assert bare["code"]["text"] == "SUVbw (Kernel size 2)"


def test_a_num_modifier_without_a_value_keeps_why() -> None:
    """D-14 for a component: CID 42 Numeric Value Qualifier -> data-absent-reason."""
    nan = MeasuredValue(None, qualifier=Code("114000", "DCM", "Not a number"))
    m = _with(item("INFERRED FROM", "NUM", KERNEL, nan)).one("imaging-measurement")
    assert m["component"][0]["dataAbsentReason"] == {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-a-number"}],
                                                     "text": "Not a number"}
    assert "valueQuantity" not in m["component"][0] and m["code"]["text"] == "SUVbw (Kernel size absent)"


@pytest.mark.parametrize(("child", "kind"), [
    (item("HAS CONCEPT MOD", "TIME", Code("111527", "DCM", "Time"), "1015"), "TIME"),    # too short to be a time
    (item("HAS CONCEPT MOD", "TEXT", Code("121106", "DCM", "Comment"), "   "), "TEXT"),  # blank
    (item("HAS CONCEPT MOD", "DATETIME", TIME, "not a time"), "DATETIME"),
    (item("HAS CONCEPT MOD", "CODE", None, Code("1", "99X", "x")), "CODE"),              # no concept name
    (item("HAS CONCEPT MOD", "IMAGE", Code("260753009", "SCT", "Source"), None), "IMAGE"),
    (item("HAS CONCEPT MOD", None, None, None, reference="1.1.1.1"), "by-reference"),  # type: ignore[arg-type]
], ids=["short-time", "blank-text", "bad-datetime", "no-concept", "image", "by-reference"])
def test_what_cannot_be_a_component_is_said_whole(child: ContentItem, kind: str) -> None:
    c = _with(child)
    assert "component" not in c.one("imaging-measurement")
    (d,) = [d for d in c.diagnostics.items if d.rule == "not-mapped"]
    assert (d.severity, d.message, d.path, d.concept, d.action) == (
        Severity.WARNING, f"{kind} item has no element in the IG and no Observation.component form", "1.1.1.1.1", triplet(child.concept), "not mapped")


def test_what_sits_below_a_modifier_is_said_whole() -> None:
    below = item("HAS CONCEPT MOD", "CODE", Code("106233006", "SCT", "Topographical modifier"), Code("1", "99X", "x"))
    c = _with(item("HAS CONCEPT MOD", "CODE", DERIVATION, Code("373098007", "SCT", "Mean"), [below]))
    assert len(c.one("imaging-measurement")["component"]) == 1
    (d,) = [d for d in c.diagnostics.items if d.rule == "not-mapped"]
    assert (d.severity, d.message, d.path, d.concept, d.action) == (
        Severity.WARNING, "item nested below a modifier has no element in the IG", "1.1.1.1.1.1", triplet(below.concept), "not mapped")
