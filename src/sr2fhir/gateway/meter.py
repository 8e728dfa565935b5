"""How much one DICOM peer may send at a time, counted on the wire before pynetdicom keeps it.

pynetdicom reads a whole PDU into memory, however long its PDU Length claims it is, and
assembles a whole DIMSE message in memory before any event handler sees it. A `PduMeter` reads
the same byte stream as it arrives (PS3.8 9.3.1 PDU header; 9.3.5 P-DATA-TF and its
Presentation Data Value items, E.2 Message Control Header) and refuses, as soon as the header
that declares it arrives, a PDU longer than `max_pdu` or a message (a command or a data set,
all its fragments) longer than `max_message`. `Metered` sockets raise `StreamRefused`, an
OSError, which pynetdicom treats as a lost connection: the association ends (D-50).
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable

P_DATA_TF = 0x04
LAST_FRAGMENT = 0x02
PDU_HEADER = struct.Struct(">BxL")  # PDU-type, reserved, PDU-length
PDV_HEADER = struct.Struct(">LBB")  # Item-length, Presentation-context-ID, Message Control Header


class StreamRefused(OSError):
    """The peer sent, or declared, more than a `PduMeter` allows."""


class PduMeter:
    """Follows one association's incoming byte stream: `feed` every chunk in order."""

    def __init__(self, max_pdu: int, max_message: int) -> None:
        self.max_pdu = max_pdu
        self.max_message = max_message
        self.message = 0  # bytes of the message in progress, as its PDV items declare them
        self._head = bytearray()  # a PDU or PDV header not yet complete
        self._skip = 0  # body bytes of a PDU other than P-DATA-TF still to pass
        self._pdu_left = 0  # body bytes of the current P-DATA-TF still to come
        self._pdv_left = 0  # data bytes of the current PDV item still to come
        self._last = False  # the current PDV item is the last fragment of its message
        self._in_pdv = False  # the header being read is a PDV item's, not a PDU's

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view, i, n = memoryview(data), 0, len(data)
        while i < n:
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
            elif self._pdv_left:
                step = min(self._pdv_left, n - i)
                self._pdv_left -= step
                self._pdu_left -= step
                i += step
                if not self._pdv_left and self._last:
                    self.message = 0
            else:
                if not self._head:
                    self._in_pdv = self._pdu_left > 0
                size = PDV_HEADER.size if self._in_pdv else PDU_HEADER.size
                take = view[i : i + min(size - len(self._head), n - i)]
                self._head += take
                i += len(take)
                if self._in_pdv:
                    self._pdu_left -= len(take)
                if len(self._head) == size:
                    head = bytes(self._head)
                    self._head.clear()
                    self._pdv(head) if self._in_pdv else self._pdu(head)

    def _pdu(self, head: bytes) -> None:
        kind, length = PDU_HEADER.unpack(head)
        if length > self.max_pdu:
            raise StreamRefused(f"a PDU of {length} bytes, more than the {self.max_pdu} allowed")
        if kind == P_DATA_TF:
            self._pdu_left = length
        else:
            self._skip = length

    def _pdv(self, head: bytes) -> None:
        length, _context, control = PDV_HEADER.unpack(head)
        if length < 2 or self._pdu_left < length - 2:
            raise StreamRefused("a malformed P-DATA-TF: a PDV item longer than its PDU")
        self.message += length - 2
        if self.message > self.max_message:
            raise StreamRefused(f"a DIMSE message of more than {self.max_message >> 20} MiB")
        self._pdv_left = length - 2
        self._last = bool(control & LAST_FRAGMENT)
        if not self._pdv_left and self._last:
            self.message = 0


class Watch:
    """One connection's meter and what to do when it refuses (log, count)."""

    def __init__(self, meter: PduMeter, refused: Callable[[str], None]) -> None:
        self.meter = meter
        self.refused = refused

    def fed(self, data: bytes) -> bytes:
        try:
            self.meter.feed(data)
        except StreamRefused as exc:
            self.refused(str(exc))
            raise
        return data


class MeteredSocket(socket.socket):
    """A TCP socket whose received bytes pass through its `watch`."""

    watch: Watch | None = None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        return self.watch.fed(data) if self.watch is not None else data


class MeteredSSLSocket(ssl.SSLSocket):
    """A TLS socket whose received (decrypted) bytes pass through its `watch`: set as an
    SSLContext's `sslsocket_class`."""

    watch: Watch | None = None

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        data = super().recv(buflen, flags)
        return self.watch.fed(data) if self.watch is not None else data
