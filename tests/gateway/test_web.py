"""Intake through STOW-RS (PS3.18 10.5) and the operations endpoints, in process (Starlette's test
client): what is stored, what is refused and how the answer says so."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from starlette.testclient import TestClient

from sr2fhir.gateway import multipart
from sr2fhir.gateway.intake import Intake
from sr2fhir.gateway.metrics import Metrics
from sr2fhir.gateway.queue import Queue
from sr2fhir.gateway.web import app
from tests.gateway.helpers import HOSTILE_UIDS, hostile, tree
from tests.helpers import FIXTURES, SHARED

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
    assert len(dead) == 1 and dead[0].sop_uid.startswith("unidentified-") and "SOP Instance UID" in (dead[0].reason or "")  # kept for a person
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
