"""sr2fhir's own extensions (fhir/extensions.py, D-51): the shipped packages are the generator's
output, the StructureDefinitions are valid R5 and R4 resources, and `sr2fhir validate` catches
what their definitions forbid."""

from __future__ import annotations

import copy
import importlib.util
import json
from typing import Any

import pytest

from sr2fhir.fhir import extensions
from sr2fhir.fhir.ids import full_url
from sr2fhir.validation import validate_resources
from tests.helpers import ROOT

PACKAGE = ROOT / "src" / "sr2fhir" / "fhir" / "package"


def test_shipped_packages_are_the_generator_output() -> None:
    spec = importlib.util.spec_from_file_location("make_extensions_package", ROOT / "scripts" / "make_extensions_package.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for version in ("R5", "R4"):
        shipped = {p.name: p.read_text(encoding="utf-8") for p in (PACKAGE / version.lower()).glob("*.json")}
        assert shipped == mod.files(version)


@pytest.mark.parametrize("version", ["R5", "R4"])
def test_the_structure_definitions_are_valid_resources(version: str) -> None:
    """fhir.resources' R5 and R4B models (an independent reading of FHIR) accept them."""
    from fhir.resources import get_fhir_model_class
    from fhir.resources.R4B import get_fhir_model_class as get_r4_class

    model = get_fhir_model_class if version == "R5" else get_r4_class
    for ext in extensions.EXTENSIONS:
        sd = json.loads((PACKAGE / version.lower() / f"StructureDefinition-{ext.id}.json").read_text())
        model("StructureDefinition").model_validate(sd)
        assert sd["url"] == ext.url and sd["context"] == [{"type": "element", "expression": ext.context[version]}]
        fixed = {e["id"]: e.get("fixedUri") for e in sd["differential"]["element"] if "fixedUri" in e}
        assert fixed == {"Extension.url": ext.url, **{f"Extension.extension:{p.name}.url": p.name for p in ext.parts}}


def selection(*parts: dict[str, Any], rtype: str = "ImagingSelection", url: str = extensions.IMAGE_REGION_3D.url) -> dict[str, Any]:
    r: dict[str, Any] = {"resourceType": rtype, "id": "s1", "extension": [{"url": url, "extension": list(parts)}]}
    if rtype == "ImagingSelection":
        r.update({"status": "available", "code": {"text": "Image Region"}, "frameOfReferenceUid": "1.2.3"})
    else:
        r.update({"code": {"text": "Image Region"}})
    return r


def findings(resource: dict[str, Any], version: str = "R5") -> list[str]:
    report = validate_resources([resource], {full_url(resource["id"]): resource}, profiles={}, fhir_version=version)
    return [f.message for f in report.findings if f.rule == "sr2fhir-extension"]


GOOD = extensions.image_region_3d("polygon", [1.0, 2.0, 3.0, 4.0, 5.0, 3.0, 1.0, 2.0, 3.0])["extension"]


def test_a_good_region_passes_in_r5_and_r4() -> None:
    assert findings(selection(*GOOD)) == []
    assert findings(selection(*GOOD, rtype="Basic"), "R4") == []


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p[0].update(valueCode="sphere"), "'sphere' is not one of"),
    (lambda p: p.pop(), "(x, y, z) triplets"),
    (lambda p: p.pop(0), "needs 1..1 regionType, has 0"),
    (lambda p: p.append({"url": "regionType", "valueCode": "point"}), "needs 1..1 regionType, has 2"),
    (lambda p: p.append({"url": "colour", "valueString": "red"}), "no sub-extension 'colour'"),
    (lambda p: p[1].update(valueString="1.0") or p[1].pop("valueDecimal"), "coordinate needs one valueDecimal"),
    (lambda p: p.clear(), "needs 1..* coordinate, has 0"),
])
def test_what_the_definition_forbids_is_an_error(change: Any, message: str) -> None:
    parts = copy.deepcopy(GOOD)
    change(parts)
    assert any(message in m for m in findings(selection(*parts))), findings(selection(*parts))


def test_context_and_unknown_urls_are_checked() -> None:
    assert any("may sit on ImagingSelection, not Basic" in m for m in findings(selection(*GOOD, rtype="Basic"), "R5"))
    assert any("may sit on Basic, not ImagingSelection" in m for m in findings(selection(*GOOD), "R4"))
    assert any("not an extension sr2fhir defines" in m for m in findings(selection(*GOOD, url=extensions.CANONICAL + "/StructureDefinition/nope")))
