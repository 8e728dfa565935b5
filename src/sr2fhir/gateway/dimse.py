"""DICOM intake: a Storage SCP for the SR Storage SOP Classes, and Verification (C-ECHO), with
pynetdicom (PS3.4 Annex B; PS3.7 9.1.1). The object is taken as the peer encoded it (never decoded
and re-encoded), stored, and only then answered Success.

Who may associate, and for how long (docs/gateway.md, "Security"): the calling AE title, and
where an `--allowed-ae` entry names one, the peer's address (AE@host); at most `per_peer`
associations from one address and `maximum` in all (A-ASSOCIATE-RJ, transient, local limit
exceeded, PS3.8 9.3.4); an association that stores nothing for `idle` seconds (C-ECHO does not
count) is aborted; a connection that stalls for `idle` seconds inside a PDU, or in the TLS
handshake, is closed; a PDU longer than `PDU_CEILING`, or a command or object longer than
`max_object`, ends the association as soon as its header declares it (gateway/meter.py, D-50)."""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from typing import Any, Callable

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from ..dicom.dictionary import SR_STORAGE, uid_ok
from ..dicom.identify import Identity
from .intake import STATUS, Intake
from .meter import MeteredSocket, MeteredSSLSocket, PduMeter, Watch
from .peers import Peers
from .tls import Tls

log = logging.getLogger("sr2fhir.gateway")

TRANSFER_SYNTAXES = ALL_TRANSFER_SYNTAXES[:4]
"""Implicit and Explicit VR Little Endian, Deflated, Explicit VR Big Endian: an SR is never
pixel data, so the compressed syntaxes have nothing to offer it."""

REJECT_LIMIT = (0x02, 0x03, 0x02)
"""A-ASSOCIATE-RJ: rejected transient, by the service provider (presentation), local limit exceeded."""
REJECT_CALLING = (0x01, 0x01, 0x03)
"""A-ASSOCIATE-RJ: rejected permanent, by the service user, calling AE title not recognised."""

PDU_CEILING = 1 << 20
"""The longest PDU read. The gateway offers pynetdicom's maximum PDU length (16,382 bytes,
PS3.8 D.1) for P-DATA; the slack admits peers that send longer ones, and A-ASSOCIATE-RQs with
many presentation contexts."""


class MeteredServer(ThreadedAssociationServer):
    """pynetdicom's association server, with every accepted connection's bytes metered
    (`Watch`), a timeout on each read, and the TLS handshake done in the connection's own
    thread: pynetdicom's `get_request` runs it in the one thread that accepts connections, with
    no timeout, so one peer that connects and says nothing would stop every other."""

    def __init__(self, *args: Any, limits: Peers, refused: Callable[[str, str], None], **kwargs: Any) -> None:
        self.limits = limits
        self.refused = refused
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[Any, tuple[str, int]]:
        client: Any
        client, address = self.socket.accept()  # type: ignore[union-attr]
        client.settimeout(self.limits.idle)
        if self.ssl_context:
            client = self.ssl_context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        else:
            client = MeteredSocket(client.family, client.type, client.proto, fileno=client.detach())
            client.settimeout(self.limits.idle)
        peer = str(address[0])
        client.watch = Watch(PduMeter(PDU_CEILING, self.limits.max_object), lambda reason: self.refused(peer, reason))
        return client, address

    def shutdown(self) -> None:
        """Stop serving and close the listening socket (pynetdicom's own also unlists the server
        from the AE, which lists only those `start_server` made)."""
        socketserver.BaseServer.shutdown(self)
        self.server_close()


