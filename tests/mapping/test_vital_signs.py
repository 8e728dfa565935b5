"""Measurements coded with FHIR R5's LOINC vital-sign codes (mapping/vital_signs.py, D-52): what
the profiles require is met where the SR allows, and said where it does not. Expected values come
from FHIR R5 core's vital-signs profiles (category vital-signs; heartrate's valueQuantity.code
fixed to /min; bp's systolic pressure a component of 85354-9)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from sr2fhir.dicom.content import Code, MeasuredValue, SopReference, SpatialCoordinates
from sr2fhir.fhir.ids import full_url
from sr2fhir.validation import validate_resources
from tests.helpers import ROOT, SHARED, Converted, convert_doc, document, group, item

VITAL_SIGNS = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
HEART_RATE = Code("8867-4", "LN", "Heart rate")


def measured(concept: Code, value: str, unit: str, *children: Any) -> Converted:
    num = item("CONTAINS", "NUM", concept, MeasuredValue(value, unit=Code(unit, "UCUM", unit)), list(children))
    return convert_doc(document(group(num)))


def the_measurement(c: Converted) -> dict[str, Any]:
    (obs,) = c.profile("imaging-measurement")
    return obs


def warnings(c: Converted) -> list[str]:
    return [d.message for d in c.diagnostics.items if d.rule == "vital-sign-not-conformant"]


def test_a_heart_rate_in_per_minute_gets_the_vital_signs_category() -> None:
    c = measured(HEART_RATE, "72", "/min")
    obs = the_measurement(c)
    assert {"coding": [VITAL_SIGNS]} in obs["category"]
    assert obs["valueQuantity"]["code"] == "/min" and str(obs["valueQuantity"]["value"]) == "72"
    assert warnings(c) == [] and "vital-sign-unit" not in c.rules()
    report = validate_resources(c.resources, {full_url(r["id"]): r for r in c.resources}, ig=str(SHARED / "ig-package"))
    assert report.ok, [f.text() for f in report.findings]


def test_an_annotated_unit_becomes_the_one_the_profile_fixes() -> None:
    """{beats}/min is /min (a UCUM annotation is 1): the code the profile fixes, the SR's text kept."""
    c = measured(HEART_RATE, "70", "{beats}/min")
    q = the_measurement(c)["valueQuantity"]
    assert (q["code"], q["unit"], str(q["value"])) == ("/min", "{beats}/min", "70")
    assert "vital-sign-unit" in c.rules() and warnings(c) == []


def test_a_unit_the_profile_does_not_allow_is_kept_and_said() -> None:
    c = measured(HEART_RATE, "1.2", "Hz")
    q = the_measurement(c)["valueQuantity"]
    assert (q["code"], str(q["value"])) == ("Hz", "1.2")  # never converted
    assert len(warnings(c)) == 1 and "'Hz' is not one heartrate allows (/min)" in warnings(c)[0]


def test_a_lone_systolic_pressure_cannot_be_a_bp_panel() -> None:
    c = measured(Code("8480-6", "LN", "Systolic blood pressure"), "120", "mm[Hg]")
    obs = the_measurement(c)
    assert "category" not in obs and obs["code"]["coding"][0]["code"] == "8480-6"
    assert len(warnings(c)) == 1 and "component of a 85354-9 (bp) panel" in warnings(c)[0]


def test_an_image_region_is_kept_though_vitalsigns_does_not_allow_it() -> None:
    image = item("SELECTED FROM", "IMAGE", None, SopReference("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"))
    region = item("INFERRED FROM", "SCOORD", Code("111030", "DCM", "Image Region"), SpatialCoordinates("POINT", [1.0, 2.0]), [image])
    c = measured(HEART_RATE, "72", "/min", region)
    obs = the_measurement(c)
    assert any(r["type"] == "ImagingSelection" for r in obs["derivedFrom"])
    assert len(warnings(c)) == 1 and "derivedFrom ImagingSelection" in warnings(c)[0]


@pytest.mark.parametrize("concept", [Code("8867-4", "SCT", "not LOINC"), Code("8302-3", "LN", "not a vital sign")])
def test_other_codes_are_left_alone(concept: Code) -> None:
    c = measured(concept, "72", "/min")
    assert "category" not in the_measurement(c) and warnings(c) == []


@pytest.mark.npm
def test_the_table_is_the_generator_output() -> None:
    """src/sr2fhir/fhir/vital_signs.py equals a fresh run of scripts/make_vital_signs.py over FHIR R5 core."""
    spec = importlib.util.spec_from_file_location("make_vital_signs", ROOT / "scripts" / "make_vital_signs.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "src" / "sr2fhir" / "fhir" / "vital_signs.py").read_text(encoding="utf-8") == mod.generate(mod.core_package())


def test_a_panel_code_with_a_value_is_said() -> None:
    c = measured(Code("85354-9", "LN", "Blood pressure panel"), "120", "mm[Hg]")
    assert len(warnings(c)) == 1 and "bp is a panel, without a value of its own" in warnings(c)[0]


def test_an_annotated_code_outside_ucum_is_not_rewritten() -> None:
    num = item("CONTAINS", "NUM", HEART_RATE, MeasuredValue("70", unit=Code("{beats}/min", "99LOCAL", "beats per minute")))
    c = convert_doc(document(group(num)))
    assert the_measurement(c)["valueQuantity"]["code"] == "{beats}/min"
    assert "vital-sign-unit" not in c.rules() and len(warnings(c)) == 1


def test_each_diagnostic_names_its_item_and_what_was_done() -> None:
    """The message, the content item (path and concept) and the action: what a user reads."""
    for c in (measured(HEART_RATE, "70", "{beats}/min"), measured(HEART_RATE, "1.2", "Hz"), measured(Code("8480-6", "LN", "Systolic blood pressure"), "120", "mm[Hg]")):
        notes = [d for d in c.diagnostics.items if d.rule.startswith("vital-sign")]
        assert notes
        for d in notes:
            assert d.path == "1.1.1.1" and d.concept and ("8867-4" in d.concept or "8480-6" in d.concept), d
            assert d.action and d.message
            assert d.rule == "vital-sign-unit" or ("LOINC 8867-4" in d.message or "LOINC 8480-6" in d.message)
