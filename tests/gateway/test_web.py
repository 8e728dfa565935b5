"""Intake through STOW-RS (PS3.18 10.5) and the operations endpoints, in process (Starlette's test
client): what is stored, what is refused and how the answer says so."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import httpx
import pydicom
import pytest
from starlette.testclient import TestClient

from sr2fhir.gateway import multipart
from sr2fhir.gateway.intake import Intake, free_bytes
from sr2fhir.gateway.metrics import Metrics
from sr2fhir.gateway.queue import Queue
from sr2fhir.gateway.web import BodyLimits, app
from tests.gateway.helpers import HOSTILE_UIDS, GatewayProcess, hostile, tree
from tests.helpers import FIXTURES, SHARED, free_port

SR = FIXTURES / "tid1410_planar_regions.dcm"
SR2 = FIXTURES / "tid1411_volumetric.dcm"
CT = SHARED / "data" / "referenced" / "highdicom__ct_image.dcm"
TOKEN = "s3cret-token"
BOUNDARY = "sr2fhirTestBoundary"
CTYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


class Setup:
    def __init__(self, state: Path, min_free: int = 0, token: str | None = TOKEN) -> None:
        self.queue = Queue(state)
        self.intake = Intake(self.queue, Metrics(self.queue), min_free)
        self.client = TestClient(app(self.intake, token=token, ready=lambda: {"ready": self.intake.room()}))

    def stow(self, *payloads: bytes, token: str | None = TOKEN, content_type: str = CTYPE) -> tuple[int, dict]:  # type: ignore[type-arg]
        body = multipart.build([multipart.Part("application/dicom", p) for p in payloads], BOUNDARY)
        headers = {"Content-Type": content_type} | ({"Authorization": f"Bearer {token}"} if token else {})
        r = self.client.post("/studies", content=body, headers=headers)
        return r.status_code, r.json()


@pytest.fixture()
def gw(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path / "state")
    yield s
    s.queue.close()


def uids(items: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [i["00081155"]["Value"][0] for i in items]


def failure_reasons(body: dict) -> list[int]:  # type: ignore[type-arg]
    return [i["00081197"]["Value"][0] for i in body.get("00081198", {}).get("Value", [])]


def test_stored_instances_are_queued_byte_for_byte(gw: Setup) -> None:
    status, body = gw.stow(SR.read_bytes(), SR2.read_bytes())
    assert status == 200 and "00081198" not in body
    stored = uids(body["00081199"]["Value"])
    assert len(stored) == 2
    assert gw.queue.path(stored[0]).read_bytes() == SR.read_bytes()
    assert {r.source for r in gw.queue.reports()} == {"stow"} and gw.queue.counts()["received"] == 2
    assert gw.stow(SR.read_bytes())[0] == 200 and gw.queue.counts()["received"] == 2  # again: one report


def test_partly_refused_is_202_with_the_reasons(gw: Setup) -> None:
    truncated = SR.read_bytes()[:200]  # the DICM prefix, then the file meta cut short
    status, body = gw.stow(SR.read_bytes(), CT.read_bytes(), b"not dicom at all", truncated)
    assert status == 202
    assert len(body["00081199"]["Value"]) == 1
    # PS3.18 Table 10.5.3-2: SOP Class not supported, Cannot understand (twice).
    assert failure_reasons(body) == [0x0122, 0xC000, 0xC000]
    dead = gw.queue.reports("dead")
    assert len(dead) == 1 and dead[0].sop_uid.startswith("unidentified-") and "truncated DICOM header" in (dead[0].reason or "")  # kept for a person
    assert gw.queue.path(dead[0].sop_uid).read_bytes() == truncated


def test_nothing_stored_is_409(gw: Setup) -> None:
    status, body = gw.stow(CT.read_bytes())
    assert status == 409 and "00081199" not in body and failure_reasons(body) == [0x0122]


def test_without_the_token_nothing_is_stored(gw: Setup) -> None:
    for token in (None, "wrong"):
        status, _ = gw.stow(SR.read_bytes(), token=token)
        assert status == 401
    assert gw.queue.counts()["received"] == 0
    assert gw.intake.metrics.refused.labels("stow", "unauthorised")._value.get() == 2


def test_wrong_media_types_and_bodies(gw: Setup) -> None:
    assert gw.stow(SR.read_bytes(), content_type="application/dicom")[0] == 415
    assert gw.stow(SR.read_bytes(), content_type='multipart/related; type="application/dicom+xml"; boundary=' + BOUNDARY)[0] == 415
    r = gw.client.post("/studies", content=b"--x\r\n", headers={"Content-Type": CTYPE, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400 and "multipart" in r.json()["error"]


def test_past_the_watermark_stow_is_503_and_not_ready(tmp_path: Path) -> None:
    s = Setup(tmp_path / "state", min_free=1 << 62)
    status, _ = s.stow(SR.read_bytes())
    assert status == 503
    assert s.queue.counts()["received"] == 0
    assert s.client.get("/readyz").status_code == 503
    assert s.client.get("/healthz").status_code == 200


def test_metrics_count_what_happened(gw: Setup) -> None:
    gw.stow(SR.read_bytes(), CT.read_bytes())
    gw.stow(SR.read_bytes())
    text = gw.client.get("/metrics").text
    assert 'sr2fhir_received_total{source="stow"} 1.0' in text
    assert 'sr2fhir_duplicates_total{source="stow"} 1.0' in text
    assert 'sr2fhir_refused_total{reason="sop-class-not-supported",source="stow"} 1.0' in text
    assert 'sr2fhir_queue_depth{state="received"} 1.0' in text


def test_a_hostile_sop_instance_uid_writes_nothing_outside_the_state_folder(tmp_path: Path) -> None:
    """Issue 24, defect 1, by STOW-RS: the UID in the header names no file; the object is kept
    in the dead letter under its hash, and purging it deletes that copy alone."""
    root = tmp_path / "a" / "b" / "c"
    root.mkdir(parents=True)
    for rel in ("victim.dcm", "../victim.dcm", "../../victim.dcm", "../../../victim.dcm"):
        (root / rel).write_bytes(b"precious")
    s = Setup(root / "state")
    try:
        payloads = [hostile(SR, tmp_path / "send" / f"{i}.dcm", uid).read_bytes() for i, uid in enumerate(HOSTILE_UIDS)]
        before = tree(tmp_path, root / "state")
        status, body = s.stow(*payloads)
        assert status == 409 and failure_reasons(body) == [0xC000] * len(HOSTILE_UIDS)
        assert tree(tmp_path, root / "state") == before
        assert sorted(p.read_bytes() for p in s.queue.objects.iterdir()) == sorted(payloads)
        assert s.queue.purge("dead") == len(HOSTILE_UIDS)
        assert tree(tmp_path, root / "state") == before and not list(s.queue.objects.iterdir())
    finally:
        s.queue.close()


def limited(state: Path, max_bytes: int) -> Setup:
    s = Setup(state)
    s.client = TestClient(app(s.intake, token=TOKEN, ready=lambda: {"ready": True}, limits=BodyLimits(max_bytes=max_bytes)))
    return s


def test_a_body_over_the_limit_is_413_declared_or_chunked(tmp_path: Path) -> None:
    """Issue 24, defect 4: `--max-stow-mb`. A declared Content-Length over it is refused before
    a byte is read; a chunked body (no Content-Length) is cut off when it passes it."""
    s = limited(tmp_path / "state", 1 << 20)
    body = multipart.build([multipart.Part("application/dicom", SR.read_bytes()), multipart.Part("application/dicom", b"\0" * (2 << 20))], BOUNDARY)
    headers = {"Content-Type": CTYPE, "Authorization": f"Bearer {TOKEN}"}
    r = s.client.post("/studies", content=body, headers=headers)
    assert r.status_code == 413 and "--max-stow-mb" in r.json()["error"]

    def chunked() -> Iterator[bytes]:
        for i in range(0, len(body), 64 << 10):
            yield body[i : i + (64 << 10)]

    r = s.client.post("/studies", content=chunked(), headers=headers)
    assert r.status_code == 413
    assert s.queue.counts()["received"] == 0 and not list(s.queue.incoming.iterdir()) and not list(s.queue.objects.iterdir())
    assert s.intake.metrics.refused.labels("stow", "too-large")._value.get() == 2
    # Under the limit, the same path stores it.
    small = multipart.build([multipart.Part("application/dicom", SR.read_bytes())], BOUNDARY)
    assert s.client.post("/studies", content=small, headers=headers).status_code == 200
    s.queue.close()


def test_a_chunked_body_is_checked_against_the_watermark_as_it_arrives(tmp_path: Path) -> None:
    """A chunked upload once passed the disk check as 0 bytes."""
    s = Setup(tmp_path / "state")
    s.intake.min_free = free_bytes(s.queue.state) - (4 << 20)  # 4 MiB may still be taken (less the queue's slack)
    body = multipart.build([multipart.Part("application/dicom", b"\0" * (8 << 20))], BOUNDARY)
    r = s.client.post("/studies", content=iter([body[i : i + (256 << 10)] for i in range(0, len(body), 256 << 10)]),
                      headers={"Content-Type": CTYPE, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 503 and r.headers["retry-after"] == "60"
    assert not list(s.queue.incoming.iterdir())
    s.queue.close()


def padded(path: Path, dest: Path, size: int) -> Path:
    """The SR at `path` grown to about `size` bytes by one private OB element (read past, not parsed)."""
    ds = pydicom.dcmread(path)
    ds.add_new(0x00091010, "LO", "SR2FHIR TEST")  # private creator
    ds.add_new(0x00091001 | 0x1000, "OB", b"\0" * size)
    ds.save_as(dest, enforce_file_format=True)
    return dest


def peak_rss(pid: int) -> int:
    """The process's resident set high-water mark (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no VmHWM")


