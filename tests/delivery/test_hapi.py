"""`push` (and `push --seed`) against a real HAPI FHIR JPA server in R5 mode with IG request validation.

What is expected comes from the inputs: every resource sr2fhir makes has an identity (the
entry's ifNoneExist), so after any number of pushes the server must hold exactly one resource
per distinct identity; the corrected fixture's expectations come from how make_fixtures.py
built it (manifest.json).
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from typer.testing import CliRunner

from sr2fhir.batch import convert_path
from sr2fhir.cli import app
from sr2fhir.codes import urn_oid
from sr2fhir.delivery.client import DeliveryError, FhirClient, RetryPolicy
from sr2fhir.delivery.push import push_path
from tests.helpers import FIXTURES, IG_EXAMPLE, remapped, shared_files, sop_uid, transaction_bundles, walk_json

TYPES = ("Observation", "ImagingSelection", "Device", "BodyStructure", "Practitioner")
SEEDED = ("Patient", "ImagingStudy", "ServiceRequest")
runner = CliRunner()


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def identities(paths: list[Path]) -> Counter[str]:
    """Distinct identities (type and ifNoneExist) per resource type across the inputs."""
    seen = {(e["request"]["url"], e["request"]["ifNoneExist"]) for p in paths for b in transaction_bundles(p) for e in b["entry"]}
    return Counter(t for t, _ in seen)


def totals(client: FhirClient, types: tuple[str, ...] = TYPES + SEEDED) -> dict[str, int]:
    return {t: client.count(t) for t in types}


def seed_fixture_study(fhir_url: str) -> None:
    """The fixtures' Patient, ImagingStudy and ServiceRequest (all fixtures share them), by pushing one with --seed."""
    result = cli("push", str(FIXTURES / "tid1410_region3d_segframe.dcm"), "--fhir-url", fhir_url, "--seed")
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def reports() -> list[Path]:
    # The demo report adds derived measurements (TID 1420), which the others lack.
    return [IG_EXAMPLE, *shared_files("tid1500"), FIXTURES / "tid1501_containers.dcm"]


@pytest.fixture(scope="module")
def pushed(fhir_url: str, reports: list[Path]) -> dict[str, int]:
    """Push the reports once with --seed; the totals after."""
    result = cli("push", *map(str, reports), "--fhir-url", fhir_url, "--seed")
    assert result.exit_code == 0, result.output
    assert f"summary: {len(reports)} file(s): " in result.output and ", 0 failed" in result.output, result.output[-2000:]
    with FhirClient(fhir_url) as client:
        return totals(client)


def test_every_resource_lands_exactly_once(pushed: dict[str, int], reports: list[Path]) -> None:
    expected = identities(reports)
    for rtype in TYPES:
        assert pushed[rtype] == expected[rtype], rtype
    assert pushed["Observation"] > 1500  # the pyradiomics report alone has 1,561 measurements


def test_read_back_references_resolve_to_seeded_resources(pushed: dict[str, int], reports: list[Path], fhir: FhirClient) -> None:
    for path in reports:
        conv = convert_path(str(path)).conversions[0]
        header = conv.document.header
        patients = fhir.search("Patient", identifier=str(header.patient_id))
        studies = fhir.search("ImagingStudy", identifier=f"urn:dicom:uid|{urn_oid(conv.document.study_instance_uid)}")
        assert len(patients) == 1 and len(studies) == 1, path.name
        patient, study = f"Patient/{patients[0]['id']}", f"ImagingStudy/{studies[0]['id']}"
        source = urn_oid(conv.document.sop_instance_uid)
        made = Counter(r["resourceType"] for r in conv.resources.resources() if r["resourceType"] != "Device")
        read_back: dict[str, list[dict[str, Any]]] = {t: fhir.search(t, _source=source) for t in made}
        assert read_back["Observation"], path.name
        for rtype, n in made.items():
            # Fewer when shared: a finding site or reader another report created first keeps its source.
            assert len(read_back[rtype]) <= n, (path.name, rtype)
        for obs in read_back.get("Observation", []):
            assert obs["subject"]["reference"] == patient, path.name
            assert study in [p.get("reference") for p in obs.get("partOf", [])], path.name
        for sel in read_back.get("ImagingSelection", []):
            assert sel["subject"]["reference"] == patient, path.name
        if header.accession_number:
            orders = fhir.search("ServiceRequest", identifier=header.accession_number)
            assert len(orders) == 1
            for obs in read_back.get("Observation", []):
                assert f"ServiceRequest/{orders[0]['id']}" in [b.get("reference") for b in obs.get("basedOn", [])], path.name
        # Every reference between the report's resources resolves on the server.
        refs = [n["reference"] for rs in read_back.values() for n in walk_json(rs) if isinstance(n, dict) and isinstance(n.get("reference"), str)]
        assert not [r for r in refs if r.startswith(("urn:uuid:", "urn:oid:")) or "?" in r]  # the server made them literal
        targets = set(refs)
        for ref in sorted(targets)[:200]:  # at most 200 reads a report, to bound the run
            rtype, rid = ref.split("/")[:2]
            assert fhir.request("GET", f"{rtype}/{rid}")["id"] == rid, ref


