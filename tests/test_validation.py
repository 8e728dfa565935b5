"""sr2fhir's own validator: valid output passes; each kind of rule, broken once, is reported."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from sr2fhir.batch import convert_path, render
from sr2fhir.validation.package import load_profiles
from sr2fhir.validation.validator import load, validate_resources
from tests.helpers import FIXTURES, IG_EXAMPLE, SHARED

PROFILE = "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"


@pytest.fixture(scope="module")
def profiles() -> Any:
    return load_profiles(SHARED / "ig-package")


def bundle_of(path: Path) -> dict[str, Any]:
    return json.loads(render(convert_path(str(path)).conversions, "transaction"))


def check(bundle: dict[str, Any], profiles: Any) -> Any:
    resources = [e["resource"] for e in bundle["entry"]]
    index = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    return validate_resources(resources, index, bundle=bundle, profiles=profiles)


@pytest.mark.parametrize("path", [IG_EXAMPLE, *sorted(FIXTURES.glob("*.dcm"))], ids=lambda p: p.name)
def test_our_output_is_valid(path: Path, profiles: Any) -> None:
    report = check(bundle_of(path), profiles)
    errors = [f for f in report.findings if f.severity == "error"]
    # The one known IG defect (docs/conformance.md): derived-imaging-measurement slices derivedFrom
    # by type on the string `reference`, so a urn:uuid reference matches both slices.
    assert all(f.rule == "ambiguous-slice" and "derivedFrom" in f.location for f in errors), [f.text() for f in errors]


def test_agrees_with_the_official_validator_on_the_derived_slicing(profiles: Any) -> None:
    """The HL7 validator reports 'Element matches more than one slice - imagingMeasurementGroupRef,
    sourceSRContentItem' here; so must we (a disagreement found by running both)."""
    report = check(bundle_of(FIXTURES / "tid1501_containers.dcm"), profiles)
    (f,) = [f for f in report.findings if f.severity == "error"]
    assert f.rule == "ambiguous-slice" and "imagingMeasurementGroupRef, sourceSRContentItem" in f.message


def first(bundle: dict[str, Any], profile: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if PROFILE + profile in e["resource"].get("meta", {}).get("profile", []))


def _drop_part_of(b: dict[str, Any]) -> None:
    del first(b, "imaging-measurement")["partOf"]


def _wrong_category_code(b: dict[str, Any]) -> None:
    first(b, "imaging-measurement-group")["category"][0]["coding"][0]["code"] = "125008"


def _wrong_fixed_display(b: dict[str, Any]) -> None:
    first(b, "imaging-qualitative-evaluation")["category"][0]["coding"][0]["display"] = "Qualitative evaluations"


def _slice_at_wrong_profile(b: dict[str, Any]) -> None:
    # hasMember[imagingMeasurement] must be an imaging-measurement: point it at a Device instead
    g = first(b, "imaging-measurement-group")
    g["hasMember"][0] = {"reference": f"urn:uuid:{first(b, 'dicom-general-equipment')['id']}", "type": "Device"}


def _device_wrong_profile(b: dict[str, Any]) -> None:
    first(b, "imaging-measurement")["device"] = {"reference": f"urn:uuid:{first(b, 'dicom-sr-finding-site')['id']}"}


def _bad_status(b: dict[str, Any]) -> None:
    first(b, "imaging-measurement")["status"] = "done"


def _two_studies(b: dict[str, Any]) -> None:
    m = first(b, "imaging-measurement")
    m["partOf"] = m["partOf"] * 2


def _wrong_identifier_type(b: dict[str, Any]) -> None:
    first(b, "imaging-measurement")["partOf"][0]["identifier"]["type"]["coding"][0]["code"] = "110181"


def _unresolved(b: dict[str, Any]) -> None:
    first(b, "imaging-measurement")["derivedFrom"][0]["reference"] = "urn:uuid:00000000-0000-0000-0000-000000000000"


def _duplicate_identifier(b: dict[str, Any]) -> None:
    ms = [e["resource"] for e in b["entry"] if PROFILE + "imaging-measurement" in e["resource"].get("meta", {}).get("profile", [])]
    ms[1]["identifier"] = copy.deepcopy(ms[0]["identifier"])