def test_three_large_uploads_at_once_are_not_held_in_memory(tmp_path: Path) -> None:
    """Issue 24, defect 4, for real: three 48 MiB STOW-RS bodies (48 parts of 1 MiB) sent at once
    to a running gateway. The old reading held each body about 4.3 times (over 600 MiB here);
    spooled to disk and read a window and a part at a time, the peak RSS grows by far less."""
    big = padded(SR, tmp_path / "big.dcm", 1 << 20).read_bytes()
    body = multipart.build([multipart.Part("application/dicom", big)] * 48, BOUNDARY)
    headers = {"Content-Type": CTYPE}
    with GatewayProcess(tmp_path / "state", f"http://127.0.0.1:{free_port()}/fhir", "--max-stow-mb", "64") as gw:
        assert gw.proc is not None
        before = peak_rss(gw.proc.pid)

        def send(_: int) -> int:
            def chunks() -> Iterator[bytes]:
                for i in range(0, len(body), 1 << 20):
                    yield body[i : i + (1 << 20)]
            return httpx.post(f"http://127.0.0.1:{gw.http_port}/studies", content=chunks(), headers=headers, timeout=600).status_code

        with ThreadPoolExecutor(3) as pool:
            assert list(pool.map(send, range(3))) == [200, 200, 200]
        grown = peak_rss(gw.proc.pid) - before
        counts = gw.counts()
        assert counts["received"] + counts["converted"] + counts["dead"] == 1  # one SOP Instance, 143 duplicates
        assert not list((gw.state / "incoming").iterdir())
    assert grown < 100 << 20, f"peak RSS grew by {grown >> 20} MiB for 3 x {len(body) >> 20} MiB"


