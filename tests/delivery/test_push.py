"""push: reference policies against a fake server (httpx mock transport); no patient data in messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from sr2fhir.delivery.client import FhirClient, RetryPolicy
from sr2fhir.delivery.push import push_path
from tests.conftest import FIXTURES


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
    assert "Patient" in r.error and "not on the server" in r.error and "FIXTURE-PID-4711" not in r.error
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
