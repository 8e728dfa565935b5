"""The delivery loop's rules (docs/gateway.md, "What each failure does"), one report at a time,
against a small local HTTP server that answers as a FHIR server would on a bad day."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from sr2fhir.delivery.client import FhirClient, RetryPolicy
from sr2fhir.gateway.deliver import Backoff, DeliveryPolicy, Deliverer
from sr2fhir.gateway.intake import Intake
from sr2fhir.gateway.metrics import Metrics
from sr2fhir.gateway.queue import Queue, Report
from tests.gateway.helpers import wait_for
from tests.helpers import FIXTURES, SHARED, LocalServer, free_port

REPORT = FIXTURES / "tid1410_planar_regions.dcm"
EMPTY = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": []}).encode()
FOUND = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]}).encode()
OUTCOME = json.dumps({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing", "diagnostics": "Observation.code: minimum required = 1"}]}).encode()
DONE = json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {"status": "201 Created"}}]}).encode()


def fhir_server(post: tuple[int, dict[str, str], bytes], found: bytes = FOUND, version: str = "5.0.0",
                posts: list[bytes] | None = None) -> Callable[[str, str, bytes], Any]:
    """Searches find one match (or `found`), `metadata` answers (FHIR `version`), a transaction
    gets `post` (its body is added to `posts`)."""
    capability = json.dumps({"resourceType": "CapabilityStatement", "fhirVersion": version}).encode()

    def respond(method: str, path: str, body: bytes) -> Any:
        if method == "POST":
            if posts is not None:
                posts.append(body)
            return post
        if "metadata" in path:
            return 200, {"Content-Type": "application/fhir+json"}, capability
        return 200, {"Content-Type": "application/fhir+json"}, found
    return respond


class Setup:
    def __init__(self, state: Path, url: str, backoff: Backoff = Backoff(retry_delay=0.1, max_delay=600), conversion: DeliveryPolicy = DeliveryPolicy()) -> None:
        self.queue = Queue(state)
        self.metrics = Metrics(self.queue)
        self.client = FhirClient(url, retry=RetryPolicy(attempts=1), timeout=30, connect_timeout=5)
        self.deliverer = Deliverer(self.queue, Intake(self.queue, self.metrics, 0), self.metrics, self.client, conversion, backoff)

    def queued(self, path: Path = REPORT) -> Report:
        data = path.read_bytes()
        self.queue.add("1.2.3", hashlib.sha256(data).hexdigest(), data, sop_class="", study_uid=None, series_uid=None, source="test")
        report = self.queue.get("1.2.3")
        assert report is not None
        return report

    def after(self, report: Report) -> Report:
        self.deliverer.deliver(report)
        got = self.queue.get(report.sop_uid)
        assert got is not None
        return got


@pytest.fixture()
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_delivered(state: Path) -> None:
    with LocalServer(fhir_server((200, {"Content-Type": "application/fhir+json"}, DONE))) as server:
        s = Setup(state, server.url)
        r = s.after(s.queued())
        assert r.state == "delivered" and r.delivered_at is not None and r.attempts == 0
        assert s.metrics.delivered._value.get() == 1 and s.metrics.latency._sum.get() > 0


def test_refused_by_the_server_is_dead_with_its_reason(state: Path) -> None:
    with LocalServer(fhir_server((422, {"Content-Type": "application/fhir+json"}, OUTCOME))) as server:
        s = Setup(state, server.url)
        r = s.after(s.queued())
        assert r.state == "dead" and "HTTP 422" in (r.reason or "") and "minimum required" in (r.reason or "")


def test_not_tid1500_is_dead_without_a_request(state: Path) -> None:
    with LocalServer(fhir_server((200, {}, DONE))) as server:
        s = Setup(state, server.url)
        r = s.after(s.queued(SHARED / "data" / "non-tid1500" / "pydicom__test-SR.dcm"))
        assert r.state == "dead" and "not a TID 1500 Measurement Report" in (r.reason or "")
        assert server.requests == []


def test_a_server_error_waits_at_least_its_retry_after(state: Path) -> None:
    with LocalServer(fhir_server((503, {"Retry-After": "120"}, b""))) as server:
        s = Setup(state, server.url)
        before = time.time()
        r = s.after(s.queued())
        assert r.state == "converted" and r.attempts == 1 and "HTTP 503" in (r.reason or "")
        assert r.next_at >= before + 120
        assert not s.deliverer.paused  # the server answers: this report waits, the others go on


def test_after_the_most_attempts_the_dead_letter(state: Path) -> None:
    with LocalServer(fhir_server((500, {}, b""))) as server:
        s = Setup(state, server.url, Backoff(max_attempts=2, retry_delay=0.1))
        report = s.queued()
        r = s.after(report)
        assert r.state == "converted" and r.attempts == 1
        r = s.after(r)
        assert r.state == "dead" and (r.reason or "").startswith("gave up after 2 attempts")


def test_an_answer_that_cannot_be_read_is_tried_again_not_dead(state: Path) -> None:
    """The server may have committed the transaction: pushing it again is safe (conditional creates)."""
    with LocalServer(fhir_server((200, {"Content-Type": "application/fhir+json"}, b"<html>proxy says ok</html>"))) as server:
        s = Setup(state, server.url)
        r = s.after(s.queued())
        assert r.state == "converted" and r.attempts == 1 and "not JSON" in (r.reason or "")


def test_a_patient_not_there_yet_is_tried_again(state: Path) -> None:
    with LocalServer(fhir_server((200, {}, DONE), found=EMPTY)) as server:
        s = Setup(state, server.url)
        r = s.after(s.queued())
        assert r.state == "converted" and r.attempts == 1 and "not on the server" in (r.reason or "")


@pytest.mark.parametrize("how", ["unreachable", "401"])
def test_an_unreachable_or_refusing_server_pauses_delivery_without_using_attempts(state: Path, how: str) -> None:
    before = time.time()
    if how == "unreachable":
        url = f"http://127.0.0.1:{free_port()}/fhir"  # nothing listens
        s = Setup(state, url)
        r = s.after(s.queued())
    else:
        with LocalServer(fhir_server((401, {}, b""))) as server:
            s = Setup(state, server.url)
            r = s.after(s.queued())
    assert r.state == "converted" and r.attempts == 0 and r.next_at == r.received_at  # its turn is not pushed back
    assert s.deliverer.paused and s.metrics.paused._value.get() == 1
    assert s.deliverer.paused_until > before


def test_a_server_of_another_fhir_version_pauses_delivery_and_sends_nothing(state: Path) -> None:
    posts: list[bytes] = []
    with LocalServer(fhir_server((200, {"Content-Type": "application/fhir+json"}, DONE), version="4.0.1", posts=posts)) as server:
        s = Setup(state, server.url)  # R5 output, the default
        r = s.after(s.queued())
    # Every report would be refused and dead-lettered: the gateway waits for the operator instead.
    assert r.state == "converted" and r.attempts == 0 and not posts
    assert s.deliverer.paused and "FHIR 4.0.1" in (s.deliverer.pause_reason or "") and "--fhir-version R4" in (s.deliverer.pause_reason or "")


class FullDisk:
    """The queue's SQLite connection, whose every write fails as SQLite fails on a full disk while `full` is set."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.full = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.full and sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def test_a_full_state_disk_pauses_delivery_and_it_resumes_when_space_returns(state: Path) -> None:
    """Issue 24, defect 3: the report is pushed, but marking it delivered fails (disk full). The
    delivery thread once died of it, and the service with it (exit 0). Now delivery pauses, says
    why, probes the queue, and delivers once space is back: the report is pushed again (a
    conditional create: nothing twice on a real server) and marked delivered."""
    posts: list[bytes] = []
    with LocalServer(fhir_server((200, {"Content-Type": "application/fhir+json"}, DONE), posts=posts)) as server:
        s = Setup(state, server.url, Backoff(retry_delay=0.1))
        q = s.queue
        s.queued()
        q.converted("1.2.3")  # so that the first write of its delivery is marking it delivered
        q._db = disk = FullDisk(q._db)  # type: ignore[assignment]
        disk.full = True
        stop = threading.Event()
        thread = threading.Thread(target=s.deliverer.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for("delivery to pause", lambda: s.deliverer.paused, 60, every=0.05)
            assert "queue cannot be written" in (s.deliverer.pause_reason or "") and "disk is full" in (s.deliverer.pause_reason or "")
            time.sleep(1.5)  # several probes fail while the disk stays full
            assert thread.is_alive() and s.deliverer.paused and q.get("1.2.3").state == "converted"  # type: ignore[union-attr]
            pushed_while_full = len(posts)
            assert pushed_while_full >= 1
            disk.full = False
            wait_for("the report to be delivered", lambda: q.get("1.2.3").state == "delivered", 60, every=0.05)  # type: ignore[union-attr]
            assert not s.deliverer.paused and s.metrics.paused._value.get() == 0
            assert len(posts) == pushed_while_full + 1  # once more after the pause, not in a loop while full
        finally:
            stop.set()
            thread.join(30)
        assert not thread.is_alive()


def test_a_part_that_stops_ends_the_service_with_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 24, defect 3: a part of the gateway that dies ends the process with a failure, never
    with exit 0, so that a supervisor restarts it."""
    from sr2fhir.delivery.connection import Connection
    from sr2fhir.gateway import service

    def broken(self: Deliverer, stop: threading.Event) -> None:
        raise MemoryError("simulated")

    monkeypatch.setattr(Deliverer, "run", broken)
    conn = Connection(f"http://127.0.0.1:{free_port()}/fhir", retries=0, timeout=5.0, connect_timeout=5.0)
    settings = service.Settings(connection=conn, state=tmp_path / "state", dicom_port=free_port(), http_port=free_port())
    with pytest.raises(service.GatewayFailed, match="deliver"):
        service.serve(settings)


def test_a_report_without_a_patient_id_is_dead_at_once_with_the_reason(state: Path, tmp_path: Path) -> None:
    """Issue 24, defect 6: it was retried for 30 minutes as "ImagingStudy not on the server"."""
    import pydicom

    ds = pydicom.dcmread(REPORT)
    del ds.PatientID
    ds.save_as(tmp_path / "no-patient-id.dcm")
    with LocalServer(fhir_server((200, {"Content-Type": "application/fhir+json"}, DONE), found=EMPTY)) as server:
        s = Setup(state, server.url)
        r = s.after(s.queued(tmp_path / "no-patient-id.dcm"))
        assert r.state == "dead" and r.attempts == 0 and "no Patient ID (0010,0020)" in (r.reason or "")
        assert server.requests == []
        logical = Setup(tmp_path / "logical", server.url, conversion=DeliveryPolicy(missing="logical"))
        assert logical.after(logical.queued(tmp_path / "no-patient-id.dcm")).state == "delivered"  # the operator chose so


def test_latency_quantiles_read_from_the_buckets_are_close(state: Path) -> None:
    """Issue 24, defect 6: with buckets 60 -> 300 -> 900 s, the median of a 100 s backlog read
    139 s. Prometheus' histogram_quantile interpolates linearly within the bucket; here it may be
    off by at most the bucket's width relative to its bound."""
    s = Setup(state, "http://127.0.0.1:9/fhir")
    values = [i * 2.0 for i in range(1, 101)]  # 2 .. 200 s, median 101
    for v in values:
        s.metrics.latency.observe(v)
    buckets = [(float(m.labels["le"]), m.value) for m in next(iter(s.metrics.latency.collect())).samples if m.name.endswith("_bucket")]

    def quantile(q: float) -> float:
        rank, lower, below = q * len(values), 0.0, 0.0
        for bound, count in buckets:
            if count >= rank:
                return lower + (bound - lower) * (rank - below) / (count - below)
            lower, below = bound, count
        raise AssertionError("past the last bucket")

    for q in (0.5, 0.9):
        true = sorted(values)[int(q * len(values)) - 1]
        assert abs(quantile(q) - true) / true < 0.2, (q, quantile(q), true)
