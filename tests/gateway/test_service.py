"""`sr2fhir serve` for real (issue 12): the gateway as a process, HAPI FHIR as the server (with IG
validation), Orthanc as the archive, pynetdicom and storescu as senders. It is killed with
SIGKILL, its FHIR server goes dark, its disk fills; every count is checked on the server."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from sr2fhir.codes import urn_oid
from sr2fhir.delivery.client import FhirClient
from sr2fhir.gateway.queue import Queue
from tests.gateway.helpers import FlakyLink, GatewayProcess, OrthancServer, Pki, c_store, delivered, on_server_once, ssl_context, stow, variants, wait_for
from tests.helpers import FIXTURES, SHARED, LocalServer, remapped, shared_files, sop_uid

TEMPLATE = FIXTURES / "tid1410_planar_regions.dcm"
CT = SHARED / "data" / "referenced" / "highdicom__ct_image.dcm"
DRAIN = 600.0
"""Seconds a queue may take to drain: generous, for a slow and loaded machine."""


def corpus() -> list[Path]:
    """The shared TID 1500 reports but the 1.2 MB pyradiomics one: its 1,561 Observations take a
    validating HAPI server a minute or more per path, and tests/delivery/test_hapi.py pushes it
    (through push_path, which the gateway's delivery runs too)."""
    return [f for f in shared_files("tid1500") if f.stat().st_size < 200_000]


@pytest.fixture()
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """An empty archive for each test."""
    server = OrthancServer(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop()


def depth(gw: GatewayProcess) -> dict[str, int]:
    m = gw.metrics()
    return {s: int(m.get(f'sr2fhir_queue_depth{{state="{s}"}}', 0)) for s in ("received", "converted", "delivered", "dead")}


def drained(gw: GatewayProcess, total: int) -> bool:
    d = depth(gw)
    return d["received"] + d["converted"] == 0 and d["delivered"] + d["dead"] >= total


@pytest.mark.orthanc
def test_every_report_arrives_once_by_each_input_path(tmp_path: Path, fhir_url: str, fhir: FhirClient, orthanc: OrthancServer) -> None:
    reports = corpus()
    made = {path: variants(TEMPLATE, tmp_path / path, 2, f"paths-{path}") for path in ("dimse", "stow", "orthanc")}
    with GatewayProcess(tmp_path / "state", fhir_url, "--follow-orthanc", orthanc.url, "--follow-interval", "1",
                        "--stow-token-env", "SR2FHIR_TEST_STOW_TOKEN", env={"SR2FHIR_TEST_STOW_TOKEN": "t0ken"}) as gw:
        assert set(c_store(gw.dicom_port, reports + made["dimse"]).values()) == {0}
        r = stow(gw.http_port, reports + made["stow"], token="t0ken")
        assert r.status_code == 200, r.text
        for f in reports + made["orthanc"] + [CT]:
            orthanc.upload(f)
        total = len(reports) + sum(len(v) for v in made.values())
        wait_for("the queue to drain", lambda: drained(gw, total), DRAIN)
        counts = gw.counts()
        assert counts == {"received": 0, "converted": 0, "delivered": total, "dead": 0}, gw.queue("list")
        for f in reports:
            report = Queue(gw.state).get(sop_uid(f))
            assert report is not None and report.times_received == 3, f.name  # one per path, delivered once
        m = gw.metrics()
        assert m["sr2fhir_delivered_total"] == total
        assert m['sr2fhir_duplicates_total{source="orthanc"}'] + m['sr2fhir_duplicates_total{source="stow"}'] == 2 * len(reports)
        assert m["sr2fhir_delivery_latency_seconds_count"] == total
        log = gw.log_lines()
        assert sum(1 for line in log if line["event"] == "delivered") == total  # one line per report
    for f in reports + [p for v in made.values() for p in v]:
        on_server_once(fhir, f)
    assert gw.proc is not None and gw.proc.returncode == 0  # SIGTERM: a clean stop


@pytest.mark.orthanc
def test_the_sweep_catches_what_the_change_log_dropped(tmp_path: Path, fhir_url: str, fhir: FhirClient, orthanc: OrthancServer) -> None:
    dropped = variants(TEMPLATE, tmp_path / "in", 2, "dropped")
    for f in dropped:
        orthanc.upload(f)
    state = tmp_path / "state"
    state.mkdir()
    q = Queue(state)
    q.set_cursor(f"orthanc-changes:{orthanc.url}", str(orthanc.last_change()))  # as if the notifications were lost
    q.close()
    with GatewayProcess(state, fhir_url, "--follow-orthanc", orthanc.url, "--follow-interval", "1", "--sweep-interval", "3") as gw:
        wait_for("the sweep to find them", lambda: all(Queue(state).known(sop_uid(f)) for f in dropped), 300)
        assert {Queue(state).get(sop_uid(f)).source for f in dropped} == {"dicomweb"}  # type: ignore[union-attr]
        wait_for("delivery", lambda: delivered(state, dropped), DRAIN)
    for f in dropped:
        on_server_once(fhir, f)


@pytest.mark.orthanc
def test_a_dicomweb_archive_is_polled(tmp_path: Path, fhir_url: str, fhir: FhirClient, orthanc: OrthancServer) -> None:
    """The fourth input path: QIDO-RS finds the SR instances, WADO-RS retrieves them (the corpus
    and new reports; a CT image beside them is not retrieved)."""
    new = corpus() + variants(TEMPLATE, tmp_path / "in", 2, "qido")
    orthanc.upload(CT)
    with GatewayProcess(tmp_path / "state", fhir_url, "--follow-dicomweb", orthanc.url + "/dicom-web", "--follow-interval", "1") as gw:
        for f in new:
            orthanc.upload(f)
        wait_for("QIDO-RS to find them and delivery", lambda: delivered(gw.state, new), DRAIN)
        assert gw.counts() == {"received": 0, "converted": 0, "delivered": len(new), "dead": 0}  # the CT was not taken
    for f in new:
        on_server_once(fhir, f)


def test_kill_9_mid_stream_loses_nothing_and_duplicates_nothing(tmp_path: Path, fhir_url: str, fhir: FhirClient) -> None:
    """40 reports by C-STORE; the gateway is killed with SIGKILL after about a third were
    acknowledged (while it delivers), restarted on the same state, and the sender sends again
    what it did not see acknowledged, as a modality does."""
    reports = variants(TEMPLATE, tmp_path / "in", 40, "crash")
    acked: list[Path] = []
    gw = GatewayProcess(tmp_path / "state", fhir_url).start()
    killed = threading.Event()

    def on_status(f: Path, status: int) -> None:
        if status == 0:
            acked.append(f)
        if len(acked) == 14 and not killed.is_set():
            gw.kill9()
            killed.set()

    first = c_store(gw.dicom_port, reports, on_status=on_status)
    assert killed.is_set() and len(acked) >= 14
    assert any(s != 0 for s in first.values())  # the association broke
    gw.start()
    rest = [f for f in reports if f not in acked]
    second = c_store(gw.dicom_port, rest)
    assert set(second.values()) == {0}, second
    wait_for("the queue to drain", lambda: drained(gw, 40), DRAIN)
    assert gw.counts() == {"received": 0, "converted": 0, "delivered": 40, "dead": 0}
    assert gw.terminate() == 0
    for f in reports:
        on_server_once(fhir, f)


def test_an_outage_pauses_delivery_and_the_queue_drains_after(tmp_path: Path, fhir_url: str, fhir: FhirClient) -> None:
    """The FHIR server drops out in the middle of a stream (every connection reset, requests in
    flight among them; new ones refused) for longer than a report's retries would last, then
    answers 503 for a while, as a server that is starting does, then serves again: the gateway
    pauses, never exits, and delivers all, none twice. The outage is a relay in front of the
    session's HAPI server (FlakyLink): the gateway meets what a crashed server shows it, and the
    test does not start a second HAPI server twice (about 150 s on a loaded machine)."""
    reports = variants(TEMPLATE, tmp_path / "in", 20, "outage")
    # Few attempts and short delays: were the pause counted as attempts, reports would die.
    with FlakyLink(fhir_url) as link, GatewayProcess(tmp_path / "state", link.url, "--max-attempts", "2", "--retry-delay", "0.5",
                                                     "--max-delay", "1", "--retries", "0") as gw:
        assert set(c_store(gw.dicom_port, reports[:10]).values()) == {0}
        wait_for("some deliveries", lambda: depth(gw)["delivered"] >= 3, DRAIN)
        link.down()
        assert set(c_store(gw.dicom_port, reports[10:]).values()) == {0}  # intake goes on
        wait_for("delivery to pause", lambda: gw.metrics().get("sr2fhir_delivery_paused") == 1, 300)
        ready = httpx.get(f"http://127.0.0.1:{gw.http_port}/readyz", timeout=30).json()
        # Intake still takes reports; the reason (it names the server's URL) is for a caller with the token only.
        assert ready["ready"] and ready["delivery"] == "paused: waiting for the FHIR server" and "reason" not in ready
        threading.Event().wait(5)  # down for a while: longer than a report's retries last (0.5 s, then 1 s)
        assert gw.alive() and depth(gw)["dead"] == 0 and depth(gw)["delivered"] < 20
        link.up(starting=10)
        wait_for("the queue to drain", lambda: drained(gw, 20), DRAIN)
        assert link.refused_503 > 0  # the gateway met the starting server (its probes, 8 s apart at most here), and waited it out
        assert gw.counts() == {"received": 0, "converted": 0, "delivered": 20, "dead": 0}
        assert gw.metrics()["sr2fhir_delivery_paused"] == 0
        events = [line["event"] for line in gw.log_lines()]
        assert "delivery paused" in events and "delivery resumed" in events
    for f in reports:
        on_server_once(fhir, f)


def test_bad_input_goes_to_the_dead_letter_and_nothing_else_is_affected(tmp_path: Path, fhir_url: str, fhir: FhirClient) -> None:
    good = variants(TEMPLATE, tmp_path / "in", 3, "bad-input")
    not_tid1500 = [SHARED / "data" / "non-tid1500" / n for n in ("pydicom__test-SR.dcm", "orthanc-tests__MarekLatin2.dcm")]
    dose_sr = SHARED / "data" / "non-tid1500" / "openrem__CT-RDSR-Siemens-Multi-1.dcm"
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(FIXTURES.joinpath("tid1411_volumetric.dcm").read_bytes()[:3000])
    (tmp_path / "token").write_text("t0ken\n")
    with GatewayProcess(tmp_path / "state", fhir_url, "--allowed-ae", "SENDER", "--stow-token-file", str(tmp_path / "token")) as gw:
        assert set(c_store(gw.dicom_port, [good[0]], calling="INTRUDER").values()) == {-1}  # association refused
        assert stow(gw.http_port, [good[1]]).status_code == 401  # no token
        assert stow(gw.http_port, [good[1]], token="guess").status_code == 401
        # X-Ray Radiation Dose SR Storage cannot hold TID 1500: refused at negotiation.
        assert list(c_store(gw.dicom_port, [good[0], *not_tid1500, dose_sr]).values()) == [0, 0, 0, -2]
        r = stow(gw.http_port, [good[1], truncated, good[2]], token="t0ken")
        assert r.status_code == 200, r.text  # a truncated body with a readable header is kept: the dead letter tells why
        wait_for("the queue to drain", lambda: drained(gw, 6), DRAIN)
        listing = gw.queue("list", "--json")
        by_uid = {x["sop_uid"]: x for x in listing["reports"]}
        assert listing["counts"] == {"received": 0, "converted": 0, "delivered": 3, "dead": 3}
        for f in not_tid1500:
            assert by_uid[sop_uid(f)]["state"] == "dead" and "TID 1500" in by_uid[sop_uid(f)]["reason"], by_uid[sop_uid(f)]
        dead_truncated = by_uid[sop_uid(FIXTURES / "tid1411_volumetric.dcm")]
        assert dead_truncated["state"] == "dead" and "truncated" in dead_truncated["reason"]
        shown = gw.queue("show", sop_uid(not_tid1500[0]))
        assert "state: dead" in shown and "reason: " in shown
        # A replay of a dead report fails the same way and comes back to the dead letter.
        assert "1 report(s) queued again" in gw.queue("retry", sop_uid(not_tid1500[0]))
        wait_for("the replay", lambda: (q := Queue(gw.state).get(sop_uid(not_tid1500[0]))) is not None and q.state == "dead" and q.attempts == 0
                 and q.updated_at > dead_truncated["updated_at"], 300)
        m = gw.metrics()
        assert m['sr2fhir_refused_total{reason="association-rejected",source="dimse"}'] == 1
        assert m['sr2fhir_refused_total{reason="unauthorised",source="stow"}'] == 2
        log = gw.log_text()
    for f in good:
        on_server_once(fhir, f)
    # No patient data in the log: the reports' Patient IDs and names never appear.
    import pydicom

    for f in [*good, *not_tid1500]:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        for value in (str(ds.get("PatientID", "")), str(ds.get("PatientName", ""))):
            assert not value.strip() or value not in log, f.name


@pytest.mark.unshare
def test_past_the_disk_watermark_intake_is_refused_and_nothing_accepted_is_lost(tmp_path: Path, fhir_url: str, fhir: FhirClient) -> None:
    """The state folder is a 6 MiB tmpfs (in a private mount namespace); the watermark is 3 MiB.
    Reports of 77 kB arrive until the gateway answers Out of Resources."""
    assert shutil.which("unshare"), "util-linux unshare is needed for the full-disk test"
    state = tmp_path / "state"
    state.mkdir()
    reports = variants(SHARED / "data" / "tid1500" / "dcmqi__sr-example__sr.dcm", tmp_path / "in", 60, "watermark")
    wrap = ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=6m tmpfs "{state}" &&']
    acked: list[Path] = []
    with GatewayProcess(state, fhir_url, "--min-free-mb", "3", wrap=wrap) as gw:
        statuses = c_store(gw.dicom_port, reports, on_status=lambda f, s: acked.append(f) if s == 0 else None)
        refused = [f for f, s in statuses.items() if s == 0xA700]
        assert acked and refused, statuses
        assert all(s in (0, 0xA700) for s in statuses.values())
        ready = httpx.get(f"http://127.0.0.1:{gw.http_port}/readyz", timeout=30)
        assert ready.status_code == 503 and "watermark" in ready.json()["disk"]
        wait_for("the accepted reports to be delivered", lambda: drained(gw, len(acked)), DRAIN)
        assert depth(gw) == {"received": 0, "converted": 0, "delivered": len(acked), "dead": 0}
        log = gw.log_text()
    assert "could not be stored" not in log and "No space left" not in log  # refused before the disk was full
    for f in acked:
        on_server_once(fhir, f)


def fill(folder: Path) -> Path:
    """Write a file into `folder` until its disk is full; returns it (delete it to give the space back)."""
    filler = folder / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (64 << 10))
                fh.flush()
        except OSError:
            pass
    return filler


@pytest.mark.unshare
def test_a_disk_that_fills_while_delivery_runs_pauses_it_and_nothing_is_lost(tmp_path: Path, fhir_url: str, fhir: FhirClient) -> None:
    """Issue 24, defect 3: the state folder is an 8 MiB tmpfs (a private mount namespace, reached
    from here through /proc/PID/root); it is filled up while the queue is being delivered. The
    gateway stays up, says why on /readyz, and when the space returns delivers every report, once."""
    assert shutil.which("unshare"), "util-linux unshare is needed for the full-disk test"
    state = tmp_path / "state"
    state.mkdir()
    reports = variants(TEMPLATE, tmp_path / "in", 20, "fills")
    wrap = ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=8m tmpfs "{state}" &&']
    with GatewayProcess(state, fhir_url, "--min-free-mb", "1", wrap=wrap) as gw:
        assert gw.proc is not None
        inside = Path(f"/proc/{gw.proc.pid}/root") / state.relative_to("/")
        assert set(c_store(gw.dicom_port, reports).values()) == {0}
        filler = fill(inside)
        ready = wait_for("/readyz to say the queue cannot be written", lambda: (r := httpx.get(f"http://127.0.0.1:{gw.http_port}/readyz", timeout=30))
                         .status_code == 503 and "queue cannot be written" in r.json()["delivery"] and r, DRAIN)
        assert "watermark" in ready.json()["disk"]
        time.sleep(3)
        assert gw.alive() and depth(gw)["delivered"] < len(reports)
        filler.unlink()
        wait_for("the queue to drain", lambda: drained(gw, len(reports)), DRAIN)
        assert depth(gw) == {"received": 0, "converted": 0, "delivered": len(reports), "dead": 0}
        assert httpx.get(f"http://127.0.0.1:{gw.http_port}/readyz", timeout=30).status_code == 200
        events = [line["event"] for line in gw.log_lines()]
    assert gw.proc.returncode == 0 and "delivery paused" in events and "delivery resumed" in events
    for f in reports:
        on_server_once(fhir, f)


def test_a_correction_never_overtakes_its_original(tmp_path: Path, fhir_url: str, fhir: FhirClient) -> None:
    """Issue 24, defect 2: a proxy in front of HAPI fails the original's first transaction (503),
    so the original waits its backoff while its correction, received just after it, is due. The
    correction waits; in the end nothing the original said is current on the server."""
    original = remapped(FIXTURES / "tid1410_planar_regions.dcm", tmp_path / "original.dcm", ".24")
    corrected = remapped(FIXTURES / "tid1410_planar_regions_corrected.dcm", tmp_path / "corrected.dcm", ".24")
    old, new = sop_uid(original).encode(), sop_uid(corrected).encode()
    transactions: list[str] = []

    def proxy(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        is_transaction = method == "POST" and path.rstrip("/") == "/fhir" and (old in body or new in body)
        if is_transaction and old in body and new not in body and "original" not in transactions:
            transactions.append("original")
            return 503, {"Retry-After": "2"}, b""
        r = httpx.request(method, fhir_url + path[len("/fhir"):], content=body or None,
                          headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}, timeout=300)
        if is_transaction and r.status_code == 200:
            transactions.append("corrected" if new in body else "original")
        return r.status_code, {"Content-Type": r.headers.get("content-type", "application/fhir+json")}, r.content

    with LocalServer(proxy) as server, GatewayProcess(tmp_path / "state", server.url, "--retries", "0") as gw:
        assert c_store(gw.dicom_port, [original, corrected]) == {original: 0, corrected: 0}
        wait_for("both to be delivered", lambda: drained(gw, 2), DRAIN)
        assert depth(gw)["delivered"] == 2
    assert transactions == ["original", "original", "corrected"]  # failed, then delivered, then its correction
    for rtype in ("Observation", "ImagingSelection"):
        assert {r["status"] for r in fhir.search(rtype, _source=urn_oid(sop_uid(original)))} == {"entered-in-error"}, rtype
    assert {r["status"] for r in fhir.search("Observation", _source=urn_oid(sop_uid(corrected)))} == {"final"}


def test_sigterm_with_a_hung_fhir_server_stops_within_the_grace_period(tmp_path: Path) -> None:
    """Issue 24, defect 6: a FHIR server that never answers the transaction once made SIGTERM wait
    62 s (longer than the usual 10 s before a supervisor kills). Now the gateway exits 0 within
    it, and the report in hand, still queued, is delivered after the restart."""
    capability = b'{"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"}'
    found = b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]}'
    done = b'{"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {"status": "201 Created"}}]}'
    hang = threading.Event()
    hang.set()
    posted = threading.Event()

    def server_side(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes] | None:
        if method == "POST" and b'"transaction"' in body and b"ImagingSelection" in body:
            posted.set()
            if hang.is_set():
                return None  # hold the connection without an answer
            return 200, {"Content-Type": "application/fhir+json"}, done
        return 200, {"Content-Type": "application/fhir+json"}, capability if "metadata" in path else found

    with LocalServer(server_side) as server:
        with GatewayProcess(tmp_path / "state", server.url, "--timeout", "300") as gw:
            assert c_store(gw.dicom_port, [TEMPLATE]) == {TEMPLATE: 0}
            assert posted.wait(120), "the transaction never reached the server"
            started = time.monotonic()
            code = gw.terminate(timeout=120)
            took = time.monotonic() - started
        assert code == 0 and took < 12, f"exit {code} after {took:.1f} s"  # a 7 s grace, and slack for a loaded machine
        assert Queue(gw.state).get(sop_uid(TEMPLATE)).state in ("received", "converted")  # type: ignore[union-attr]
        hang.clear()
        server.release.set()
        with GatewayProcess(tmp_path / "state", server.url) as again:
            wait_for("the report to be delivered after the restart", lambda: delivered(again.state, [TEMPLATE]), DRAIN)