def test_second_push_changes_nothing(pushed: dict[str, int], reports: list[Path], fhir_url: str, fhir: FhirClient) -> None:
    result = cli("push", *map(str, reports), "--fhir-url", fhir_url)
    assert result.exit_code == 0, result.output
    assert "(0 created)" in result.output and totals(fhir) == pushed
    again = cli("push", str(IG_EXAMPLE), "--fhir-url", fhir_url, "-j", "2", "--validate")  # convert's options, same result
    assert again.exit_code == 0 and "(0 created)" in again.output, again.output
    assert totals(fhir) == pushed


class DroppingProxy(ThreadingHTTPServer):
    """Forwards to the FHIR server; for the first `drops` POSTs it lets the server do the work,
    then drops the connection before the client sees the response (an interrupted push)."""

    def __init__(self, upstream: str, drops: int) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream.rstrip("/")
        self.drops = drops
        self.posts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/fhir"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: DroppingProxy

    def log_message(self, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("/fhir", 1)[-1]
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept", "cache-control")}
        r = httpx.request(self.command, self.server.upstream + path, content=body, headers=headers, timeout=300)
        if self.command == "POST":
            self.server.posts += 1
            if self.server.drops > 0:
                self.server.drops -= 1
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
        self.send_response(r.status_code)
        self.send_header("Content-Type", r.headers.get("Content-Type", "application/fhir+json"))
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    do_GET = do_POST = do_PUT = _forward


def test_interrupted_push_is_retried_without_duplicates(fhir_url: str, fhir: FhirClient) -> None:
    report = FIXTURES / "tid1411_volumetric.dcm"
    seed_fixture_study(fhir_url)
    before = totals(fhir)
    proxy = DroppingProxy(fhir_url, drops=2)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with FhirClient(proxy.url, retry=RetryPolicy(attempts=4, base_delay=0.1)) as client:
            r = push_path(client, str(report))
    finally:
        proxy.shutdown()
    assert r.ok, r.error
    assert proxy.posts == 3  # two transactions committed whose responses were lost, one answered
    assert all(n == 1 for n in identity_counts(fhir, report).values())
    new = identities([report])
    after = totals(fhir)
    for rtype in TYPES:
        # Devices (equipment, algorithm) may already exist from the reports pushed before.
        assert after[rtype] - before[rtype] == new[rtype] or (rtype == "Device" and after[rtype] - before[rtype] <= new[rtype]), rtype


def identity_counts(client: FhirClient, path: Path) -> dict[str, int]:
    """How many resources on the server carry each identity of the report's resources."""
    out = {}
    for b in transaction_bundles(path):
        for e in b["entry"]:
            params = dict(parse_qsl(e["request"]["ifNoneExist"]))  # identifier=, and _tag= for Devices (D-35)
            out[f"{e['request']['url']}?{e['request']['ifNoneExist']}"] = client.count(e["request"]["url"], **params)
    return out


def test_corrected_report_replaces_its_predecessor(fhir_url: str, fhir: FhirClient, manifest: dict[str, Any]) -> None:
    original, corrected = FIXTURES / "tid1410_planar_regions.dcm", FIXTURES / "tid1410_planar_regions_corrected.dcm"
    exp = manifest["fixtures"]["tid1410_planar_regions_corrected"]
    assert cli("push", str(original), "--fhir-url", fhir_url, "--seed").exit_code == 0
    old = urn_oid(exp["predecessor"])
    assert {o["status"] for o in fhir.search("Observation", _source=old)} == {"final"}

    result = cli("push", str(corrected), "--fhir-url", fhir_url)
    assert result.exit_code == 0, result.output
    assert "corrects 1 earlier report(s)" in result.output
    # Nothing the original said is still current.
    for rtype in ("Observation", "ImagingSelection"):
        assert {r["status"] for r in fhir.search(rtype, _source=old)} == {"entered-in-error"}, rtype
    # The correction's measurements are current: Lesion 1 re-measured, Lesion 2 unchanged.
    new = fhir.search("Observation", _source=urn_oid(sop_uid(corrected)))
    assert new and {o["status"] for o in new} == {"final"}
    diameters = sorted(float(o["valueQuantity"]["value"]) for o in new if "valueQuantity" in o)
    assert diameters == sorted(g["measurement"]["value"] for g in exp["groups"])
    # Of everything either version said, only the correction's diameters are current.
    both = fhir.search("Observation", _source=f"{old},{urn_oid(sop_uid(corrected))}")
    current = sorted(float(o["valueQuantity"]["value"]) for o in both if "valueQuantity" in o and o["status"] != "entered-in-error")
    withdrawn = sorted(float(o["valueQuantity"]["value"]) for o in both if "valueQuantity" in o and o["status"] == "entered-in-error")
    assert current == diameters and withdrawn == sorted(g["measurement"]["value"] for g in manifest["fixtures"]["tid1410_planar_regions"]["groups"])

    # Pushing the correction again, or replaying the original, changes nothing.
    before = totals(fhir)
    assert cli("push", str(corrected), "--fhir-url", fhir_url).exit_code == 0
    assert cli("push", str(original), "--fhir-url", fhir_url).exit_code == 0
    assert totals(fhir) == before
    assert {r["status"] for r in fhir.search("Observation", _source=old)} == {"entered-in-error"}


def test_server_validation_refuses_a_profile_error(fhir_url: str, fhir: FhirClient) -> None:
    """The server checks the IG's profiles: a measurement without its required code is refused,
    readably, and the transaction stores nothing (all or nothing)."""
    report = FIXTURES / "tid1501_containers.dcm"
    seed_fixture_study(fhir_url)
    bundle = transaction_bundles(report)[0]
    measurement = next(e["resource"] for e in bundle["entry"] if e["resource"].get("meta", {}).get("profile", [""])[0].endswith("/imaging-measurement"))
    del measurement["code"]
    before = totals(fhir)
    with pytest.raises(DeliveryError) as caught:
        fhir.transaction(bundle)
    assert caught.value.status in (400, 422) and "error:" in str(caught.value) and "Observation.code" in str(caught.value)
    assert totals(fhir) == before


def test_missing_patient_fails_clearly_and_keeps_the_report(fhir_url: str, fhir: FhirClient, tmp_path: Path) -> None:
    # Another patient's report: rewrite the Patient ID of a fixture (as DICOM JSON) so it is not seeded.
    import pydicom

    ds = pydicom.dcmread(FIXTURES / "tid1411_volumetric.dcm")
    ds.PatientID = "NOT-SEEDED-0001"
    ds.SOPInstanceUID = ds.SOPInstanceUID + ".9"
    report = tmp_path / "unseeded.json"
    report.write_text(json.dumps([ds.to_json_dict()]))
    seed_fixture_study(fhir_url)
    before = totals(fhir)
    result = cli("push", str(report), "--fhir-url", fhir_url, "--spool", str(tmp_path / "spool"))
    assert result.exit_code == 1
    assert "Patient sought by its Patient ID (0010,0020) (an identifier without a system)" in result.output and "not on the server" in result.output
    assert "NOT-SEEDED-0001" not in result.output  # no patient data in messages
    assert (tmp_path / "spool" / report.name).read_bytes() == report.read_bytes()
    assert totals(fhir) == before
    # --missing logical: the subject becomes a logical reference, which the profiles accept.
    result = cli("push", str(report), "--fhir-url", fhir_url, "--missing", "logical")
    assert result.exit_code == 0 and "logical reference used" in result.output, result.output
    stored = fhir.search("Observation", _source=urn_oid(ds.SOPInstanceUID))
    assert stored and all(o["subject"] == {"type": "Patient", "identifier": {"value": "NOT-SEEDED-0001"}} for o in stored)


def test_seed_pushes_a_report_without_a_patient_id(fhir_url: str, fhir: FhirClient, tmp_path: Path) -> None:
    """Issue 27.4: --seed created nothing for an SR without a Patient ID, and push then failed on the
    missing ImagingStudy. Now the study is seeded with the report's display-only subject."""
    import pydicom

    ds = pydicom.dcmread(FIXTURES / "tid1410_planar_regions.dcm")
    del ds.PatientID
    ds.SOPInstanceUID = ds.SOPInstanceUID + ".7"
    ds.StudyInstanceUID = ds.StudyInstanceUID + ".7"  # a study no other test seeded
    report = tmp_path / "no-patient-id.json"
    report.write_text(json.dumps([ds.to_json_dict()]))
    result = cli("push", str(report), "--fhir-url", fhir_url, "--seed")
    assert result.exit_code == 0, result.output
    assert "no Patient is seeded" in result.output
    studies = fhir.search("ImagingStudy", identifier=f"urn:dicom:uid|urn:oid:{ds.StudyInstanceUID}")
    assert len(studies) == 1 and "reference" not in studies[0]["subject"]
    stored = fhir.search("Observation", _source=urn_oid(ds.SOPInstanceUID))
    assert stored and all("reference" not in o["subject"] for o in stored)
    assert all(o["partOf"][0]["reference"] == f"ImagingStudy/{studies[0]['id']}" for o in stored)


def test_a_correction_whose_answer_is_lost_is_retried_idempotently(fhir_url: str, fhir: FhirClient, tmp_path: Path, manifest: dict[str, Any]) -> None:
    """Issue 10.14: the retry of a committed correction got HTTP 409/412 (If-Match on a version the
    lost attempt had replaced), exit 1, and the delivered report was spooled."""
    original = remapped(FIXTURES / "tid1410_planar_regions.dcm", tmp_path / "original.dcm", ".7")
    corrected = remapped(FIXTURES / "tid1410_planar_regions_corrected.dcm", tmp_path / "corrected.dcm", ".7")
    assert cli("push", str(original), "--fhir-url", fhir_url, "--seed").exit_code == 0
    old = urn_oid(sop_uid(original))
    proxy = DroppingProxy(fhir_url, drops=1)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with FhirClient(proxy.url, retry=RetryPolicy(attempts=4, base_delay=0.1)) as client:
            r = push_path(client, str(corrected), spool=tmp_path / "spool")
    finally:
        proxy.shutdown()
    assert r.ok, r.error
    assert proxy.posts >= 2 and not (tmp_path / "spool").exists()
    assert any("changed version" in n for n in r.notes), r.notes  # the 409/412 path was taken
    for rtype in ("Observation", "ImagingSelection"):
        assert {x["status"] for x in fhir.search(rtype, _source=old)} == {"entered-in-error"}, rtype
    new = fhir.search("Observation", _source=urn_oid(sop_uid(corrected)))
    diameters = sorted(float(o["valueQuantity"]["value"]) for o in new if "valueQuantity" in o)
    assert diameters == sorted(g["measurement"]["value"] for g in manifest["fixtures"]["tid1410_planar_regions_corrected"]["groups"])
    assert all(n == 1 for n in identity_counts(fhir, corrected).values())


@pytest.mark.java
def test_readme_delivery_examples(fhir_url: str, tmp_path: Path) -> None:
    """The push examples of docs/delivery.md and the README, as written, against this server (issue 11: every example runs).

    `scripts/hapi-server.sh start/stop` is how this test run's server was started; the other
    lines run with the server's URL for `$U` and for the example URL."""
    import os
    import re
    import shutil
    import subprocess
    import sys

    from tests.helpers import ROOT

    delivery = (ROOT / "docs" / "delivery.md").read_text()
    hapi = re.search(r"## Trying it end to end with HAPI FHIR.*?```sh\n(.*?)```", delivery, re.S)
    deliver = re.search(r"# Delivering to a FHIR server.*?```sh\n(.*?)```", delivery, re.S)
    readme = re.search(r"## Beyond one file.*?```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert hapi and deliver and readme
    push_line = next(l for l in readme.group(1).splitlines() if l.startswith("sr2fhir push"))
    lines = [l.split("  #")[0].strip() for l in hapi.group(1).splitlines() + deliver.group(1).splitlines() + [push_line]]
    lines = [l for l in lines if l and "hapi-server.sh" not in l]
    (tmp_path / "reports").mkdir()
    shutil.copy(ROOT / "examples" / "measurement-report.dcm", tmp_path / "reports" / "demo.dcm")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "U": fhir_url}
    script = "\n".join(["set -e", *[l.replace("https://fhir.example.org/fhir", fhir_url) for l in lines]])
    script = script.replace(".venv/bin/sr2fhir", "sr2fhir").replace("examples/", f"{ROOT}/examples/").replace("U=http://127.0.0.1:8089/fhir", "true")
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, script + "\n" + r.stderr[-3000:]
    assert '"total"' in r.stdout and "pushed" in r.stderr
