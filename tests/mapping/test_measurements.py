"""ImagingMeasurement (ConceptMap 04): values, units, NUM without value, own regions."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from sr2fhir.dicom.content import Code, MeasuredValue, SopReference, SpatialCoordinates
from sr2fhir.fhir.bundle import dumps
from tests.helpers import SHARED, Converted, codings, convert_doc, converted, document, group, item, validate_r5

UCUM = "http://unitsofmeasure.org"
DIAMETER = Code("81827009", "SCT", "Diameter")
MM = Code("mm", "UCUM", "millimeter")


def test_fixture_values(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1410_planar_regions"]
    exp = [g["measurement"] for g in manifest["fixtures"]["tid1410_planar_regions"]["groups"]]
    got = c.profile("imaging-measurement")
    assert [(codings(m["code"])[0][1], float(m["valueQuantity"]["value"]), m["valueQuantity"]["code"]) for m in got] == [
        (e["code"], e["value"], e["unit"]) for e in exp
    ]
    assert all(m["valueQuantity"]["system"] == UCUM for m in got)


@pytest.mark.parametrize(("text", "json_number"), [("3.111220E+04", "31112.20"), ("0.50", "0.50"), ("+007.5", "7.5"), ("-1e-3", "-0.001"), ("12", "12")])
def test_decimal_digits_kept(text: str, json_number: str) -> None:
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue(text, unit=MM))
    c = convert_doc(document(group(num)))
    m = c.one("imaging-measurement")
    assert m["valueQuantity"]["value"] == Decimal(json_number)
    assert f'"value":{json_number},' in dumps(m)


@pytest.mark.parametrize(("text", "json_number"), [
    ("1.5E+30", "1.5E+30"),  # plain notation would be 31 integer digits: past FHIR's grammar
    ("2.001773E+09", "2.001773E+9"),  # pyradiomics: 7 significant digits, not 2001773000's 10
    ("-3.2e2", "-3.2E+2"),
    ("1E+2", "1E+2"),
    ("1.5E-30", "1.5E-30"),  # plain notation would be 31 fraction digits
    ("1.50E+1", "15.0"),  # plain notation says exactly these digits
])
def test_an_exponent_keeps_the_srs_significant_digits(text: str, json_number: str) -> None:
    """Issue 25, item 2: a DS with an exponent is written with the digits the SR gives, in FHIR's
    decimal grammar (D-46): an exponent where plain notation would add digits or break the grammar."""
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue(text, unit=MM))
    c = convert_doc(document(group(num)))
    m = c.one("imaging-measurement")
    assert str(m["valueQuantity"]["value"]) == json_number and m["valueQuantity"]["value"] == Decimal(text)
    assert f'"value":{json_number},' in dumps(m)
    validate_r5(m)


@pytest.mark.parametrize("text", ["1E+999999999", "-1e-99999999", "NaN", "inf"])
def test_absurd_numbers_are_no_values(text: str) -> None:
    """A 12-character DS can ask for a billion-digit number: never expanded (found by CI's property tests)."""
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue(text, unit=MM))
    c = convert_doc(document(group(num)))
    assert "num-without-value" in c.rules() and not c.profile("imaging-measurement")


@pytest.mark.parametrize(("qualifier", "reason"), [
    (Code("114000", "DCM", "Not a number"), "not-a-number"),
    (Code("114007", "DCM", "Measurement not attempted"), "not-performed"),
    (None, "unknown"),
])
def test_num_without_value(qualifier: Code | None, reason: str) -> None:
    """valueQuantity is 1..1 in the profile: dataAbsentReason, no profile claim, a warning (D-14)."""
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue(None, qualifier=qualifier))
    c = convert_doc(document(group(num)))
    (obs,) = [o for o in c.of_type("Observation") if "dataAbsentReason" in o]
    assert obs["dataAbsentReason"]["coding"][0]["code"] == reason and "profile" not in obs.get("meta", {}) and "valueQuantity" not in obs
    validate_r5(obs)
    (d,) = [d for d in c.diagnostics.items if d.rule == "num-without-value"]
    assert d.path == "1.1.1.1"
    assert c.by_url[c.one("imaging-measurement-group")["hasMember"][0]["reference"]] is obs


