"""The R5 -> R4 down-conversion (fhir/r4.py, docs/r4.md; issue 14).

The R4 output is read back here with the cross-version extension convention written out by hand
(`http://hl7.org/fhir/5.0/StructureDefinition/extension-<R5 path>`, complex extensions for
backbone elements), and compared with the R5 output of the same input: every number, code,
unit, image reference and region must survive.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sr2fhir import Options
from sr2fhir.batch import convert_path
from sr2fhir.diagnostics import Diagnostics, Severity
from sr2fhir.fhir import extensions, r4
from sr2fhir.fhir.bundle import ResourceSet
from sr2fhir.fhir.ids import full_url
from sr2fhir.validation.validator import validate_resources
from tests.helpers import FIXTURES, IG_EXAMPLE, ROOT, shared_files

X = "http://hl7.org/fhir/5.0/StructureDefinition/extension-"
INPUTS = [IG_EXAMPLE, *sorted(FIXTURES.glob("*.dcm"))]


def resources(path: Path, version: str) -> tuple[dict[str, dict[str, Any]], Diagnostics]:
    r = convert_path(str(path), Options(diagnostic_report=True), fhir_version=version)
    assert r.error is None, r.error
    return {x["id"]: x for c in r.conversions for x in c.resources.resources()}, r.diagnostics


def ext(r: dict[str, Any], name: str, key: str = "extension") -> list[Any]:
    """The values of one extension (relative name inside a complex one, else R5 path)."""
    url = name if "." not in name else X + name
    out = []
    for e in r.get(key, []):
        if e["url"] == url:
            out.append(e if "extension" in e else next(v for k, v in e.items() if k.startswith("value")))
    return out


def selection_back(basic: dict[str, Any]) -> dict[str, Any]:
    """An R4 Basic read back into the R5 ImagingSelection elements sr2fhir fills."""
    def region(e: dict[str, Any]) -> dict[str, Any]:
        return {"regionType": ext(e, "regionType")[0], "coordinate": ext(e, "coordinate")}

    def instance(e: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"uid": ext(e, "uid")[0], "sopClass": ext(e, "sopClass")[0]}
        if ext(e, "subset"):
            out["subset"] = ext(e, "subset")
        if ext(e, "imageRegion2D"):
            out["imageRegion2D"] = [region(x) for x in ext(e, "imageRegion2D")]
        return out

    back: dict[str, Any] = {"code": basic["code"], "status": ext(basic, "ImagingSelection.status", "modifierExtension")[0]}
    for name in ("studyUid", "seriesUid", "frameOfReferenceUid"):
        if ext(basic, f"ImagingSelection.{name}"):
            back[name] = ext(basic, f"ImagingSelection.{name}")[0]
    for name in ("basedOn", "derivedFrom", "focus"):
        if ext(basic, f"ImagingSelection.{name}"):
            back[name] = ext(basic, f"ImagingSelection.{name}")
    if ext(basic, "ImagingSelection.bodySite"):
        back["bodySite"] = {"reference": ext(basic, "ImagingSelection.bodySite")[0]}
    if ext(basic, "ImagingSelection.instance"):
        back["instance"] = [instance(e) for e in ext(basic, "ImagingSelection.instance")]
    own = [e for e in basic.get("extension", []) if e["url"] == extensions.IMAGE_REGION_3D.url]
    if own:
        back["extension"] = own
    return back


def as_r5_reference(ref: dict[str, Any]) -> dict[str, Any]:
    return {**ref, "type": "ImagingSelection"} if ref.get("type") == "Basic" else ref


@pytest.mark.parametrize("path", INPUTS + shared_files("tid1500"), ids=lambda p: p.name)
def test_r4_keeps_every_number_code_unit_and_image_reference(path: Path) -> None:
    r5, _ = resources(path, "R5")
    down, diags = resources(path, "R4")
    assert not [d for d in diags.items if d.rule.startswith("r4")]
    assert set(r5) == set(down)  # the same resources, the same ids
    for rid, old in r5.items():
        new = down[rid]
        if old["resourceType"] == "ImagingSelection":
            assert new["resourceType"] == "Basic" and new["meta"]["profile"] == [r4.SELECTION_PROFILE]
            back = {k: ([as_r5_reference(x) for x in v] if k == "focus" else v) for k, v in selection_back(new).items()}
            assert back == {k: v for k, v in old.items() if k not in ("resourceType", "id", "meta", "text", "identifier", "subject")}
            assert new["identifier"] == old["identifier"] and new["subject"] == old["subject"]
        elif old["resourceType"] == "Observation":
            for k in ("status", "code", "valueQuantity", "valueCodeableConcept", "valueString", "component", "method", "device",
                      "hasMember", "identifier", "effectiveDateTime", "issued", "subject", "partOf", "basedOn", "performer", "dataAbsentReason"):
                assert new.get(k) == old.get(k), (rid, k)
            derived = [*new.get("derivedFrom", []), *map(as_r5_reference, ext(new, "Observation.derivedFrom"))]
            assert sorted(map(str, derived)) == sorted(map(str, old.get("derivedFrom", [])))
            assert ext(new, "Observation.bodyStructure") == ([old["bodyStructure"]] if "bodyStructure" in old else [])
            if "bodySite" in old:
                assert new["bodySite"] == old["bodySite"]
        elif old["resourceType"] == "Device":
            names = {n["name"] for n in new.get("deviceName", [])}
            assert {n["value"] for n in old.get("name", [])} | ({old["displayName"]} if "displayName" in old else set()) <= names, rid
            for k in ("identifier", "manufacturer", "serialNumber", "version", "parent"):
                assert new.get(k) == old.get(k), (rid, k)
            assert [p.get("extension", [{}])[0].get("valueString") for p in new.get("property", [])] == [p.get("valueString") for p in old.get("property", [])]
        elif old["resourceType"] == "BodyStructure":
            [site] = old["includedStructure"]
            assert new["location"] == site["structure"] and new.get("locationQualifier", []) == [*(
                [site["laterality"]] if "laterality" in site else []), *site.get("qualifier", [])]
            assert new["identifier"] == old["identifier"] and new["patient"] == old["patient"]


def test_r4_output_passes_sr2fhir_r4_checks() -> None:
    for path in INPUTS:
        down, _ = resources(path, "R4")
        rs = list(down.values())
        report = validate_resources(rs, {full_url(r["id"]): r for r in rs}, fhir_version="R4")
        assert report.errors(include_ig_defects=True) == 0, [f.text() for f in report.findings][:5]


def _one(*rs: dict[str, Any]) -> tuple[list[dict[str, Any]], Diagnostics]:
    s = ResourceSet()
    for r in rs:
        s.add(r)
    d = Diagnostics()
    return r4.down_convert(s, d).resources(), d


def test_body_structure_laterality_and_further_structures() -> None:
    lung, left, upper = ({"coding": [{"system": "http://snomed.info/sct", "code": c}]} for c in ("39607008", "7771000", "261183002"))
    bs = {"resourceType": "BodyStructure", "id": "b", "includedStructure": [
        {"structure": lung, "laterality": left, "qualifier": [upper]}, {"structure": upper}], "patient": {"reference": "Patient/p"}}
    obs = {"resourceType": "Observation", "id": "o", "status": "final", "code": lung, "bodyStructure": {"reference": full_url("b"), "type": "BodyStructure"}}
    (b, o), d = _one(bs, obs)
    assert b["location"] == lung and b["locationQualifier"] == [left, upper]
    assert b["extension"] == [{"url": X + "BodyStructure.includedStructure", "extension": [{"url": "structure", "valueCodeableConcept": upper}]}]
    # A qualified site is not flattened into bodySite: the reader follows the BodyStructure (D-38).
    assert "bodySite" not in o and ext(o, "Observation.bodyStructure") == [obs["bodyStructure"]]
    plain = {**bs, "includedStructure": [{"structure": lung}]}
    (_, o2), _ = _one(plain, obs)
    assert o2["bodySite"] == lung
    assert not d.items


def test_device_names_and_string_property() -> None:
    dev = {"resourceType": "Device", "id": "d", "displayName": "Example Device", "name": [{"value": "pyradiomics", "type": "user-friendly-name"}],
           "version": [{"value": "2.1"}], "property": [{"type": {"text": "Algorithm Parameters"}, "valueString": "gamma: 2"}]}
    (d,), diags = _one(dev)
    assert d["deviceName"] == [{"name": "pyradiomics", "type": "user-friendly-name"}, {"name": "Example Device", "type": "user-friendly-name"}]
    assert d["property"] == [{"extension": [{"url": X + "Device.property.value", "valueString": "gamma: 2"}], "type": {"text": "Algorithm Parameters"}}]
    assert d["version"] == [{"value": "2.1"}] and "displayName" not in d and not diags.items


def test_an_element_without_a_rule_is_reported_not_dropped_silently() -> None:
    (o,), d = _one({"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}, "triggeredBy": [{"type": "reflex"}]})
    assert "triggeredBy" not in o
    [item] = d.items
    assert item.severity == Severity.ERROR and item.rule == "r4-unmapped-element" and "Observation.triggeredBy" in item.message


def test_status_of_a_basic_and_its_retirement() -> None:
    (b,), _ = _one({"resourceType": "ImagingSelection", "id": "s", "status": "available", "code": {"text": "x"}})
    assert r4.status_of(b) == "available"
    retired = r4.with_status(b, "entered-in-error")
    assert r4.status_of(retired) == "entered-in-error" and len(retired["modifierExtension"]) == 1 and "status" not in retired


def test_r4_checks_catch_what_r4_does_not_allow() -> None:
    (b,), _ = _one({"resourceType": "ImagingSelection", "id": "s", "status": "available", "code": {"text": "x"}})
    no_status = {k: v for k, v in b.items() if k != "modifierExtension"}
    wrong_type = {**b, "extension": [{"url": X + "ImagingSelection.studyUid", "valueString": "1.2"}]}
    to_selection = {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"},
                    "derivedFrom": [{"reference": full_url("s"), "type": "ImagingSelection"}]}
    rs = [no_status, wrong_type, to_selection]
    report = validate_resources(rs, {full_url("s"): no_status}, fhir_version="R4")
    rules = sorted(f.rule for f in report.findings if f.severity == "error")
    assert rules == ["r4-basic", "r4-extension", "r4-reference-target"]


def test_docs_table_is_generated_from_rows() -> None:
    doc = (ROOT / "docs" / "r4.md").read_text()
    table = re.search(r"<!-- rows: generated .*?-->\n(.*?)<!-- end rows -->", doc, re.S)
    assert table is not None, "docs/r4.md lost its generated table"
    assert table.group(1) == r4.markdown_table()


def test_the_library_honours_the_fhir_version_it_is_given() -> None:
    """Issue 25, item 7: `sr2fhir.convert(doc, fhir_version="R4")` once returned R5 without a word
    (it was then one of the Options; issue 26 item 6 made it the output step's own argument)."""
    import sr2fhir

    doc = next(iter(sr2fhir.read(str(FIXTURES / "tid1410_planar_regions.dcm"))))
    r5 = sr2fhir.convert(doc)
    as_r4 = sr2fhir.convert(doc, fhir_version="R4")
    types5 = {r["resourceType"] for r in r5.resources.resources()}
    types4 = {r["resourceType"] for r in as_r4.resources.resources()}
    assert "ImagingSelection" in types5 and "ImagingSelection" not in types4 and "Basic" in types4  # D-38
    cli = convert_path(str(FIXTURES / "tid1410_planar_regions.dcm"), fhir_version="R4")
    assert as_r4.resources.resources() == cli.conversions[0].resources.resources()  # what `convert --fhir-version R4` writes
    with pytest.raises(ValueError, match="expected 'R5' or 'R4'"):
        sr2fhir.convert(doc, fhir_version="R6")
    assert not hasattr(Options(), "fhir_version")  # a mapping choice no longer: the output step's alone
