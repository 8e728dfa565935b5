"""`sr2fhir serve`: intake (C-STORE, STOW-RS, archives followed) -> durable queue -> delivery, with
the operations endpoints; one process, threads for each part, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from typing import Any, Callable

from ..batch import FileResult
from . import audit
from .config import Settings
from .deliver import Deliverer
from .follow import Access
from .intake import READY_ROOM, Intake, Outcome
from .metrics import Metrics
from .queue import Queue, Report

log = logging.getLogger("sr2fhir.gateway")

STOP_GRACE = 7.0
"""Seconds SIGTERM waits for the report in hand: under the usual 10 s before a supervisor kills."""
HTTP_CONCURRENCY = 64
"""Requests served at once (uvicorn answers 503 beyond): with the body limit, a bound on what
STOW-RS senders can make the process hold."""


def _check_port(host: str, port: int) -> None:
    """Fail before starting when the HTTP port is taken (uvicorn would only log it, in its thread)."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen for HTTP on {host}:{port} ({exc.strerror})") from None


class Gateway:
    """The gateway's parts (queue, intake, listeners, followers, delivery loop) for one state
    folder; ``start`` them, then ``stop`` (``serve`` does both around the signals)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = s = settings
        s.state.mkdir(parents=True, exist_ok=True)
        self.queue = Queue(s.state)
        self.metrics = Metrics(self.queue)
        self.intake = Intake(self.queue, self.metrics, s.min_free)
        self.me = audit.Participant(s.ae_title, audit.ROLE_APPLICATION, False, s.bind, s.ae_title)
        """The gateway in its audit messages."""
        self.auditor: audit.Auditor | None = None
        if s.audit is not None:
            self.auditor = audit.Auditor(s.audit, on_drop=self.metrics.audit_dropped, on_sent=self.metrics.audit_sent)
            s.audit.save(s.state)  # the queue commands audit to the same repository
            self.intake.audit = self._audit_receipt
        else:
            (s.state / "audit.json").unlink(missing_ok=True)
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self._scp: Any = None
        self._http: Any = None

    def ready(self) -> dict[str, Any]:
        """`/readyz`: intake can take reports (the queue answers, the disk has room)."""
        try:
            counts = self.queue.counts()
        except Exception as exc:  # the database cannot be read
            return {"ready": False, "reason": f"queue: {type(exc).__name__}"}
        room = self.intake.room(READY_ROOM)
        deliverer: Deliverer | None = getattr(self, "deliverer", None)
        queue_ok = deliverer is None or not deliverer.state_problem
        paused = deliverer is not None and deliverer.paused
        out: dict[str, Any] = {
            "ready": room and queue_ok and not self.stop_event.is_set(),
            "disk": "ok" if room else "past the watermark: intake refused",
            "queue": counts,
            "delivery": "running" if not paused else "paused: the queue cannot be written" if not queue_ok else "paused: waiting for the FHIR server",
        }
        if paused and deliverer is not None:
            out["reason"] = deliverer.pause_reason  # may name the server's URL or a path: for an authorised caller (web.py)
        return out

    def _audit_receipt(self, outcome: Outcome, source: str, peer: str | None) -> None:
        assert self.auditor is not None
        ident = outcome.identity
        study = audit.Study(ident.study_instance_uid or "unknown", ident.sop_class_uid, (ident.sop_instance_uid,), ident.patient_id) if ident else None
        self.auditor.record(audit.receipt(self.me, source, peer, study, outcome.reason if outcome.refused else None))

    def _audit_delivery(self, report: Report, conv: FileResult | None, failure: str | None) -> None:
        assert self.auditor is not None
        patients = {c.document.sop_instance_uid: c.document.header.patient_id or "" for c in conv.conversions} if conv is not None else {}
        studies = audit.studies_of([(report.study_uid, report.sop_class, report.sop_uid)], patients)
        self.auditor.record(audit.export(self.me, self.settings.connection.fhir_url, studies, failure))

    def _recover(self) -> None:
        """Objects stored just before a crash, whose row was never written, are queued now (their
        sender heard no Success and may send them again: a duplicate, delivered once)."""
        for path in self.queue.orphans():
            outcome = self.intake.accept(path.read_bytes(), f"recovered {path.name}", "recovered")
            if self.queue.path(outcome.key) != path:
                path.unlink(missing_ok=True)

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def start(self) -> None:
        s = self.settings
        if s.tls is not None:
            s.tls.check()
        self._recover()
        from .dimse import StorageSCP  # pynetdicom: imported when the SCP starts

        auth = s.connection.auth()
        self._client_cm = s.connection.client(auth)
        client = self._client_cm.__enter__()
        self.deliverer = Deliverer(self.queue, self.intake, self.metrics, client, s.conversion, s.backoff)
        if self.auditor is not None:
            self.auditor.start()
            self.auditor.record(audit.application(self.me, start=True))
            self.deliverer.audit = self._audit_delivery
        self._thread("deliver", lambda: self.deliverer.run(self.stop_event))

        self._scp = StorageSCP(self.intake, s.ae_title, s.peers, s.tls)
        try:
            self._scp.start(s.bind, s.dicom_port)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen for DICOM on {s.bind}:{s.dicom_port} ({exc.strerror})") from None
        _check_port(s.bind, s.http_port)

        import uvicorn

        from .web import app

        config = uvicorn.Config(app(self.intake, token=s.stow_token, ready=self.ready, limits=s.stow_limits, protect_operations=s.protect_operations),
                                host=s.bind, port=s.http_port, log_level="warning", access_log=False, lifespan="off",
                                limit_concurrency=HTTP_CONCURRENCY, log_config=None,  # uvicorn's records go through logs.py
                                **(s.tls.uvicorn() if s.tls is not None else {}))
        self._http = uvicorn.Server(config)
        self._thread("http", self._http.run)

        if s.follow_orthanc or s.follow_dicomweb:
            from .follow import DicomWeb, Orthanc, follow

            archive = s.archive or Access()
            orthanc = Orthanc(s.follow_orthanc, self.intake, access=archive) if s.follow_orthanc else None
            web_base = s.follow_dicomweb or (s.follow_orthanc.rstrip("/") + "/dicom-web" if s.follow_orthanc else None)
            dicomweb = DicomWeb(web_base, self.intake, window_days=s.sweep_days, access=archive) if web_base else None
            self._thread("follow", lambda: follow(orthanc, dicomweb, self.stop_event, s.follow_interval, s.sweep_interval))
        self._thread("housekeeping", self._housekeeping)
        tls = "+tls" if s.tls is not None else ""
        log.info("listening", extra={"address": f"dicom{tls}://{s.ae_title}@{s.bind}:{s.dicom_port} http{'s' if tls else ''}://{s.bind}:{s.http_port}"})

    def _housekeeping(self) -> None:
        """Delivered reports are forgotten (row and object) after `keep_delivered_days`, hourly."""
        days = self.settings.keep_delivered_days
        while True:
            try:
                gone = self.queue.purged("delivered", days * 86400)
            except (sqlite3.Error, OSError) as exc:  # the state disk is full: next hour
                log.warning("not purged", extra={"reason": str(exc)})
                gone = []
            n = len(gone)
            if gone and self.auditor is not None:
                self.auditor.record(audit.queue_operation(self.me, True, audit.studies_of([(r.study_uid, r.sop_class, r.sop_uid) for r in gone])))
            if n:
                log.info("purged", extra={"outcome": f"{n} delivered report(s) older than {days:g} days"})
            if self.stop_event.wait(3600):
                return

    def stop(self, timeout: float = STOP_GRACE) -> None:
        """Stop intake first, then let the report in hand finish within `timeout` seconds in all,
        or abandon it: it stays queued and is pushed again at the next start (idempotent)."""
        deadline = time.monotonic() + timeout
        self.stop_event.set()
        if self._scp is not None:
            self._scp.stop()
        if self._http is not None:
            self._http.should_exit = True
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        unfinished = [t.name for t in self.threads if t.is_alive()]
        if unfinished:
            log.warning("stopping without waiting", extra={"reason": f"still busy after {timeout:g} s: {', '.join(unfinished)}; "
                                                                     "a report in hand stays queued"})
        if hasattr(self, "_client_cm"):
            self._client_cm.__exit__(None, None, None)
        if self.auditor is not None:
            self.auditor.record(audit.application(self.me, start=False))
            self.auditor.stop()
        self.queue.close()
        log.info("stopped", extra={"outcome": "queue closed"})


class GatewayFailed(RuntimeError):
    """A part of the gateway stopped on its own: the process must end with a failure, so that a
    supervisor (systemd's Restart=on-failure) starts it again."""


def serve(settings: Settings) -> None:
    """Run the gateway (``sr2fhir serve``; docs/gateway.md) until SIGTERM or SIGINT.

    Parameters
    ----------
    settings : Settings
        Where to listen, who may send, the state folder, the FHIR server and how to convert and
        push (``DeliveryPolicy``), TLS, limits, archives to follow.

    Raises
    ------
    GatewayFailed
        A part of the gateway (a listener, the delivery loop, a follower) stopped by itself.
    """
    gateway = Gateway(settings)
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("stopping", extra={"reason": signal.Signals(signum).name})
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    dead: list[str] = []
    try:
        gateway.start()
        while not done.wait(1.0):
            dead = [t.name for t in gateway.threads if not t.is_alive()]
            if dead:
                log.error("a part of the gateway stopped", extra={"reason": ", ".join(dead)})
                break
        if dead:
            raise GatewayFailed(f"a part of the gateway stopped ({', '.join(dead)}); see the log")
    finally:
        gateway.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