def test_fixture_num_without_value(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1501_containers"]
    exp = manifest["fixtures"]["tid1501_containers"]["absent_value"]
    (obs,) = [o for o in c.of_type("Observation") if "dataAbsentReason" in o]
    assert codings(obs["code"])[0][1] == exp["code"] and obs["dataAbsentReason"]["coding"][0]["code"] == exp["reason"]


def test_own_region_overrides_group_region() -> None:
    """A NUM's own INFERRED FROM SCOORD (TID 300 / 320) replaces the group's image region (D-8)."""
    def scoord(uid: str, rel: str, concept: Code | None) -> Any:
        return item(rel, "SCOORD", concept, SpatialCoordinates("POINT", [1, 1]), [item("SELECTED FROM", "IMAGE", None, SopReference("1.2.840.10008.5.1.4.1.1.2", uid))])

    own = scoord("2.25.2", "INFERRED FROM", None)
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue("4", unit=MM), [own])
    other = item("CONTAINS", "NUM", DIAMETER, MeasuredValue("5", unit=MM))
    c = convert_doc(document(group(scoord("2.25.1", "CONTAINS", Code("111030", "DCM", "Image Region")), num, other)))
    m1, m2 = c.profile("imaging-measurement")
    assert [c.resolve(r)["instance"][0]["uid"] for r in m1["derivedFrom"]] == ["2.25.2"]
    assert [c.resolve(r)["instance"][0]["uid"] for r in m2["derivedFrom"]] == ["2.25.1"]


def test_observation_datetime_overrides_issued(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1501_containers"]
    exp = manifest["fixtures"]["tid1501_containers"]
    m = next(o for o in c.profile("imaging-measurement") if o["identifier"][0].get("value") == "urn:oid:" + exp["num_observation_uid"])
    assert m["issued"] == exp["num_issued"]
    assert m["identifier"][0]["type"]["coding"][0]["code"] == "observation-uid"
    assert c.resolve(m["derivedFrom"][-1])["instance"][0]["subset"] == [exp["num_observation_uid"]]


@pytest.mark.parametrize(
    ("dicom", "fhir"),
    [
        ("{SUVbw}g/ml", "{SUVbw}.g/ml"),  # CID 85 SUV units: annotation first, which UCUM does not allow
        ("{SUVbsa}cm2/ml", "{SUVbsa}.cm2/ml"),
        ("{SUVlbm(James128)}g/ml", "{SUVlbm(James128)}.g/ml"),
        ("{ratio}", "{ratio}"),  # an annotation alone is valid UCUM
        ("{Particles}/ml", "{Particles}/ml"),
        ("mg{creat}", "mg{creat}"),
    ],
)
def test_ucum_leading_annotation_repaired(dicom: str, fhir: str) -> None:
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue(numeric="2.5", unit=Code(dicom, "UCUM", "Standardized Uptake Value body weight")))
    c = convert_doc(document(group(num)))
    q = c.profile("imaging-measurement")[0]["valueQuantity"]
    assert q["code"] == fhir and q["unit"] == "Standardized Uptake Value body weight"
    assert ("ucum-annotation-repaired" in c.rules()) is (dicom != fhir)


def test_suv_units_of_a_real_report_are_valid_ucum() -> None:
    """dcmqi's PET example (../shared/data) records SUVbw as `{SUVbw}g/ml`."""
    c = converted(SHARED / "data" / "tid1500" / "dcmqi__sr-example__sr.dcm")
    codes_ = {o["valueQuantity"]["code"] for o in c.profile("imaging-measurement") if "valueQuantity" in o}
    assert "{SUVbw}.g/ml" in codes_
    assert not [code for code in codes_ if re.match(r"^\{[^}]*\}[^./]", code)]


# --- what mutation testing found unasserted (issue 25): each test fails on one surviving mutant ---

FINDING_SITE, LATERALITY = Code("363698007", "SCT", "Finding Site"), Code("272741003", "SCT", "Laterality")
KIDNEY, RIGHT = Code("64033007", "SCT", "Kidney"), Code("24028007", "SCT", "Right")