@pytest.mark.orthanc
@pytest.mark.openssl
@pytest.mark.dcmtk
def test_a_full_pass_over_tls_with_an_authenticated_archive(tmp_path: Path, fhir_url: str, fhir: FhirClient) -> None:
    """Issue 24: what a hospital's security review asks for, end to end. DICOM TLS with client
    certificates (DCMTK's `storescu +tls`), STOW-RS over HTTPS with a client certificate and the
    bearer token, an Orthanc that requires HTTP basic auth followed with its credentials, and
    /metrics and /readyz behind the token. Every report reaches HAPI exactly once."""
    assert shutil.which("storescu"), "DCMTK's storescu is needed (scripts/setup-services.sh installs dcmtk)"
    pki = Pki(tmp_path / "pki")
    archive = OrthancServer(tmp_path / "orthanc", users={"sr2fhir": "archive-s3cret"}).start()
    made = {path: variants(TEMPLATE, tmp_path / path, 3, f"tls-{path}") for path in ("dimse", "stow", "orthanc")}
    try:
        assert httpx.get(archive.url + "/changes", timeout=30).status_code == 401  # the archive is closed without credentials
        env = {"SR2FHIR_TEST_STOW_TOKEN": "t0ken", "SR2FHIR_ARCHIVE_PASSWORD": "archive-s3cret"}
        gw = GatewayProcess(tmp_path / "state", fhir_url, *pki.server_args("required"), "--follow-orthanc", archive.url, "--follow-interval", "1",
                            "--archive-basic-user", "sr2fhir", "--stow-token-env", "SR2FHIR_TEST_STOW_TOKEN", "--protect-operations", env=env)
        gw.client_tls = (pki.ca, pki.client_cert, pki.client_key)
        gw.token = "t0ken"
        with gw:
            for f in made["dimse"]:
                r = subprocess.run(["storescu", "+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca), "-R",
                                    "-aet", "SENDER", "-aec", "SR2FHIR", "127.0.0.1", str(gw.dicom_port), str(f)], capture_output=True, text=True, timeout=120)
                assert r.returncode == 0, r.stderr
            tls = ssl_context(pki.ca, pki.client_cert, pki.client_key)
            assert stow(gw.http_port, made["stow"], token="t0ken", tls=tls).status_code == 200
            with pytest.raises(httpx.HTTPError):  # no client certificate: the TLS handshake fails
                stow(gw.http_port, made["stow"], token="t0ken", tls=ssl_context(pki.ca))
            for f in made["orthanc"]:
                archive.upload(f)
            total = sum(len(v) for v in made.values())
            wait_for("the queue to drain", lambda: drained(gw, total), DRAIN)
            assert depth(gw) == {"received": 0, "converted": 0, "delivered": total, "dead": 0}
            for path in ("/metrics", "/readyz"):
                bare = httpx.get(gw.http + path, timeout=30, verify=tls)
                assert bare.status_code == 401, path
            assert gw.get("/readyz").status_code == 200 and gw.get("/healthz").status_code == 200
    finally:
        archive.stop()
    assert gw.proc is not None and gw.proc.returncode == 0
    for f in [p for v in made.values() for p in v]:
        on_server_once(fhir, f)