def _no_value(b: dict[str, Any]) -> None:
    del first(b, "imaging-measurement")["valueQuantity"]


def _invariant_obs8(b: dict[str, Any]) -> None:
    m = first(b, "imaging-measurement")
    m["bodySite"] = {"text": "lung"}  # together with bodyStructure: obs-8 (core) / profile


MUTATIONS: list[tuple[Callable[[dict[str, Any]], None], str, str]] = [
    (_drop_part_of, "profile", "cardinality"),
    (_wrong_category_code, "profile", "pattern"),
    (_wrong_fixed_display, "profile", "pattern"),
    (_slice_at_wrong_profile, "profile", "reference-target"),
    (_device_wrong_profile, "profile", "reference-target"),
    (_bad_status, "profile", "required-binding"),
    (_two_studies, "profile", "cardinality"),
    (_wrong_identifier_type, "profile", "pattern"),
    (_unresolved, "bundle", "unresolved-reference"),
    (_duplicate_identifier, "bundle", "duplicate-identifier"),
    (_no_value, "profile", "cardinality"),
    (_invariant_obs8, "profile", "invariant obs-8"),
]


@pytest.mark.parametrize(("mutate", "layer", "rule"), MUTATIONS, ids=[m[0].__name__.strip("_") for m in MUTATIONS])
def test_each_rule_can_fail(mutate: Callable[[dict[str, Any]], None], layer: str, rule: str, profiles: Any) -> None:
    b = bundle_of(IG_EXAMPLE)
    assert check(b, profiles).ok
    mutate(b)
    report = check(b, profiles)
    errors = [(f.layer, f.rule) for f in report.findings if f.severity == "error"]
    assert (layer, rule) in errors, [f.text() for f in report.findings]


def test_load_ndjson_and_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sr2fhir.cli import app

    out = tmp_path / "x.ndjson"
    CliRunner().invoke(app, ["convert", str(IG_EXAMPLE), "-b", "ndjson", "-o", str(out)])
    resources, index, bundle = load(out)
    assert bundle is None and len(resources) == 11 and all(f"{r['resourceType']}/{r['id']}" in index for r in resources)
    r = CliRunner().invoke(app, ["validate", "--ig", str(SHARED / "ig-package"), str(out), "--outcome", str(tmp_path / "oo.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "oo.json").read_text())["resourceType"] == "OperationOutcome"
    bad = tmp_path / "bad.json"
    b = bundle_of(IG_EXAMPLE)
    _drop_part_of(b)
    bad.write_text(json.dumps(b))
    r = CliRunner().invoke(app, ["validate", "--ig", str(SHARED / "ig-package"), str(bad)])
    assert r.exit_code == 1 and "partOf" in r.output


@pytest.mark.parametrize(("spelt", "bad"), [
    ("1500000000000000000000000000000", True),  # 31 integer digits: what 1.5E+30 once became
    ("0.000000000000000000000015", True),  # 24 fraction digits
    ("1.5E+30", False),
    ("2.001773E+9", False),
    ("15.0", False),
])
def test_validate_checks_the_decimal_grammar_as_the_file_spells_it(tmp_path: Path, profiles: Any, spelt: str, bad: bool) -> None:
    """Issue 25, item 2: FHIR's decimal allows 18 integer and 17 fraction digits and an exponent;
    the HL7 validator refused a 31-digit integer while `sr2fhir validate` said nothing."""
    from typer.testing import CliRunner

    from sr2fhir.cli import app

    b = bundle_of(IG_EXAMPLE)
    m = first(b, "imaging-measurement")
    m["valueQuantity"]["value"] = 0.5
    path = tmp_path / "b.json"
    path.write_text(json.dumps(b).replace('"value": 0.5', f'"value": {spelt}', 1))
    resources, index, bundle = load(path)
    findings = [f for f in validate_resources(resources, index, bundle=bundle, profiles=profiles).findings if f.rule == "decimal-grammar"]
    assert [(f.location, spelt in f.message) for f in findings] == ([("valueQuantity.value", True)] if bad else [])
    r = CliRunner().invoke(app, ["validate", "--ig", str(SHARED / "ig-package"), str(path)])
    assert (r.exit_code == 1 and "decimal grammar" in r.output) if bad else r.exit_code == 0, r.output