def test_a_measurement_is_created_conditionally_on_its_observation_uid() -> None:
    """The transaction entry of a NUM with an Observation UID is a conditional create on that UID (D-21)."""
    from sr2fhir.fhir import bundle as fhir_bundle

    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue("4", unit=MM), observation_uid="2.25.77")
    c = convert_doc(document(group(num)))
    m = c.one("imaging-measurement")
    b = fhir_bundle.transaction(c.conversion.resources, "2.25.3")
    assert b["type"] == "transaction"
    (entry,) = [e for e in b["entry"] if e["resource"] is m]
    assert entry["fullUrl"] == f"urn:uuid:{m['id']}"
    assert entry["request"] == {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=urn:dicom:uid|urn:oid:2.25.77"}


def test_a_measurement_records_the_num_it_came_from() -> None:
    """Conversion.sources (the explain page's links, D-29's provenance) names the NUM's path."""
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue("4", unit=MM))
    doc = document(group(num))
    c = convert_doc(doc)
    m = c.one("imaging-measurement")
    assert c.conversion.sources[m["id"]] == [num.path] == ["1.1.1.1"]


def test_a_nums_own_algorithm_is_its_device_with_the_equipment_as_parent() -> None:
    """TID 1419 / TID 4019 under a NUM: the measurement's device is that algorithm, whose parent
    is the report's general equipment (docs/architecture.md, D-7)."""
    alg = [item("HAS CONCEPT MOD", "TEXT", Code("111001", "DCM", "Algorithm Name"), "segmenter"),
           item("HAS CONCEPT MOD", "TEXT", Code("111003", "DCM", "Algorithm Version"), "2.1")]
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue("4", unit=MM), alg)
    plain = item("CONTAINS", "NUM", DIAMETER, MeasuredValue("5", unit=MM))
    c = convert_doc(document(group(num, plain)))
    m1, m2 = c.profile("imaging-measurement")
    device = c.resolve(m1["device"])
    assert device["displayName"] == "segmenter" and device["version"][0]["value"] == "2.1"
    equipment = c.one("dicom-general-equipment")
    assert device["parent"]["reference"] == f"urn:uuid:{equipment['id']}"
    assert c.resolve(m2["device"]) is not device  # the sibling keeps the inherited device
    assert not [x for x in m1.get("component", []) if codings(x["code"])[0][1] in ("111001", "111003")]  # consumed, not components


def test_a_nums_own_region_of_any_concept_name_is_taken() -> None:
    """D-8: any SCOORD the NUM is INFERRED FROM is its region, whatever its concept name."""
    own = item("INFERRED FROM", "SCOORD", Code("999", "99X", "A private name"), SpatialCoordinates("POLYLINE", [1, 1, 2, 2]),
               [item("SELECTED FROM", "IMAGE", None, SopReference("1.2.840.10008.5.1.4.1.1.2", "2.25.9"))])
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue("4", unit=MM), [own])
    c = convert_doc(document(group(num)))
    m = c.one("imaging-measurement")
    (sel,) = [c.resolve(r) for r in m["derivedFrom"]]
    assert sel["instance"][0]["uid"] == "2.25.9" and sel["instance"][0]["imageRegion2D"][0]["regionType"] == "polyline"
    assert not m.get("component") and c.rules() == []  # the region is not also a modifier, nor reported as not mapped


def test_laterality_beside_a_nums_own_site_belongs_to_the_site() -> None:
    site = item("HAS CONCEPT MOD", "CODE", FINDING_SITE, KIDNEY, [item("HAS CONCEPT MOD", "CODE", LATERALITY, RIGHT)])
    beside = item("HAS CONCEPT MOD", "CODE", FINDING_SITE, KIDNEY)
    for children in ([site], [beside, item("HAS CONCEPT MOD", "CODE", LATERALITY, RIGHT)]):
        num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue("4", unit=MM), children)
        c = convert_doc(document(group(num)))
        m = c.one("imaging-measurement")
        inc = c.resolve(m["bodyStructure"])["includedStructure"]
        assert [(codings(i["structure"])[0][1], codings(i.get("laterality"))) for i in inc] == [("64033007", [("http://snomed.info/sct", "24028007")])]
        assert not m.get("component"), m.get("component")


def test_laterality_without_a_site_is_kept_as_a_component() -> None:
    """Issue 25: a NUM with only a Laterality child lost it (no site to carry it): a component, D-33."""
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue("4", unit=MM), [item("HAS CONCEPT MOD", "CODE", LATERALITY, RIGHT)])
    c = convert_doc(document(group(num)))
    m = c.one("imaging-measurement")
    assert [(codings(x["code"])[0][1], codings(x["valueCodeableConcept"])[0][1]) for x in m["component"]] == [("272741003", "24028007")]
    assert "bodyStructure" not in m and "bodySite" not in m
