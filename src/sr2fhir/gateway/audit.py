"""The audit trail (`--audit-syslog`): DICOM audit messages (PS3.15 A.5, the schema IHE ATNA's
Record Audit Event uses) for every object received, every report delivered or dead-lettered, the
operators' queue commands and the gateway's start and stop, sent as RFC 5424 syslog messages over
UDP (RFC 5426), TCP (RFC 6587 octet counting) or TLS (RFC 5425).

An audit message names the Patient ID (the Patient participant object PS3.15 requires): it goes
to the audit repository alone, never to the log (D-44). Messages wait in a bounded queue while the
repository is unreachable; past its bound they are dropped and counted (`sr2fhir_audit_dropped_total`).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import queue
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

log = logging.getLogger("sr2fhir.gateway")

Outcome = Literal[0, 4, 8, 12]
"""EventOutcomeIndicator: success, minor failure, serious failure, major failure (PS3.15 A.5.1)."""


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    meaning: str
    scheme: str = "DCM"


# PS3.16 CID 400 (Audit Event ID), CID 401 (Audit Event Type Code), CID 402 (Audit Participant Role ID).
APPLICATION_ACTIVITY = Code("110100", "Application Activity")
INSTANCES_ACCESSED = Code("110103", "DICOM Instances Accessed")
INSTANCES_TRANSFERRED = Code("110104", "DICOM Instances Transferred")
INSTANCES_DELETED = Code("110105", "DICOM Instances Deleted")
EXPORT = Code("110106", "Export")
APPLICATION_START = Code("110120", "Application Start")
APPLICATION_STOP = Code("110121", "Application Stop")
ROLE_APPLICATION = Code("110150", "Application")
ROLE_DESTINATION = Code("110152", "Destination Role ID")
ROLE_SOURCE = Code("110153", "Source Role ID")
STUDY_UID = Code("110180", "Study Instance UID")
PATIENT_NUMBER = Code("2", "Patient Number", "RFC-3881")


@dataclass(frozen=True, slots=True)
class Participant:
    """ActiveParticipant: who took part, and from where."""

    user_id: str
    role: Code | None
    requestor: bool
    address: str | None = None
    ae_title: str | None = None


@dataclass(frozen=True, slots=True)
class Study:
    """The Study participant object and, beside it, the Patient one (PS3.15 A.5.3.x: both M)."""

    study_uid: str
    sop_class: str
    instances: tuple[str, ...]
    patient_id: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Event:
    event_id: Code
    action: Literal["C", "R", "U", "D", "E"]
    outcome: Outcome
    participants: tuple[Participant, ...]
    studies: tuple[Study, ...] = ()
    type_code: Code | None = None
    description: str | None = None


def _code(parent: ET.Element, tag: str, code: Code) -> None:
    ET.SubElement(parent, tag, {"csd-code": code.code, "codeSystemName": code.scheme, "originalText": code.meaning})


def _address_type(address: str) -> str:
    """NetworkAccessPointTypeCode: 2 for an IP address, 1 for a machine name."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
        return "2"
    except OSError:
        return "1"


def message(event: Event, source_id: str, site: str | None = None, when: dt.datetime | None = None) -> bytes:
    """The AuditMessage (PS3.15 A.5.1) of `event`, as UTF-8 XML on one line."""
    root = ET.Element("AuditMessage")
    ident = ET.SubElement(root, "EventIdentification", {
        "EventActionCode": event.action, "EventOutcomeIndicator": str(event.outcome),
        "EventDateTime": (when or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="milliseconds"),
    })
    _code(ident, "EventID", event.event_id)
    if event.type_code is not None:
        _code(ident, "EventTypeCode", event.type_code)
    if event.description:
        ET.SubElement(ident, "EventOutcomeDescription").text = event.description
    for p in event.participants:
        attrs = {"UserID": p.user_id, "UserIsRequestor": "true" if p.requestor else "false"}
        if p.ae_title:
            attrs["AlternativeUserID"] = f"AETITLES={p.ae_title}"
        if p.address:
            attrs |= {"NetworkAccessPointID": p.address, "NetworkAccessPointTypeCode": _address_type(p.address)}
        participant = ET.SubElement(root, "ActiveParticipant", attrs)
        if p.role is not None:
            _code(participant, "RoleIDCode", p.role)
    source = ET.SubElement(root, "AuditSourceIdentification", {"AuditSourceID": source_id} | ({"AuditEnterpriseSiteID": site} if site else {}))
    _code(source, "AuditSourceTypeCode", Code("4", "Application Server process tier in a multi-tier system"))
    patients: dict[str, None] = {}
    for s in event.studies:
        obj = ET.SubElement(root, "ParticipantObjectIdentification", {
            "ParticipantObjectID": s.study_uid, "ParticipantObjectTypeCode": "2", "ParticipantObjectTypeCodeRole": "3"})
        _code(obj, "ParticipantObjectIDTypeCode", STUDY_UID)
        sop = ET.SubElement(obj, "SOPClass", {"UID": s.sop_class, "NumberOfInstances": str(len(s.instances))})
        for uid in s.instances:
            ET.SubElement(sop, "Instance", {"UID": uid})
        if s.patient_id:
            patients[s.patient_id] = None
    for pid in patients:
        obj = ET.SubElement(root, "ParticipantObjectIdentification", {
            "ParticipantObjectID": pid, "ParticipantObjectTypeCode": "1", "ParticipantObjectTypeCodeRole": "1"})
        _code(obj, "ParticipantObjectIDTypeCode", PATIENT_NUMBER)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return text