def test_a_body_shorter_than_its_content_length_times_out(tmp_path: Path) -> None:
    """A sender that declares more than it sends once held a connection for ever: 408 after `--stow-timeout`."""
    with GatewayProcess(tmp_path / "state", f"http://127.0.0.1:{free_port()}/fhir", "--stow-timeout", "2") as gw:
        with socket.create_connection(("127.0.0.1", gw.http_port), timeout=60) as sock:
            sock.sendall(b"POST /studies HTTP/1.1\r\nHost: x\r\nContent-Type: " + CTYPE.encode() + b"\r\nContent-Length: 100000\r\n\r\n--" + BOUNDARY.encode())
            started = time.monotonic()
            answer = sock.recv(4096)
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert 1.5 < waited < 45
        assert not list((gw.state / "incoming").iterdir())


def test_the_bearer_scheme_is_case_insensitive(gw: Setup) -> None:
    """RFC 9110 11.1: `bearer` and `BEARER` are the same scheme; the token itself is exact."""
    for scheme in ("bearer", "BEARER", "Bearer"):
        r = gw.client.post("/studies", content=multipart.build([multipart.Part("application/dicom", SR.read_bytes())], BOUNDARY),
                           headers={"Content-Type": CTYPE, "Authorization": f"{scheme} {TOKEN}"})
        assert r.status_code == 200, scheme
    r = gw.client.post("/studies", content=b"", headers={"Content-Type": CTYPE, "Authorization": f"Bearer {TOKEN.upper()}"})
    assert r.status_code == 401


def test_readyz_gives_reasons_only_to_a_caller_with_the_token_and_can_be_closed(tmp_path: Path) -> None:
    """Issue 24: /readyz showed the FHIR server's URL and local paths to anyone; `--protect-operations`
    closes /readyz and /metrics without the token, /healthz stays open."""
    q = Queue(tmp_path / "state")
    intake = Intake(q, Metrics(q), 0)
    state = {"ready": True, "disk": "ok", "queue": {}, "delivery": "paused: waiting for the FHIR server",
             "reason": "the FHIR server cannot be reached: https://fhir.hospital.example/fhir"}
    for protect in (False, True):
        client = TestClient(app(intake, token=TOKEN, ready=lambda: dict(state), protect_operations=protect))
        bare = client.get("/readyz")
        if protect:
            assert bare.status_code == 401 and client.get("/metrics").status_code == 401
        else:
            assert bare.status_code == 200 and "reason" not in bare.json() and "hospital" not in bare.text
            assert client.get("/metrics").status_code == 200
        full = client.get("/readyz", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert full["reason"] == state["reason"]
        assert client.get("/healthz").status_code == 200
    q.close()
