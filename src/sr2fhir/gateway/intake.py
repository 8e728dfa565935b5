"""Intake: what every input path (C-STORE, STOW-RS, an archive followed) does with an object it
receives. It is stored durably and queued before the sender hears Success; an object the
gateway cannot keep (disk past the watermark) or should not (not an SR) is refused, so the
sender keeps it."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from ..dicom.dictionary import uid_ok
from ..dicom.identify import Identity, identify
from ..errors import ConversionError
from .metrics import Metrics
from .queue import Queue, unidentified

log = logging.getLogger("sr2fhir.gateway")

Refusal = Literal["out-of-resources", "sop-class-not-supported", "cannot-understand", "processing-failure"]

STATUS = {"out-of-resources": 0xA700, "sop-class-not-supported": 0x0122, "cannot-understand": 0xC000, "processing-failure": 0x0110}
"""The DIMSE status (PS3.4 Table B.2-1 and PS3.7 C.4.2) and STOW-RS Failure Reason (0008,1197),
PS3.18 Table 10.5.3-2, for each refusal."""


SLACK = 256 << 10
"""Bytes kept free beyond the watermark for the queue's database (its write-ahead log)."""
READY_ROOM = 1 << 20
"""`/readyz` says ready while a report of this size could still be taken."""


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    """The SOP Instance UID (or, for an object whose header cannot be read, `unidentified-<sha256>`)."""
    identity: Identity | None
    refused: Refusal | None = None
    reason: str | None = None
    duplicate: bool = False
    kept: bool = False
    """Refused, yet kept in the dead letter (a DICOM object whose header cannot be read)."""

    @property
    def stored(self) -> bool:
        return self.refused is None


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Intake:
    def __init__(self, queue: Queue, metrics: Metrics, min_free: int) -> None:
        """`min_free`: bytes that must stay free on the state folder's disk (the watermark)."""
        self.queue = queue
        self.metrics = metrics
        self.min_free = min_free
        self.arrived = threading.Event()
        """Set whenever a report is queued: wakes the delivery loop."""
        self.audit: Callable[[Outcome, str, str | None], None] | None = None
        """Told of every outcome, with the source and the peer (gateway/audit.py)."""

    def room(self, incoming: int = 0) -> bool:
        """Whether an object of `incoming` bytes can be kept with the watermark still free (and
        room for the queue's own writes)."""
        return free_bytes(self.queue.state) - incoming - SLACK >= self.min_free

    def accept(self, data: bytes, name: str, source: str, claimed: Identity | None = None, peer: str | None = None) -> Outcome:
        """Store and queue one object (see `_accept`); each outcome, stored or refused, is audited."""
        outcome = self._accept(data, name, source, claimed, peer)
        if self.audit is not None:
            self.audit(outcome, source, peer)
        return outcome

    def _accept(self, data: bytes, name: str, source: str, claimed: Identity | None, peer: str | None) -> Outcome:
        """Store and queue one object. `claimed`: what the transport said it is (the C-STORE
        command's Affected SOP Class/Instance UIDs), used when the header cannot be read and
        only if both are valid UIDs: nothing from the network names a file unvalidated. `peer`:
        the sender's network address, for the log."""
        sha = hashlib.sha256(data).hexdigest()
        if claimed is not None and not (uid_ok(claimed.sop_class_uid) and uid_ok(claimed.sop_instance_uid)):
            claimed = None
        broken = None
        try:
            ident: Identity | None = identify(data, name)
        except ConversionError as exc:
            ident, broken = claimed, str(exc)
        if not self.room(len(data)):
            # Identified first, so that the refusal names the validated SOP Instance UID.
            return self._refuse(peer, sha, ident, source, "out-of-resources", f"the state folder's disk is past its watermark ({self.min_free // 2**20} MiB must stay free)")
        if ident is not None and not ident.is_sr:
            return self._refuse(peer, sha, ident, source, "sop-class-not-supported", f"{name}: SOP Class {ident.sop_class_uid} is not an SR Storage SOP Class")
        if broken is not None and ident is None and data[128:132] != b"DICM":
            return self._refuse(peer, sha, None, source, "cannot-understand", broken)
        key = ident.sop_instance_uid if ident is not None else unidentified(sha)
        try:
            added = self.queue.add(
                key, sha, data, sop_class=ident.sop_class_uid if ident else "", study_uid=ident.study_instance_uid if ident else None,
                series_uid=ident.series_instance_uid if ident else None, source=source, predecessors=ident.predecessors if ident else (),
            )
            if broken is not None and added != "duplicate":
                self.queue.dead(key, broken)
                self.metrics.dead_lettered.inc()
        except OSError as exc:
            refusal: Refusal = "out-of-resources" if exc.errno in (28, 122) else "processing-failure"  # ENOSPC, EDQUOT
            return self._refuse(peer, sha, ident, source, refusal, f"{name}: could not be stored ({exc.strerror or type(exc).__name__})")
        if broken is not None:
            # A DICOM object whose header cannot be read: refused (the sender hears why), and kept
            # in the dead letter with its reason for a person to look at.
            outcome = self._refuse(peer, sha, ident, source, "cannot-understand", broken)
            return Outcome(key, ident, outcome.refused, broken, kept=True)
        kind = source.split(":", 1)[0]
        if added == "duplicate":
            self.metrics.duplicates.labels(kind).inc()
        else:
            self.metrics.received.labels(kind).inc()
            self.arrived.set()
        log.info("received", extra={"sop_uid": key, "source": source, "peer": peer, "outcome": added})
        return Outcome(key, ident, duplicate=added == "duplicate")

    def _refuse(self, peer: str | None, sha: str, ident: Identity | None, source: str, refusal: Refusal, reason: str) -> Outcome:
        self.metrics.refused.labels(source.split(":", 1)[0], refusal).inc()
        key = ident.sop_instance_uid if ident is not None else unidentified(sha)
        log.warning("refused", extra={"sop_uid": key, "source": source, "peer": peer, "outcome": refusal, "reason": reason})
        return Outcome(key, ident, refusal, reason)
