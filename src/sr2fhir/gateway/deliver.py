"""The delivery loop: convert each queued report and push it (batch.checked, delivery.push_path),
in order of due time, one at a time.

What a failure does (docs/gateway.md):
- the report cannot be converted (not TID 1500, broken), or the server refuses it (a 4xx such as
  its validation): dead letter, with the reason; the rest keep flowing;
- anything else (5xx/429 after the client's own retries, a Patient / ImagingStudy /
  ServiceRequest not there yet, an answer lost or unreadable): tried again later, with exponential
  backoff (at least the server's Retry-After), up to the most attempts, then the dead letter;
- the server cannot be reached, or refuses our credentials: delivery pauses (no attempt counted)
  and probes the server until it answers;
- the queue cannot be written (the state folder's disk is full): delivery pauses and probes the
  queue with a write until one succeeds; a report pushed but not marked is pushed again (safe).
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from typing import Callable

from ..batch import FileResult, checked
from ..delivery.client import FhirClient, version_mismatch
from ..delivery.push import push_path
from .config import Backoff, DeliveryPolicy
from .intake import Intake
from .metrics import Metrics
from .queue import Queue, Report

log = logging.getLogger("sr2fhir.gateway")


class Deliverer:
    def __init__(self, queue: Queue, intake: Intake, metrics: Metrics, client: FhirClient, conversion: DeliveryPolicy, backoff: Backoff) -> None:
        self.queue = queue
        self.intake = intake
        self.metrics = metrics
        self.client = client
        self.conversion = conversion
        self.backoff = backoff
        self.paused_until = 0.0
        self._pause = 0.0
        self.pause_reason: str | None = None
        self._server_version: str | None = None
        self.state_problem = False
        """The pause is for the queue (the state disk), not for the FHIR server."""
        self.audit: Callable[[Report, FileResult | None, str | None], None] | None = None
        """Told of each report delivered (reason None) or dead-lettered, with its conversion when there is one."""

    @property
    def paused(self) -> bool:
        return self.pause_reason is not None

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set; the report in hand is finished first (pushing it again
        after a kill is safe)."""
        while not stop.is_set():
            if self.paused:
                wait = self.paused_until - time.time()
                if wait > 0:
                    stop.wait(min(wait, 1.0))
                    continue
                if not self._resume():
                    continue
            report = self.queue.next_due()
            if report is None:
                due = self.queue.next_wait()
                self.intake.arrived.wait(min(1.0, due if due is not None else 1.0))
                self.intake.arrived.clear()
                continue
            try:
                self.deliver(report)
            except Exception as exc:
                if not self._state_failure(exc):  # a bug in sr2fhir: keep the report, keep going
                    log.exception("internal error", extra={"sop_uid": report.sop_uid})
                    try:
                        self.queue.later(report.sop_uid, self.backoff.delay(report.attempts + 1), f"internal error ({type(exc).__name__})")
                    except Exception as again:
                        if not self._state_failure(again):
                            raise

    def _state_failure(self, exc: BaseException) -> bool:
        """Whether `exc` says the queue cannot be written (SQLite's "database or disk is full", an
        I/O error, ENOSPC); if so, delivery pauses until a write to the queue succeeds."""
        if isinstance(exc, sqlite3.Error) or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)):
            self.state_problem = True
            self._pause_delivery(f"the queue cannot be written ({exc}): is the state folder's disk full?")
            return True
        return False

    def deliver(self, report: Report) -> None:
        path = str(self.queue.path(report.sop_uid))
        c = self.conversion
        conv = checked(path, c.options, c.limits, c.checks, c.fhir_version)
        if conv.error is not None:
            self._dead(report, str(conv.error), conv)
            return
        if c.missing == "fail" and any(not x.document.header.patient_id for x in conv.conversions):
            # No Patient can ever be found for it: waiting (as for a Patient not there yet) is futile.
            self._dead(report, "the SR has no Patient ID (0010,0020), so no Patient on the server can be its subject; "
                               "correct the SR and send it again, or run with --missing logical", conv)
            return
        if report.state == "received":
            self.queue.converted(report.sop_uid)
            self.metrics.converted.inc()
        if self._server_version is None:
            self._server_version = self.client.server_fhir_version()
        problem = version_mismatch(self._server_version, c.fhir_version)
        if problem:
            # Every report would be refused (4xx) and dead-lettered: wait for the operator instead.
            self._pause_delivery(problem)
            return
        r = push_path(self.client, path, options=c.options, missing=c.missing, multiple=c.multiple, seed=c.seed, conversion=conv, fhir_version=c.fhir_version)
        if r.ok:
            again = self.queue.delivered(report.sop_uid, "; ".join(r.notes) or None)
            latency = time.time() - report.received_at
            self.metrics.delivered.inc()
            self.metrics.latency.observe(latency)
            log.info("delivered", extra={"sop_uid": report.sop_uid, "entries": r.entries, "new": r.created, "latency_s": round(latency, 3)})
            for uid in again:
                log.info("queued again", extra={"sop_uid": uid, "reason": f"it corrects {report.sop_uid}, which reached the server after it"})
            if self.audit is not None:
                self.audit(report, conv, None)
            return
        reason = r.error or "not delivered"
        if r.stop:
            self._pause_delivery(f"the FHIR server refuses us: {r.stop}")
        elif r.unreachable and not self.client.answers():
            self._pause_delivery(f"the FHIR server cannot be reached: {reason}")
        elif r.conversion.error is not None or (r.status is not None and 400 <= r.status < 500):
            self._dead(report, reason, conv)  # the server refuses this report: it would refuse it again
        else:
            # 5xx/429 after the client's retries, a Patient not there yet, an answer lost or
            # unreadable (the push may have committed; pushing again is safe).
            self._later(report, reason, conv, r.retry_after)

    def _later(self, report: Report, reason: str, conv: FileResult, retry_after: float | None = None) -> None:
        if report.attempts + 1 >= self.backoff.max_attempts:
            self._dead(report, f"gave up after {report.attempts + 1} attempts: {reason}", conv)
            return
        # The server's Retry-After wins over a shorter backoff (still at most --max-delay).
        delay = max(self.backoff.delay(report.attempts + 1), min(retry_after or 0.0, self.backoff.max_delay))
        self.queue.later(report.sop_uid, delay, reason)
        self.metrics.retries.inc()
        log.warning("retry", extra={"sop_uid": report.sop_uid, "reason": reason, "delay_s": round(delay, 1)})

    def _dead(self, report: Report, reason: str, conv: FileResult) -> None:
        self.queue.dead(report.sop_uid, reason)
        self.metrics.dead_lettered.inc()
        log.error("dead-lettered", extra={"sop_uid": report.sop_uid, "reason": reason})
        if self.audit is not None:
            self.audit(report, conv, reason)

    def _pause_delivery(self, reason: str) -> None:
        self._pause = min(max(self._pause * 2, self.backoff.retry_delay / 5, 0.5), self.backoff.max_pause)
        self.paused_until = time.time() + self._pause
        if self.pause_reason is None:
            log.error("delivery paused", extra={"reason": reason})
        self.pause_reason = reason
        self.metrics.paused.set(1)

    def _resume(self) -> bool:
        """Probe what the pause is for once it is over (the queue with a write, else the server);
        resume when it answers."""
        if self.state_problem:
            if not self.queue.writable():
                self._pause_delivery(self.pause_reason or "the queue cannot be written")
                return False
            self.state_problem = False
        elif not self.client.answers():
            self._pause_delivery(self.pause_reason or "the FHIR server cannot be reached")
            return False
        log.info("delivery resumed", extra={"reason": self.pause_reason})
        self.pause_reason, self._pause, self._server_version = None, 0.0, None
        self.metrics.paused.set(0)
        return True
