"""Retries, Retry-After, auth and error messages of the FHIR client, against httpx's mock transport."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import pytest

from sr2fhir.delivery.client import BasicAuthFromEnv, DeliveryError, FhirClient, RetryPolicy, bearer_from

OO = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing", "diagnostics": "Observation.status: bad", "expression": ["Observation.status"]}]}


def client(handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float], **kw: Any) -> FhirClient:
    return FhirClient("http://fhir.test/fhir", transport=httpx.MockTransport(handler), sleep=sleeps.append, retry=RetryPolicy(attempts=4, base_delay=1.0), **kw)


def test_retries_5xx_and_network_errors_then_succeeds() -> None:
    calls: list[int] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("down")
        if len(calls) == 2:
            return httpx.Response(503)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})

    sleeps: list[float] = []
    assert client(handler, sleeps).transaction({"resourceType": "Bundle"})["type"] == "transaction-response"
    assert len(calls) == 3 and len(sleeps) == 2 and 0.8 <= sleeps[0] <= 1.2 and 1.6 <= sleeps[1] <= 2.4  # exponential


def test_honours_retry_after() -> None:
    state = {"n": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        state["n"] += 1
        return httpx.Response(429, headers={"Retry-After": "7"}) if state["n"] == 1 else httpx.Response(200, json={})

    sleeps: list[float] = []
    client(handler, sleeps).search("Patient", identifier="x")
    assert sleeps == [7.0]


def test_no_retry_on_4xx_and_readable_outcome() -> None:
    sleeps: list[float] = []
    c = client(lambda req: httpx.Response(422, json=OO), sleeps)
    with pytest.raises(DeliveryError) as e:
        c.transaction({"resourceType": "Bundle"})
    assert sleeps == [] and e.value.status == 422
    assert "HTTP 422: error: Observation.status: bad at Observation.status" in str(e.value)


def test_gives_up_and_says_so() -> None:
    sleeps: list[float] = []
    with pytest.raises(DeliveryError, match="gave up after 4 attempts: HTTP 502") as e:
        client(lambda req: httpx.Response(502), sleeps).transaction({})
    assert e.value.retryable and len(sleeps) == 3


def test_bearer_and_basic_auth(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req.headers.get("Authorization", ""))
        return httpx.Response(200, json={})

    monkeypatch.setenv("FHIR_TOKEN", "t0k3n")
    client(handler, [], auth=bearer_from(env="FHIR_TOKEN")).search("Patient")
    (tmp_path / "tok").write_text("filetoken\n")
    client(handler, [], auth=bearer_from(file=str(tmp_path / "tok"))).search("Patient")
    monkeypatch.setenv("SR2FHIR_PASSWORD", "pw")
    client(handler, [], auth=BasicAuthFromEnv("me")).search("Patient")
    assert seen[:2] == ["Bearer t0k3n", "Bearer filetoken"] and seen[2].startswith("Basic ")
    monkeypatch.delenv("FHIR_TOKEN")
    with pytest.raises(DeliveryError, match="no bearer token"):
        bearer_from(env="FHIR_TOKEN")


def test_transaction_posts_fhir_json_to_the_base() -> None:
    got: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        got.append(req)
        return httpx.Response(200, json={})

    client(handler, []).transaction({"resourceType": "Bundle", "type": "transaction"})
    assert got[0].method == "POST" and str(got[0].url) == "http://fhir.test/fhir/"
    assert got[0].headers["Content-Type"] == "application/fhir+json" and json.loads(got[0].content)["type"] == "transaction"
