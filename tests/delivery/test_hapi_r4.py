"""`push --fhir-version R4` against a real HAPI FHIR JPA server in R4 mode, validating requests
against FHIR R4 (issue 14).

Expectations come from the inputs, as in test_hapi.py: one resource per distinct identity (the
R4 entries' ifNoneExist), an ImagingSelection arriving as a Basic; the corrected fixture's
expectations come from how make_fixtures.py built it (manifest.json).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner

from sr2fhir.batch import convert_path
from sr2fhir.cli import app
from sr2fhir.codes import urn_oid
from sr2fhir.delivery.client import FhirClient, RetryPolicy
from tests.helpers import FIXTURES, IG_EXAMPLE, shared_files, sop_uid, transaction_bundles, walk_json

R4 = "R4"
TYPES = ("Observation", "Basic", "Device", "BodyStructure", "Practitioner")
SEEDED = ("Patient", "ImagingStudy", "ServiceRequest")
STATUS = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ImagingSelection.status"
runner = CliRunner()


def push(url: str, *args: str) -> Any:
    return runner.invoke(app, ["push", *args, "--fhir-url", url, "--fhir-version", "R4"])


def status(r: dict[str, Any]) -> str:
    if r["resourceType"] == "Basic":
        return next(e["valueCode"] for e in r["modifierExtension"] if e["url"] == STATUS)
    return str(r["status"])


@pytest.fixture()
def fhir4(fhir_r4_url: str) -> Iterator[FhirClient]:
    with FhirClient(fhir_r4_url, retry=RetryPolicy(attempts=3, base_delay=0.2)) as client:
        yield client


@pytest.fixture(scope="module")
def reports() -> list[Path]:
    # The corrected fixture is pushed by its own test, after its original.
    return [IG_EXAMPLE, *shared_files("tid1500"), *(p for p in sorted(FIXTURES.glob("*.dcm")) if "corrected" not in p.name)]


@pytest.fixture(scope="module")
def pushed(fhir_r4_url: str, reports: list[Path]) -> dict[str, int]:
    result = push(fhir_r4_url, *map(str, reports), "--seed")
    assert result.exit_code == 0, result.output[-3000:]
    assert f"summary: {len(reports)} file(s): " in result.output and ", 0 failed" in result.output, result.output[-2000:]
    with FhirClient(fhir_r4_url) as client:
        return {t: client.count(t) for t in TYPES + SEEDED}


def test_every_r4_resource_is_accepted_once(pushed: dict[str, int], reports: list[Path]) -> None:
    seen = {(e["request"]["url"], e["request"]["ifNoneExist"]) for p in reports for b in transaction_bundles(p, R4) for e in b["entry"]}
    expected = Counter(t for t, _ in seen)
    assert expected["Basic"] > 30 and "ImagingSelection" not in expected
    for rtype in TYPES:
        assert pushed[rtype] == expected[rtype], rtype


def test_r4_read_back_references_resolve(pushed: dict[str, int], reports: list[Path], fhir4: FhirClient) -> None:
    for path in reports:
        conv = convert_path(str(path), fhir_version=R4).conversions[0]
        source = urn_oid(conv.document.sop_instance_uid)
        made = Counter(r["resourceType"] for r in conv.resources.resources() if r["resourceType"] != "Device")
        read_back = {t: fhir4.search(t, _source=source) for t in made}
        assert read_back["Observation"], path.name
        for rtype, n in made.items():
            assert 0 < len(read_back[rtype]) <= n, (path.name, rtype)
        studies = fhir4.search("ImagingStudy", identifier=f"urn:dicom:uid|{urn_oid(conv.document.study_instance_uid)}")
        assert len(studies) == 1
        for obs in read_back["Observation"]:
            assert f"ImagingStudy/{studies[0]['id']}" in [p.get("reference") for p in obs.get("partOf", [])]
        for basic in read_back.get("Basic", []):
            assert status(basic) == "available" and basic["code"]["coding"], path.name
        refs = {n["reference"] for rs in read_back.values() for n in walk_json(rs) if isinstance(n, dict) and isinstance(n.get("reference"), str)}
        assert not [r for r in refs if r.startswith("urn:") or "?" in r], path.name  # made literal by the server
        # The selections an Observation names through extension-Observation.derivedFrom are Basics on the server.
        linked = {r for r in refs if r.startswith("Basic/")}
        assert len(linked) == len(read_back.get("Basic", [])) or path.name.startswith("tid1501"), path.name
        for ref in sorted(refs)[:200]:
            rtype, rid = ref.split("/")[:2]
            assert fhir4.request("GET", f"{rtype}/{rid}")["id"] == rid, ref


def test_second_r4_push_creates_nothing(pushed: dict[str, int], reports: list[Path], fhir_r4_url: str, fhir4: FhirClient) -> None:
    result = push(fhir_r4_url, *map(str, reports))
    assert result.exit_code == 0, result.output[-2000:]
    assert "(0 created)" in result.output
    assert {t: fhir4.count(t) for t in TYPES + SEEDED} == pushed


def test_corrected_r4_report_replaces_its_predecessor(pushed: dict[str, int], fhir_r4_url: str, fhir4: FhirClient, manifest: dict[str, Any]) -> None:
    original, corrected = FIXTURES / "tid1410_planar_regions.dcm", FIXTURES / "tid1410_planar_regions_corrected.dcm"
    exp = manifest["fixtures"]["tid1410_planar_regions_corrected"]
    old = urn_oid(exp["predecessor"])
    assert {o["status"] for o in fhir4.search("Observation", _source=old)} == {"final"}
    result = push(fhir_r4_url, str(corrected))
    assert result.exit_code == 0, result.output
    assert "corrects 1 earlier report(s)" in result.output
    for rtype in ("Observation", "Basic"):
        assert {status(r) for r in fhir4.search(rtype, _source=old)} == {"entered-in-error"}, rtype
    new = fhir4.search("Observation", _source=urn_oid(sop_uid(corrected)))
    assert new and {o["status"] for o in new} == {"final"}
    diameters = sorted(float(o["valueQuantity"]["value"]) for o in new if "valueQuantity" in o)
    assert diameters == sorted(g["measurement"]["value"] for g in exp["groups"])
    before = {t: fhir4.count(t) for t in TYPES}
    assert push(fhir_r4_url, str(corrected)).exit_code == 0
    assert push(fhir_r4_url, str(original)).exit_code == 0
    assert {t: fhir4.count(t) for t in TYPES} == before


def test_output_of_the_other_version_is_refused_before_sending(fhir_r4_url: str, fhir_url: str) -> None:
    for url, args in ((fhir_r4_url, ()), (fhir_url, ("--fhir-version", "R4"))):
        result = runner.invoke(app, ["push", str(IG_EXAMPLE), "--fhir-url", url, *args])
        assert result.exit_code == 2, result.output
        assert "CapabilityStatement.fhirVersion" in result.output and "nothing sent" in result.output