def syslog(xml: bytes, hostname: str, when: dt.datetime | None = None) -> bytes:
    """An RFC 5424 message: facility authpriv (10), severity notice (5), MSGID IHE+DICOM, the XML
    after a BOM (RFC 5424 6.4: UTF-8 MSG)."""
    ts = (when or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    host = "".join(c for c in hostname if 33 <= ord(c) <= 126)[:255] or "-"
    return f"<85>1 {ts} {host} sr2fhir {os.getpid()} IHE+DICOM - ".encode("ascii") + b"\xef\xbb\xbf" + xml


@dataclass(frozen=True, slots=True)
class Target:
    """Where audit messages go: `udp://host:port`, `tcp://host:port` or `tls://host:port`, with
    the CA bundle that signs a TLS repository's certificate (else the system's)."""

    url: str
    ca: str | None = None
    site: str | None = None

    @property
    def parts(self) -> tuple[str, str, int]:
        u = urlsplit(self.url)
        if u.scheme not in ("udp", "tcp", "tls") or not u.hostname or not u.port:
            raise ValueError(f"--audit-syslog {self.url!r}: expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT")
        return u.scheme, u.hostname, u.port

    def save(self, state: Path) -> None:
        """The queue commands audit to the same repository: they read it from the state folder."""
        (state / "audit.json").write_text(json.dumps({"url": self.url, "ca": self.ca, "site": self.site}))

    @staticmethod
    def load(state: Path) -> "Target | None":
        try:
            data = json.loads((state / "audit.json").read_text())
            return Target(str(data["url"]), data.get("ca"), data.get("site"))
        except (OSError, ValueError, KeyError, TypeError):
            return None


class Sender:
    """One connection to the repository; framing by transport (a datagram, or octet counting)."""

    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        self.scheme, self.host, self.port = target.parts
        self.target = target
        self.timeout = timeout
        self._sock: socket.socket | None = None

    def send(self, msg: bytes) -> None:
        if self.scheme == "udp":
            with socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(msg, (self.host, self.port))
            return
        if self._sock is None:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
            if self.scheme == "tls":
                ctx = ssl.create_default_context(cafile=self.target.ca)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                raw = ctx.wrap_socket(raw, server_hostname=self.host)
            self._sock = raw
        try:
            self._sock.sendall(str(len(msg)).encode("ascii") + b" " + msg)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


class Counter(Protocol):
    """What Auditor counts with (a prometheus_client Counter)."""

    def inc(self, amount: float = 1) -> None: ...


class Auditor:
    """Sends audit messages from a thread of its own, so that no intake or delivery waits for the
    repository. `record()` never blocks and never raises."""

    def __init__(self, target: Target, *, source_id: str | None = None, limit: int = 10000, on_drop: Counter | None = None,
                 on_sent: Counter | None = None) -> None:
        target.parts  # noqa: B018  (checks the URL now)
        self.target = target
        self.hostname = socket.gethostname()
        self.source_id = source_id or f"sr2fhir@{self.hostname}"
        self._queue: queue.Queue[bytes] = queue.Queue(limit)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sender = Sender(target)
        self.on_drop, self.on_sent = on_drop, on_sent
        self._warned = 0.0

    def record(self, event: Event) -> None:
        try:
            msg = syslog(message(event, self.source_id, self.target.site), self.hostname)
            self._queue.put_nowait(msg)
        except queue.Full:
            if self.on_drop is not None:
                self.on_drop.inc()
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.error("audit message dropped", extra={"reason": f"the audit repository has not taken the last {self._queue.maxsize} messages"})
        except Exception as exc:  # an audit must never stop intake or delivery
            log.error("audit message not made", extra={"reason": type(exc).__name__})

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Send what is queued (for at most `timeout` seconds), then close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._sender.close()

    def _run(self) -> None:
        pause = 0.5
        pending: bytes | None = None
        while True:
            if pending is None:
                try:
                    pending = self._queue.get(timeout=0.2)
                except queue.Empty:
                    if self._stop.is_set():
                        return
                    continue
            try:
                self._sender.send(pending)
            except OSError as exc:
                if self._stop.is_set():
                    return
                log.warning("audit repository unreachable", extra={"reason": f"{self.target.url}: {exc}"})
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)
                continue
            pending, pause = None, 0.5
            if self.on_sent is not None:
                self.on_sent.inc()


