"""push: reference policies against a fake server (httpx mock transport); no patient data in messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from sr2fhir.delivery.client import FhirClient, RetryPolicy
from sr2fhir.delivery.push import push_path
from tests.helpers import FIXTURES, transaction_bundles


class FakeServer:
    """Knows some Patients/ImagingStudies/ServiceRequests; records transactions."""

    def __init__(self, matches: dict[str, int]) -> None:
        self.matches = matches
        self.posted: list[dict[str, Any]] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        if req.method == "GET":
            rtype = req.url.path.rsplit("/", 1)[-1]
            n = self.matches.get(rtype, 1)
            return httpx.Response(200, json={"resourceType": "Bundle", "entry": [{"resource": {"resourceType": rtype, "id": f"{rtype.lower()}-{i}"}} for i in range(n)]})
        bundle = json.loads(req.content)
        self.posted.append(bundle)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {"status": "201 Created"}} for _ in bundle["entry"]]})


def push(server: FakeServer, path: Path, **kw: Any) -> Any:
    c = FhirClient("http://fhir.test/fhir", transport=httpx.MockTransport(server), sleep=lambda s: None, retry=RetryPolicy(attempts=2))
    return push_path(c, str(path), **kw)


REPORT = FIXTURES / "tid1501_containers.dcm"


def test_push_resolves_and_posts() -> None:
    server = FakeServer({})
    r = push(server, REPORT)
    assert r.ok and r.created == len(server.posted[0]["entry"]) > 0
    refs = {e["resource"]["subject"]["reference"] for e in server.posted[0]["entry"] if "subject" in e["resource"]}
    assert refs == {"Patient?identifier=FIXTURE-PID-4711"}


def test_missing_target_fails_clearly_without_patient_data(tmp_path: Path) -> None:
    server = FakeServer({"Patient": 0})
    r = push(server, REPORT, spool=tmp_path / "spool")
    assert not r.ok and not server.posted
    assert "Patient sought by its Patient ID (0010,0020)" in r.error and "not on the server" in r.error and "FIXTURE-PID-4711" not in r.error
    assert (tmp_path / "spool" / REPORT.name).read_bytes() == REPORT.read_bytes()  # kept for retry


def test_missing_target_logical_policy() -> None:
    server = FakeServer({"Patient": 0})
    r = push(server, REPORT, missing="logical")
    assert r.ok
    subj = next(e["resource"]["subject"] for e in server.posted[0]["entry"] if "subject" in e["resource"])
    assert "reference" not in subj and subj["identifier"]["value"] == "FIXTURE-PID-4711"


@pytest.mark.parametrize(("policy", "ok"), [("fail", False), ("first", True)])
def test_ambiguous_target(policy: str, ok: bool) -> None:
    server = FakeServer({"ImagingStudy": 2})
    r = push(server, REPORT, multiple=policy)
    assert r.ok is ok
    if ok:
        parts = {e["resource"]["partOf"][0]["reference"] for e in server.posted[0]["entry"] if "partOf" in e["resource"]}
        assert parts == {"ImagingStudy/imagingstudy-0"}


CORRECTED = FIXTURES / "tid1410_planar_regions_corrected.dcm"


class FakeServerWithPredecessor(FakeServer):
    """Also answers `_source` searches with what the predecessor report left on the server."""

    def __init__(self, predecessor: list[dict[str, Any]]) -> None:
        super().__init__({})
        self.predecessor = predecessor
        self.sources: list[str] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        source = req.url.params.get("_source")
        if req.method == "GET" and source:
            self.sources.append(source)
            rtype = req.url.path.rsplit("/", 1)[-1]
            return httpx.Response(200, json={"resourceType": "Bundle", "entry": [{"resource": r} for r in self.predecessor if r["resourceType"] == rtype]})
        return super().__call__(req)


def test_corrected_report_updates_in_place_and_retires_the_rest(manifest: dict[str, Any]) -> None:
    predecessor = manifest["fixtures"]["tid1410_planar_regions_corrected"]["predecessor"]
    bundle = transaction_bundles(CORRECTED)[0]
    kept = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    source = f"urn:oid:{predecessor}#request-17"  # servers append a request id
    server = FakeServerWithPredecessor([
        {"resourceType": "Observation", "id": "same", "status": "final", "identifier": kept["identifier"], "meta": {"source": source}},
        {"resourceType": "Observation", "id": "withdrawn", "status": "final", "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0"}], "meta": {"source": source, "versionId": "3"}},
        {"resourceType": "Observation", "id": "already", "status": "entered-in-error", "meta": {"source": source}},
    ])
    r = push(server, CORRECTED)
    assert r.ok and r.retired == 1 and server.sources == [f"urn:oid:{predecessor}"] * 2  # Observation, ImagingSelection
    posted = server.posted[0]["entry"]
    for e in posted[: len(bundle["entry"])]:
        rtype = e["resource"]["resourceType"]
        if rtype in ("Observation", "ImagingSelection"):
            assert e["request"]["method"] == "PUT" and e["request"]["url"].startswith(f"{rtype}?identifier=") and "id" not in e["resource"]
        else:
            assert e["request"]["method"] == "POST" and "ifNoneExist" in e["request"]
    retired = posted[len(bundle["entry"]) :]
    assert [e["request"] for e in retired] == [{"method": "PUT", "url": "Observation/withdrawn", "ifMatch": 'W/"3"'}]
    assert retired[0]["fullUrl"] == "http://fhir.test/fhir/Observation/withdrawn"
    assert retired[0]["resource"]["status"] == "entered-in-error" and retired[0]["resource"]["meta"] == {"source": f"urn:oid:{predecessor}"}



def test_server_messages_never_show_the_patient_id() -> None:
    """A server may quote the match URL, Patient ID and all, in its OperationOutcome (HAPI-1091)."""

    def server(req: httpx.Request) -> httpx.Response:
        if req.method == "GET":
            return FakeServer({})(req)
        diagnostics = 'HAPI-1091: Invalid match URL "Patient?identifier=FIXTURE-PID-4711" - No resources match this search'
        return httpx.Response(412, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing", "diagnostics": diagnostics}]})

    c = FhirClient("http://fhir.test/fhir", transport=httpx.MockTransport(server), sleep=lambda s: None, retry=RetryPolicy(attempts=1))
    r = push_path(c, str(REPORT))
    assert not r.ok and "HAPI-1091" in r.error and "[Patient ID]" in r.error
    assert "FIXTURE-PID-4711" not in r.error


def test_spool_keeps_same_named_reports_from_different_folders(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "report.dcm", tmp_path / "b" / "report.dcm"
    for p, src in ((a, REPORT), (b, FIXTURES / "tid1411_volumetric.dcm")):
        p.parent.mkdir()
        p.write_bytes(src.read_bytes())
    server = FakeServer({"Patient": 0})  # both fail: the Patient is missing
    for p in (a, b, a):  # a is kept once, however often it fails
        assert not push(server, p, spool=tmp_path / "spool").ok
    kept = sorted((tmp_path / "spool").iterdir())
    assert [k.name for k in kept] == ["report.1.dcm", "report.dcm"]
    assert {k.read_bytes() for k in kept} == {a.read_bytes(), b.read_bytes()}


def test_a_missing_study_suggests_what_works() -> None:
    """Issue 27.4: the message suggested --missing logical, which a server validating against the IG refuses for partOf."""
    server = FakeServer({"ImagingStudy": 0})
    r = push(server, REPORT)
    assert not r.ok and "ImagingStudy sought by its Study Instance UID" in r.error
    assert "--seed" in r.error and "push anyway" not in r.error
