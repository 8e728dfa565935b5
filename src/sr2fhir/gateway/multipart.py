"""multipart/related bodies (RFC 2387), as STOW-RS requests and WADO-RS responses carry DICOM
objects (PS3.18 8.6.1.2)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser


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


def parse(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart body; raises MultipartError when it is not one."""
    mtype, params = media_type(content_type)
    if not mtype.startswith("multipart/"):
        raise MultipartError(f"expected a multipart body, got {mtype}")
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("the Content-Type has no boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 3 and not (len(pieces) == 2 and pieces[1].startswith(b"--")):
        raise MultipartError("no part, or no closing delimiter")
    parts: list[Part] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            return parts
        line_end = piece.find(b"\r\n")
        head_end = piece.find(b"\r\n\r\n", line_end)
        if line_end < 0 or head_end < 0:
            raise MultipartError("a part without headers")
        headers = BytesHeaderParser().parsebytes(piece[line_end + 2 : head_end + 2])
        ptype = headers.get("content-type", params.get("type", "application/octet-stream"))
        parts.append(Part(media_type(ptype)[0], piece[head_end + 4 :]))
    raise MultipartError("no closing delimiter")


def build(parts: list[Part], boundary: str) -> bytes:
    """A multipart body of these parts (used by tests and the benchmark as a STOW-RS client)."""
    out = bytearray()
    for p in parts:
        out += f"--{boundary}\r\nContent-Type: {p.content_type}\r\n\r\n".encode("latin-1") + p.data + b"\r\n"
    out += f"--{boundary}--\r\n".encode("latin-1")
    return bytes(out)
