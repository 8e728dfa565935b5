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
import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import Sr2fhirError
from ..dicom.dictionary import SR_STORAGE, uid_ok
from . import multipart
from .intake import Intake

log = logging.getLogger("sr2fhir.gateway")
WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def _value(attrs: dict[str, Any], tag: str) -> str | None:
    v = attrs.get(tag, {}).get("Value")
    return str(v[0]) if v else None


class ArchiveError(Sr2fhirError):
    pass


@dataclass(frozen=True)
class Access:
    """How to reach an archive (`--archive-token-env/-file`, `--archive-basic-user`,
    `--archive-ca-bundle`): its credentials, the CA that signs its certificate, a timeout, and
    the largest object it may send (`--max-stow-mb`, as for STOW-RS)."""

    auth: httpx.Auth | None = None
    verify: bool | str = True
    timeout: float = 60.0
    max_bytes: int = 512 << 20

    def client(self) -> httpx.Client:
        # No kept-alive connections: Orthanc closes idle ones, and a poll that reuses one fails.
        return httpx.Client(timeout=self.timeout, headers={"User-Agent": "sr2fhir"}, auth=self.auth, verify=self.verify,
                            limits=httpx.Limits(max_keepalive_connections=0))


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def fetch(http: httpx.Client, url: str, what: str, limit: int, *, params: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> Answer:
    """GET `url`, reading at most `limit` bytes of its body; ArchiveError beyond, on a network
    error, or when the archive refuses our credentials (401/403)."""
    try:
        with http.stream("GET", url, params=params, headers=headers) as r:
            if r.status_code in (401, 403):
                raise ArchiveError(f"{what}: HTTP {r.status_code}: the archive refuses our credentials")
            body = bytearray()
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise ArchiveError(f"{what}: the answer is larger than {limit >> 20} MiB (--max-stow-mb)")
            return Answer(r.status_code, r.headers.get("content-type", ""), bytes(body))
    except httpx.HTTPError as exc:
        raise ArchiveError(f"{what}: {type(exc).__name__}") from None


class DicomWeb:
    """QIDO-RS and WADO-RS against one DICOMweb base URL (e.g. Orthanc's `/dicom-web`)."""

    def __init__(self, base_url: str, intake: Intake, *, window_days: int = 0, page: int = 200, access: Access = Access()) -> None:
        self.base = base_url.rstrip("/")
        self.intake = intake
        self.window_days = window_days
        self.page = page
        self.access = access
        self.http = access.client()

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
                # The UIDs name a URL: only valid ones (an archive's answer is network input too).
                if not all(uid_ok(u) for u in (sop, study, series)) or self.intake.queue.known(str(sop)) or (cls and cls not in SR_STORAGE):
                    continue
                assert sop and study and series
                try:
                    data = self.retrieve(study, series, sop)
                except ArchiveError as exc:  # this one (deleted since?): the others go on, the next sweep retries it
                    log.warning("not retrieved", extra={"sop_uid": sop, "source": "dicomweb", "reason": str(exc)})
                    continue
                outcome = self.intake.accept(data, f"WADO-RS instance {sop}", "dicomweb", peer=urlsplit(self.base).hostname)
                if outcome.refused == "out-of-resources":
                    return taken  # the next sweep tries again
                taken += outcome.stored and not outcome.duplicate
            if len(found) < self.page:
                return taken
            offset += len(found)

    def retrieve(self, study: str, series: str, sop: str) -> bytes:
        url = f"{self.base}/studies/{study}/series/{series}/instances/{sop}"
        r = fetch(self.http, url, f"WADO-RS {url}", self.access.max_bytes, headers={"Accept": WADO_ACCEPT})
        if r.status != 200:
            raise ArchiveError(f"WADO-RS {url}: HTTP {r.status}")
        try:
            parts = multipart.parse(r.body, r.content_type)
        except multipart.MultipartError as exc:
            raise ArchiveError(f"WADO-RS {url}: {exc}") from None
        if not parts:
            raise ArchiveError(f"WADO-RS {url}: no object in the answer")
        return parts[0].data

    def _get_json(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        what = f"QIDO-RS {self.base}{path}"
        r = fetch(self.http, self.base + path, what, self.access.max_bytes, params=params, headers={"Accept": "application/dicom+json"})
        if r.status == 204:
            return []
        if r.status != 200:
            raise ArchiveError(f"{what}: HTTP {r.status}")
        body = json.loads(r.body)
        return body if isinstance(body, list) else []


_ORTHANC_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{8}){4}")
"""Orthanc's resource ids (SHA-1 in five groups): only such an id from the change log names a URL."""


class Orthanc:
    """Orthanc's change log (REST API, `/changes`)."""

    def __init__(self, base_url: str, intake: Intake, *, access: Access = Access()) -> None:
        self.base = base_url.rstrip("/")
        self.intake = intake
        self.cursor_name = f"orthanc-changes:{self.base}"
        self.access = access
        self.http = access.client()

    def poll(self) -> int:
        """Take in the SR instances the log names since the cursor; returns how many were new."""
        taken = 0
        queue = self.intake.queue
        while True:
            since = int(queue.cursor(self.cursor_name) or 0)
            changes = json.loads(self._get(f"/changes?since={since}&limit=100"))
            for change in changes.get("Changes", []):
                if change.get("ChangeType") == "NewInstance" and _ORTHANC_ID.fullmatch(str(change.get("ID", ""))):
                    result = self._take(str(change["ID"]))
                    if result is None:
                        return taken  # refused for lack of room: replay from here later
                    taken += result
                queue.set_cursor(self.cursor_name, str(int(change["Seq"])))
            if changes.get("Done", True) or not changes.get("Changes"):
                if not changes.get("Changes") and "Last" in changes and int(changes["Last"]) > since:
                    queue.set_cursor(self.cursor_name, str(int(changes["Last"])))
                return taken

    def _take(self, orthanc_id: str) -> int | None:
        what = f"Orthanc {self.base}"
        r = fetch(self.http, f"{self.base}/instances/{orthanc_id}/metadata/SopClassUid", what, 1024)
        if r.status == 404:
            return 0  # deleted since
        if r.status != 200:
            raise ArchiveError(f"{what}: HTTP {r.status} for an instance's SOP Class")
        if r.body.decode("ascii", "replace").strip() not in SR_STORAGE:
            return 0
        r = fetch(self.http, f"{self.base}/instances/{orthanc_id}/file", what, self.access.max_bytes)
        if r.status == 404:
            return 0  # deleted since
        if r.status != 200:
            raise ArchiveError(f"{what}: HTTP {r.status} for an instance's file")
        outcome = self.intake.accept(r.body, f"Orthanc instance {orthanc_id}", "orthanc", peer=urlsplit(self.base).hostname)
        if outcome.refused == "out-of-resources":
            return None
        return int(outcome.stored and not outcome.duplicate)

    def _get(self, path: str) -> bytes:
        what = f"Orthanc {self.base}{path.split('?')[0]}"
        r = fetch(self.http, self.base + path, what, self.access.max_bytes)
        if r.status != 200:
            raise ArchiveError(f"{what}: HTTP {r.status}")
        return r.body


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
