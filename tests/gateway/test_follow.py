"""The archive followers against a small local server that plays an archive with a gap: an
instance listed but deleted before it is fetched must not stop the others, nor hold the cursor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from sr2fhir.gateway import multipart
from sr2fhir.gateway.follow import Access, ArchiveError, DicomWeb, Orthanc
from sr2fhir.gateway.intake import Intake
from sr2fhir.gateway.metrics import Metrics
from sr2fhir.gateway.queue import Queue
from tests.helpers import FIXTURES, LocalServer, sop_uid

GONE, KEPT = FIXTURES / "tid1411_volumetric.dcm", FIXTURES / "tid1410_planar_regions.dcm"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
IDS = {name: f"0000000{n}-00000000-00000000-00000000-0000000{n}" for n, name in enumerate(("gone", "kept", "ct"), 1)}
"""Orthanc-shaped resource ids (five groups of eight hex digits)."""


def ui(v: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [v]}


def archive(method: str, path: str, body: bytes) -> Any:
    if path.startswith("/dicom-web/instances?"):
        assert "SOPClassUID=" in path  # QIDO by SOP Class, not Modality
        listing = [{"00080016": ui(SR_CLASS), "00080018": ui(sop_uid(f)), "0020000D": ui("1.2"), "0020000E": ui("1.3")} for f in (GONE, KEPT)]
        return 200, {"Content-Type": "application/dicom+json"}, json.dumps(listing).encode()
    if path.startswith("/dicom-web/studies/"):
        if path.endswith(sop_uid(GONE)):
            return 404, {}, b""
        return 200, {"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'}, multipart.build([multipart.Part("application/dicom", KEPT.read_bytes())], "b")
    if path.startswith("/changes"):
        since = int(path.split("since=")[1].split("&")[0])
        changes = [{"ChangeType": "NewInstance", "ID": IDS[name], "Seq": seq} for seq, name in ((1, "gone"), (2, "kept"), (3, "ct")) if seq > since]
        return 200, {}, json.dumps({"Changes": changes, "Done": True, "Last": 3}).encode()
    if path.endswith("/metadata/SopClassUid"):
        return 200, {}, (b"1.2.840.10008.5.1.4.1.1.2" if f"/{IDS['ct']}/" in path else SR_CLASS.encode())
    if path == f"/instances/{IDS['gone']}/file":
        return 404, {}, b""
    if path == f"/instances/{IDS['kept']}/file":
        return 200, {}, KEPT.read_bytes()
    return 500, {}, b""


def intake(state: Path) -> Intake:
    q = Queue(state)
    return Intake(q, Metrics(q), 0)


def test_the_sweep_goes_past_an_instance_it_cannot_retrieve(tmp_path: Path) -> None:
    i = intake(tmp_path)
    with LocalServer(archive) as server:
        base = f"http://127.0.0.1:{server.httpd.server_address[1]}"
        assert DicomWeb(base + "/dicom-web", i).sweep() == 1
    assert i.queue.known(sop_uid(KEPT)) and not i.queue.known(sop_uid(GONE))


def test_the_change_log_cursor_moves_past_a_deleted_instance_and_a_non_sr(tmp_path: Path) -> None:
    i = intake(tmp_path)
    with LocalServer(archive) as server:
        base = f"http://127.0.0.1:{server.httpd.server_address[1]}"
        o = Orthanc(base, i)
        assert o.poll() == 1
        assert i.queue.cursor(o.cursor_name) == "3"
        assert o.poll() == 0  # nothing new
        fetched = [p for m, p in server.requests if p.endswith("/file")]
    assert fetched == [f"/instances/{IDS['gone']}/file", f"/instances/{IDS['kept']}/file"]  # the CT was never fetched
    assert i.queue.known(sop_uid(KEPT))


def hostile_archive(method: str, path: str, body: bytes) -> Any:
    """An archive whose answers try to steer our requests: UIDs and ids that are paths."""
    if path.startswith("/dicom-web/instances?"):
        listing = [{"00080016": ui(SR_CLASS), "00080018": ui("../../../admin"), "0020000D": ui("1.2"), "0020000E": ui("1.3")},
                   {"00080016": ui(SR_CLASS), "00080018": ui(sop_uid(KEPT)), "0020000D": ui("1.2/../x"), "0020000E": ui("1.3")}]
        return 200, {"Content-Type": "application/dicom+json"}, json.dumps(listing).encode()
    if path.startswith("/changes"):
        return 200, {}, json.dumps({"Changes": [{"ChangeType": "NewInstance", "ID": "../../tools/reset", "Seq": 1}], "Done": True, "Last": 1}).encode()
    return 500, {}, b""


def test_an_archive_answer_names_no_url_unvalidated(tmp_path: Path) -> None:
    i = intake(tmp_path)
    with LocalServer(hostile_archive) as server:
        base = f"http://127.0.0.1:{server.httpd.server_address[1]}"
        assert DicomWeb(base + "/dicom-web", i).sweep() == 0
        o = Orthanc(base, i)
        assert o.poll() == 0 and i.queue.cursor(o.cursor_name) == "1"
        assert [p for _, p in server.requests if not p.startswith(("/dicom-web/instances?", "/changes"))] == []


@pytest.mark.parametrize("status", [401, 403])
def test_an_archive_that_refuses_our_credentials_says_so(tmp_path: Path, status: int) -> None:
    with LocalServer(lambda m, p, b: (status, {}, b"")) as server:
        base = f"http://127.0.0.1:{server.httpd.server_address[1]}"
        with pytest.raises(ArchiveError, match=f"HTTP {status}: the archive refuses our credentials"):
            Orthanc(base, intake(tmp_path), access=Access(auth=httpx.BasicAuth("u", "wrong"))).poll()
        assert server.requests


def test_an_object_over_the_limit_is_not_taken(tmp_path: Path) -> None:
    i = intake(tmp_path)
    with LocalServer(archive) as server:
        base = f"http://127.0.0.1:{server.httpd.server_address[1]}"
        with pytest.raises(ArchiveError, match="larger than"):
            Orthanc(base, i, access=Access(max_bytes=1000)).poll()
    assert not i.queue.known(sop_uid(KEPT))
