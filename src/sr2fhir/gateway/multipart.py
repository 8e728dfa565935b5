"""multipart/related bodies (RFC 2387), as STOW-RS requests and WADO-RS responses carry DICOM
objects (PS3.18 8.6.1.2)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from typing import BinaryIO, Protocol


class MultipartError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Part:
    content_type: str
    data: bytes


def media_type(header: str) -> tuple[str, dict[str, str]]:
    """The media type of a Content-Type header (lower case) and its parameters."""
    m = Message()
    m["content-type"] = header
    params = {str(k).lower(): str(v) for k, v in (m.get_params() or [])[1:]}
    return m.get_content_type(), params


@dataclass(frozen=True, slots=True)
class Span:
    """Where one part's content lies in a body: `data = body[start:end]`."""

    content_type: str
    start: int
    end: int


class Buffer(Protocol):
    """What the parser reads: bytes, or an mmap of a body spooled to disk (no copy of the whole)."""

    def find(self, sub: bytes, start: int = ..., /) -> int: ...
    def __getitem__(self, key: slice, /) -> bytes: ...
    def __len__(self) -> int: ...


class FileBuffer:
    """A body spooled to a file, read as a Buffer a window at a time: finding the delimiters of a
    body of any size holds one window in memory, and a part is read only when it is taken."""

    WINDOW = 1 << 20

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.size = os.fstat(fh.fileno()).st_size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: slice, /) -> bytes:
        start, stop, _ = key.indices(self.size)
        self.fh.seek(start)
        return self.fh.read(max(0, stop - start))

    def find(self, sub: bytes, start: int = 0, /) -> int:
        pos = max(start, 0)
        while pos < self.size:
            window = self[pos : pos + self.WINDOW + len(sub) - 1]
            found = window.find(sub)
            if found >= 0:
                return pos + found
            pos += self.WINDOW
        return -1


def spans(body: Buffer, content_type: str) -> list[Span]:
    """Where the parts of a multipart body lie; raises MultipartError when it is not one."""
    mtype, params = media_type(content_type)
    if not mtype.startswith("multipart/"):
        raise MultipartError(f"expected a multipart body, got {mtype}")
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("the Content-Type has no boundary")
    dash = b"--" + boundary.encode("latin-1")
    # A delimiter is CRLF "--" boundary; the first may open the body without its CRLF (RFC 2046 5.1.1).
    pos = 0 if body[: len(dash)] == dash else body.find(b"\r\n" + dash) + 2
    if pos < 2 and body[: len(dash)] != dash:
        raise MultipartError("no part, or no closing delimiter")
    out: list[Span] = []
    while True:
        pos += len(dash)
        if body[pos : pos + 2] == b"--":
            return out
        line_end = body.find(b"\r\n", pos)
        head_end = body.find(b"\r\n\r\n", line_end) if line_end >= 0 else -1
        if line_end < 0 or head_end < 0:
            raise MultipartError("a part without headers" if out or body.find(b"\r\n" + dash, pos) >= 0 else "no part, or no closing delimiter")
        headers = BytesHeaderParser().parsebytes(body[line_end + 2 : head_end + 2])
        ptype = headers.get("content-type", params.get("type", "application/octet-stream"))
        start = head_end + 4
        nxt = body.find(b"\r\n" + dash, start)
        if nxt < 0:
            raise MultipartError("no closing delimiter")
        out.append(Span(media_type(ptype)[0], start, nxt))
        pos = nxt + 2


def parse(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart body; raises MultipartError when it is not one."""
    return [Part(s.content_type, body[s.start : s.end]) for s in spans(body, content_type)]


def build(parts: list[Part], boundary: str) -> bytes:
    """A multipart body of these parts (used by tests and the benchmark as a STOW-RS client)."""
    out = bytearray()
    for p in parts:
        out += f"--{boundary}\r\nContent-Type: {p.content_type}\r\n\r\n".encode("latin-1") + p.data + b"\r\n"
    out += f"--{boundary}--\r\n".encode("latin-1")
    return bytes(out)