def send_now(target: Target, event: Event) -> None:
    """One message, sent before returning (the queue commands); raises OSError when it cannot be."""
    sender = Sender(target)
    try:
        sender.send(syslog(message(event, f"sr2fhir@{socket.gethostname()}", target.site), socket.gethostname()))
    finally:
        sender.close()


def operator() -> Participant:
    """The person (the OS account) running a queue command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return Participant(user, None, True, socket.gethostname())


def application(me: Participant, start: bool) -> Event:
    """Application Activity (PS3.15 A.5.3.1): the gateway starts or stops."""
    return Event(APPLICATION_ACTIVITY, "E", 0, (me,), type_code=APPLICATION_START if start else APPLICATION_STOP)


def receipt(me: Participant, source: str, peer: str | None, study: Study | None, refusal: str | None) -> Event:
    """DICOM Instances Transferred (PS3.15 A.5.3.7), as the receiver: one object stored (outcome
    0) or refused (4, with the reason). A sender pushes (it is the requestor); an archive
    followed is pulled from (the gateway is)."""
    kind, _, who = source.partition(":")
    pulled = kind in ("orthanc", "dicomweb")
    sender = Participant(who or kind, ROLE_SOURCE, not pulled, peer, ae_title=who if kind == "dimse" else None)
    receiver = Participant(me.user_id, ROLE_DESTINATION, pulled, me.address, me.ae_title)
    return Event(INSTANCES_TRANSFERRED, "C", 0 if refusal is None else 4, (sender, receiver), (study,) if study else (), description=refusal)


def export(me: Participant, server: str, studies: tuple[Study, ...], failure: str | None) -> Event:
    """Export (PS3.15 A.5.3.6): a report delivered to the FHIR server (0), or given up, dead-lettered (8, with the reason)."""
    host = urlsplit(server).hostname
    sender = Participant(me.user_id, ROLE_SOURCE, True, me.address, me.ae_title)
    return Event(EXPORT, "R", 0 if failure is None else 8, (sender, Participant(server, ROLE_DESTINATION, False, host)), studies, description=failure)


def queue_operation(who: Participant, deleted: bool, studies: tuple[Study, ...]) -> Event:
    """An operator's (or housekeeping's) queue command: purge is DICOM Instances Deleted (A.5.3.5),
    retry is DICOM Instances Accessed (A.5.3.4) with action Update."""
    return Event(INSTANCES_DELETED if deleted else INSTANCES_ACCESSED, "D" if deleted else "U", 0, (who,), studies)


def studies_of(rows: list[tuple[str | None, str, str]], patient: dict[str, str] | None = None) -> tuple[Study, ...]:
    """(study UID, SOP Class UID, SOP Instance UID) rows grouped by study and class; `patient`: SOP Instance UID -> Patient ID."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for study, cls, sop in rows:
        grouped.setdefault((study or "unknown", cls or "unknown"), []).append(sop)
    out = []
    for (study, cls), sops in grouped.items():
        pids = {patient[s] for s in sops if patient and patient.get(s)}
        out.append(Study(study, cls, tuple(sops), next(iter(pids)) if len(pids) == 1 else None))
    return tuple(out)