class StorageSCP:
    def __init__(self, intake: Intake, ae_title: str, peers: Peers = Peers(), tls: Tls | None = None) -> None:
        self.intake = intake
        self.tls = tls
        self.peers = peers
        self._hosts = peers.hosts()
        self.ae = AE(ae_title=ae_title)
        self.ae.maximum_associations = peers.maximum
        self.ae.network_timeout = peers.idle
        self.ae.dimse_timeout = 120
        self.ae.require_called_aet = True
        if peers.allowed:
            self.ae.require_calling_aet = peers.titles()
        for uid in SR_STORAGE:
            self.ae.add_supported_context(uid, TRANSFER_SYNTAXES)
        self.ae.add_supported_context(Verification, TRANSFER_SYNTAXES)
        self._server: Any = None
        self._last_store: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def start(self, host: str, port: int) -> None:
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._store), (evt.EVT_C_ECHO, lambda event: 0x0000), (evt.EVT_REJECTED, self._rejected),
            (evt.EVT_REQUESTED, self._requested), (evt.EVT_ESTABLISHED, self._established),
        ]
        context = self.tls.server_context() if self.tls is not None else None
        if context is not None:
            context.sslsocket_class = MeteredSSLSocket
        self._server = self.ae.make_server((host, port), evt_handlers=handlers, ssl_context=context, server_class=MeteredServer,
                                           limits=self.peers, refused=self._too_much)
        threading.Thread(target=self._server.serve_forever, name="dimse-accept", daemon=True).start()
        self._stop.clear()
        self._reaper = threading.Thread(target=self._reap, name="dimse-idle", daemon=True)
        self._reaper.start()

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._reaper is not None:
            self._reaper.join(10)

    def _requested(self, event: Any) -> None:
        """An A-ASSOCIATE-RQ: refuse an AE title calling from a host it is not bound to, and a peer
        past its share of associations, before anything is negotiated."""
        assoc = event.assoc
        address, calling = assoc.requestor.address, str(assoc.requestor.primitive.calling_ae_title).strip()
        bound = self._hosts.get(calling)
        if bound is not None and address not in bound:
            self._reject(assoc, REJECT_CALLING, f"AE title {calling} is not allowed from this address")
            return
        same = [a for a in self.ae.active_associations if a.is_acceptor and a is not assoc and a.requestor.address == address]
        if len(same) >= self.peers.per_peer:
            self._reject(assoc, REJECT_LIMIT, f"more than {self.peers.per_peer} associations from one peer")

    def _reject(self, assoc: Any, rsd: tuple[int, int, int], reason: str) -> None:
        assoc.acse.send_reject(*rsd)
        assoc.kill()  # as pynetdicom's own rejections do
        self.intake.metrics.refused.labels("dimse", "association-rejected").inc()
        log.warning("association rejected", extra={"source": "dimse", "peer": assoc.requestor.address, "reason": reason})

    def _established(self, event: Any) -> None:
        with self._lock:
            self._last_store[id(event.assoc)] = time.monotonic()

    def _reap(self) -> None:
        """Abort associations that stored nothing for `idle` seconds (a peer keeping them alive with C-ECHO)."""
        every = min(5.0, max(0.2, self.peers.idle / 4))
        while not self._stop.wait(every):
            now = time.monotonic()
            for assoc in list(self.ae.active_associations):
                with self._lock:
                    last = self._last_store.get(id(assoc))
                if assoc.is_acceptor and assoc.is_established and last is not None and now - last > self.peers.idle:
                    log.info("association aborted", extra={"source": "dimse", "peer": assoc.requestor.address,
                                                           "reason": f"nothing stored for {self.peers.idle:g} s"})
                    assoc.abort(block=False)
            with self._lock:
                alive = {id(a) for a in self.ae.active_associations}
                for key in [k for k in self._last_store if k not in alive]:
                    del self._last_store[key]

    def _too_much(self, peer: str, reason: str) -> None:
        self.intake.metrics.refused.labels("dimse", "too-large").inc()
        log.warning("connection closed", extra={"source": "dimse", "peer": peer, "reason": f"the peer sent {reason}"})

    def _rejected(self, event: Any) -> None:
        self.intake.metrics.refused.labels("dimse", "association-rejected").inc()
        log.warning("association rejected", extra={"source": "dimse", "peer": event.assoc.requestor.address})

    def _store(self, event: Any) -> int:
        with self._lock:
            self._last_store[id(event.assoc)] = time.monotonic()
        req = event.request
        calling = event.assoc.requestor.ae_title
        source = f"dimse:{calling}"
        claimed = Identity(str(req.AffectedSOPClassUID), str(req.AffectedSOPInstanceUID), None, None)
        try:
            data = event.encoded_dataset(include_meta=True)
        except Exception:  # pynetdicom could not encode the file meta from the command
            return STATUS["cannot-understand"]
        # The command's UIDs are not validated by anyone before us: only a valid one is named.
        uid = claimed.sop_instance_uid if uid_ok(claimed.sop_instance_uid) else "(invalid Affected SOP Instance UID)"
        outcome = self.intake.accept(data, f"C-STORE {uid} from {calling}", source, claimed, peer=event.assoc.requestor.address)
        return 0x0000 if outcome.refused is None else STATUS[outcome.refused]
