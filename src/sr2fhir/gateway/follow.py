"""Following an archive: new SR instances are fetched and taken in like any received object.

- Orthanc: its change log (`GET /changes?since=N`, NewInstance), the SOP Class read from the
  instance's metadata before the object is fetched (`/instances/{id}/file`).
- Any DICOMweb archive: QIDO-RS for SR instances (`GET {base}/instances?SOPClassUID=<the SR
  Storage classes>`, PS3.18 10.6), each one not yet queued retrieved by WADO-RS (PS3.18 10.4).

The change log's cursor is kept in the queue's database and moves past an instance only once it
is stored (or is not an SR), so a crash or a full disk replays rather than skips. A sweep (the
QIDO-RS listing, over a trailing window of Study Dates) runs periodically beside the change log,
and catches what the log dropped (D-37).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import httpx

from ..dicom.dictionary import SR_STORAGE
from . import multipart
from .intake import Intake

log = logging.getLogger("sr2fhir.gateway")
WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def _value(attrs: dict[str, Any], tag: str) -> str | None:
    v = attrs.get(tag, {}).get("Value")
    return str(v[0]) if v else None


class ArchiveError(Exception):
    pass


def _client(timeout: float) -> httpx.Client:
    # No kept-alive connections: Orthanc closes idle ones, and a poll that reuses one fails.
    return httpx.Client(timeout=timeout, headers={"User-Agent": "sr2fhir"}, limits=httpx.Limits(max_keepalive_connections=0))


class DicomWeb:
    """QIDO-RS and WADO-RS against one DICOMweb base URL (e.g. Orthanc's `/dicom-web`)."""

    def __init__(self, base_url: str, intake: Intake, *, window_days: int = 0, page: int = 200, timeout: float = 60.0) -> None:
        self.base = base_url.rstrip("/")
        self.intake = intake
        self.window_days = window_days
        self.page = page
        self.http = _client(timeout)

    def sweep(self) -> int:
        """List the SR instances (in the window) and take in those not yet queued; returns how many."""
        taken, offset = 0, 0
        # List of UID matching on the instance's own SOP Class (PS3.4 C.2.2.2.2.2), not Modality:
        # a series-level key, which an SR filed in an image series does not match.
        params: dict[str, Any] = {"SOPClassUID": ",".join(SR_STORAGE), "includefield": ["0020000D", "0020000E"], "limit": self.page}
        if self.window_days > 0:
            since = dt.date.today() - dt.timedelta(days=self.window_days)
            params["StudyDate"] = f"{since:%Y%m%d}-"
        while True:
            found = self._get_json("/instances", {**params, "offset": offset})
            for attrs in found:
                sop, study, series, cls = (_value(attrs, t) for t in ("00080018", "0020000D", "0020000E", "00080016"))
                if not (sop and study and series) or self.intake.queue.known(sop) or (cls and cls not in SR_STORAGE):
                    continue
                try:
                    data = self.retrieve(study, series, sop)
                except ArchiveError as exc:  # this one (deleted since?): the others go on, the next sweep retries it
                    log.warning("not retrieved", extra={"sop_uid": sop, "source": "dicomweb", "reason": str(exc)})
                    continue
                outcome = self.intake.accept(data, f"WADO-RS instance {sop}", "dicomweb")
                if outcome.refused == "out-of-resources":
                    return taken  # the next sweep tries again
                taken += outcome.stored and not outcome.duplicate
            if len(found) < self.page:
                return taken
            offset += len(found)

    def retrieve(self, study: str, series: str, sop: str) -> bytes:
        url = f"{self.base}/studies/{study}/series/{series}/instances/{sop}"
        try:
            r = self.http.get(url, headers={"Accept": WADO_ACCEPT})
        except httpx.HTTPError as exc:
            raise ArchiveError(f"WADO-RS {url}: {type(exc).__name__}") from None
        if r.status_code != 200:
            raise ArchiveError(f"WADO-RS {url}: HTTP {r.status_code}")
        try:
            parts = multipart.parse(r.content, r.headers.get("content-type", ""))
        except multipart.MultipartError as exc:
            raise ArchiveError(f"WADO-RS {url}: {exc}") from None
        if not parts:
            raise ArchiveError(f"WADO-RS {url}: no object in the answer")
        return parts[0].data

    def _get_json(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            r = self.http.get(self.base + path, params=params, headers={"Accept": "application/dicom+json"})
        except httpx.HTTPError as exc:
            raise ArchiveError(f"QIDO-RS {self.base}{path}: {type(exc).__name__}") from None
        if r.status_code == 204:
            return []
        if r.status_code != 200:
            raise ArchiveError(f"QIDO-RS {self.base}{path}: HTTP {r.status_code}")
        body = r.json()
        return body if isinstance(body, list) else []


class Orthanc:
    """Orthanc's change log (REST API, `/changes`)."""

    def __init__(self, base_url: str, intake: Intake, *, timeout: float = 60.0) -> None:
        self.base = base_url.rstrip("/")
        self.intake = intake
        self.cursor_name = f"orthanc-changes:{self.base}"
        self.http = _client(timeout)

    def poll(self) -> int:
        """Take in the SR instances the log names since the cursor; returns how many were new."""
        taken = 0
        queue = self.intake.queue
        while True:
            since = int(queue.cursor(self.cursor_name) or 0)
            changes = self._get(f"/changes?since={since}&limit=100").json()
            for change in changes.get("Changes", []):
                if change.get("ChangeType") == "NewInstance":
                    result = self._take(str(change["ID"]))
                    if result is None:
                        return taken  # refused for lack of room: replay from here later
                    taken += result
                queue.set_cursor(self.cursor_name, str(change["Seq"]))
            if changes.get("Done", True) or not changes.get("Changes"):
                if not changes.get("Changes") and "Last" in changes and int(changes["Last"]) > since:
                    queue.set_cursor(self.cursor_name, str(changes["Last"]))
                return taken

    def _take(self, orthanc_id: str) -> int | None:
        r = self.http.get(f"{self.base}/instances/{orthanc_id}/metadata/SopClassUid")
        if r.status_code == 404:
            return 0  # deleted since
        if r.status_code != 200:
            raise ArchiveError(f"Orthanc {self.base}: HTTP {r.status_code} for an instance's SOP Class")
        if r.text.strip() not in SR_STORAGE:
            return 0
        try:
            r = self.http.get(f"{self.base}/instances/{orthanc_id}/file")
        except httpx.HTTPError as exc:
            raise ArchiveError(f"Orthanc {self.base}: {type(exc).__name__}") from None
        if r.status_code == 404:
            return 0  # deleted since
        if r.status_code != 200:
            raise ArchiveError(f"Orthanc {self.base}: HTTP {r.status_code} for an instance's file")
        data = r.content
        outcome = self.intake.accept(data, f"Orthanc instance {orthanc_id}", "orthanc")
        if outcome.refused == "out-of-resources":
            return None
        return int(outcome.stored and not outcome.duplicate)

    def _get(self, path: str) -> httpx.Response:
        try:
            r = self.http.get(self.base + path)
        except httpx.HTTPError as exc:
            raise ArchiveError(f"Orthanc {self.base}: {type(exc).__name__}") from None
        if r.status_code != 200:
            raise ArchiveError(f"Orthanc {self.base}{path.split('?')[0]}: HTTP {r.status_code}")
        return r


def follow(orthanc: Orthanc | None, dicomweb: DicomWeb | None, stop: threading.Event, interval: float, sweep_interval: float) -> None:
    """Poll the change log every `interval` seconds and sweep every `sweep_interval` (the
    DICOMweb poll, when there is no change log, every `interval`), until `stop`."""
    next_sweep = 0.0
    down: str | None = None
    while not stop.is_set():
        try:
            if orthanc is not None:
                orthanc.poll()
            now = dt.datetime.now().timestamp()
            if dicomweb is not None and now >= next_sweep:
                dicomweb.sweep()
                next_sweep = now + (sweep_interval if orthanc is not None else interval)
            if down is not None:
                log.info("archive reachable again", extra={"reason": down})
                down = None
        except (ArchiveError, httpx.HTTPError, ValueError, KeyError) as exc:
            if down is None:
                log.warning("archive unreachable", extra={"reason": str(exc)})
            down = str(exc)
        except Exception as exc:  # a bug in sr2fhir: say so, keep following
            log.exception("internal error while following", extra={"reason": type(exc).__name__})
        stop.wait(interval)
