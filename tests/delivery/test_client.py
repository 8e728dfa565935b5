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
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})

    client(handler, []).transaction({"resourceType": "Bundle", "type": "transaction"})
    assert got[0].method == "POST" and str(got[0].url) == "http://fhir.test/fhir/"
    assert got[0].headers["Content-Type"] == "application/fhir+json" and json.loads(got[0].content)["type"] == "transaction"


@pytest.mark.parametrize(
    "body, headers",
    [
        (b"<html>proxy says ok</html>", {}),
        (b'{"resourceType": "Bundle", "entry": [', {}),
        (b"[1, 2]", {}),
        (b"\x1f\x8b not really gzip", {"Content-Encoding": "gzip"}),
    ],
    ids=["not-json", "truncated-json", "json-array", "bad-gzip"],
)
def test_a_2xx_with_a_bad_body_is_a_delivery_failure(body: bytes, headers: dict[str, str]) -> None:
    """Issue 10.1: a 2xx with a body that is not a Bundle crashed push with a traceback."""
    c = client(lambda req: httpx.Response(200, content=body, headers=headers), [])
    with pytest.raises(DeliveryError) as e:
        c.transaction({"resourceType": "Bundle", "type": "transaction"})
    assert "may have committed" in str(e.value) and not e.value.retryable and not e.value.stop


def test_credentials_echoed_by_the_server_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10.12: a 401 body quoting the request headers printed the bearer token."""
    def echo(req: httpx.Request) -> httpx.Response:
        oo = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "security", "diagnostics": f"bad header: {req.headers['Authorization']}"}]}
        return httpx.Response(401, json=oo)

    monkeypatch.setenv("TOKEN_X", "s3cr3t-token-value")
    with pytest.raises(DeliveryError) as e:
        client(echo, [], auth=bearer_from("TOKEN_X")).transaction({"resourceType": "Bundle"})
    assert "s3cr3t" not in str(e.value) and "Bearer [credential]" in str(e.value) and e.value.stop
    monkeypatch.setenv("SR2FHIR_PASSWORD", "hunter22")
    with pytest.raises(DeliveryError) as e:
        client(echo, [], auth=BasicAuthFromEnv("alice")).transaction({"resourceType": "Bundle"})
    assert "hunter22" not in str(e.value) and "Basic [credential]" in str(e.value)


def test_a_trickling_server_meets_the_overall_deadline() -> None:
    """Issue 10.2: httpx's timeout is per read, so a server sending a byte every 20 s held push for an hour."""
    import socket
    import threading
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b" ")
            except OSError:
                break
            time.sleep(0.3)
        conn.close()

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    start = time.monotonic()
    try:
        with FhirClient(f"http://127.0.0.1:{port}/fhir", timeout=2.0, retry=RetryPolicy(attempts=1)) as c:
            with pytest.raises(DeliveryError) as e:
                c.transaction({"resourceType": "Bundle"})
    finally:
        stop.set()
        srv.close()
    elapsed = time.monotonic() - start
    assert elapsed < 10, elapsed  # each byte arrives well within the per-read timeout
    assert "no complete answer within 2 s" in str(e.value) and "127.0.0.1" in str(e.value) and "1 attempt:" in str(e.value)


def test_a_search_error_names_the_host_not_the_patient_id() -> None:
    c = client(lambda req: httpx.Response(404), [])
    with pytest.raises(DeliveryError) as e:
        c.search("Patient", identifier="urn:oid:1.2|PATIENT-SECRET-ID")
    assert "GET http://fhir.test/fhir/Patient: HTTP 404" in str(e.value) and "PATIENT-SECRET-ID" not in str(e.value)


def test_version_mismatch_names_the_server_version_and_the_option() -> None:
    from sr2fhir.delivery.client import version_mismatch

    assert version_mismatch("5.0.0", "R5") is None and version_mismatch("4.0.1", "R4") is None
    assert version_mismatch("4.3.0", "R4") is None  # R4B takes R4 output
    assert version_mismatch(None, "R4") is None  # the server did not say: the push decides
    msg = version_mismatch("4.0.1", "R5")
    assert msg is not None and "FHIR 4.0.1" in msg and "--fhir-version R4" in msg
    msg = version_mismatch("5.0.0", "R4")
    assert msg is not None and "--fhir-version R5" in msg


@pytest.mark.parametrize(("failure", "found", "posts", "asked"), [
    (httpx.ReadTimeout("slow"), [True], 1, 1),  # sent whole, answer lost, found done: not sent again
    (httpx.ReadTimeout("slow"), [False, False, False], 4, 3),  # looked for after every late answer, then answered
    (httpx.ConnectError("down"), [True], 2, 0),  # never sent: nothing to look for
    (httpx.Response(503), [True], 2, 0),  # refused: nothing was done
])
def test_a_late_answer_is_looked_for_before_the_request_is_sent_again(failure: Any, found: list[bool], posts: int, asked: int) -> None:
    """Issue 27.2: after an answer that did not come in time, `landed` decides whether to send again."""
    from sr2fhir.delivery.client import LANDED

    sent: list[int] = []
    checks: list[int] = []

    def handler(req: httpx.Request) -> httpx.Response:
        sent.append(1)
        if len(sent) == 1 or (isinstance(failure, httpx.ReadTimeout) and len(sent) < 4):
            if isinstance(failure, httpx.Response):
                return failure
            raise failure
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": [{}]})

    def landed() -> bool:
        checks.append(1)
        return found[len(checks) - 1]

    answer = client(handler, []).transaction({"resourceType": "Bundle"}, landed=landed)
    assert (len(sent), len(checks)) == (posts, asked)
    assert (answer is LANDED) == (asked > 0 and found[asked - 1])


def test_a_search_that_fails_while_looking_means_send_again() -> None:
    sent: list[int] = []

    def handler(req: httpx.Request) -> httpx.Response:
        sent.append(1)
        if len(sent) == 1:
            raise httpx.ReadTimeout("slow")
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})

    def landed() -> bool:
        raise DeliveryError("search refused")

    assert client(handler, []).transaction({"resourceType": "Bundle"}, landed=landed)["type"] == "transaction-response" and len(sent) == 2
