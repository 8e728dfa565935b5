"""Is a Part 10 file whole? A byte-level walk of its element structure (PS3.5 7.1, 7.5; PS3.10 7.1).

pydicom reads a file that ends early without complaint when the cut falls between items of an
undefined-length sequence or between elements: the report then looks complete but has lost its
tail. This walk follows every element's length and every undefined-length sequence and item to
its delimiter, and says where the file ends too soon. It reads lengths only, never values, and
skips defined-length values, so it costs a fraction of pydicom's parse.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR

UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"


class Incomplete(Exception):
    """The file ends before its structure does; the message says where (offsets and tags only)."""


@dataclass(slots=True)
class Walk:
    """The state of one walk: the bytes, their encoding, and the element starts seen."""

    data: bytes
    explicit: bool
    little: bool
    boundaries: list[int] | None = None
    depth_limit: int = 200
    top_tags: list[int] = field(default_factory=list)

    def tag_at(self, pos: int) -> int:
        g, e = struct.unpack_from("<HH" if self.little else ">HH", self.data, pos)
        return (g << 16) | e

    def u32(self, pos: int) -> int:
        return int(struct.unpack_from("<I" if self.little else ">I", self.data, pos)[0])

    def u16(self, pos: int) -> int:
        return int(struct.unpack_from("<H" if self.little else ">H", self.data, pos)[0])


def _where(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _elements(w: Walk, pos: int, end: int, depth: int, until_item_end: bool, top: bool = False) -> int:
    """Walk the elements of a dataset from `pos`; return where it ends."""
    if depth > w.depth_limit:
        raise Incomplete("sequences nested too deeply")
    while pos < end:
        if pos + 8 > end:
            raise Incomplete(f"the file ends inside an element header at byte {pos}")
        tag = w.tag_at(pos)
        if tag == ITEM_END and until_item_end:
            return pos + 8
        if tag >> 16 == 0xFFFE:
            raise Incomplete(f"unexpected delimiter {_where(tag)} at byte {pos}")
        if w.boundaries is not None:
            w.boundaries.append(pos)
        if top:
            w.top_tags.append(tag)
        if w.explicit:
            vr = w.data[pos + 4 : pos + 6]
            if vr in _LONG_VRS:
                if pos + 12 > end:
                    raise Incomplete(f"the file ends inside the header of {_where(tag)} at byte {pos}")
                length, pos = w.u32(pos + 8), pos + 12
            else:
                length, pos = w.u16(pos + 6), pos + 8
        else:
            vr = b"SQ" if _dictionary_sq(tag) else b""
            length, pos = w.u32(pos + 4), pos + 8
        if length == UNDEFINED:
            pos = _items(w, pos, end, depth + 1, tag)
        elif pos + length > end:
            raise Incomplete(f"element {_where(tag)} declares {length} bytes, {end - pos} remain")
        elif vr == b"SQ" and w.boundaries is not None:
            _items(w, pos, pos + length, depth + 1, tag, defined=True)
            pos += length
        else:
            pos += length
    if until_item_end:
        raise Incomplete("the file ends inside an item of undefined length (no Item Delimitation Item)")
    return pos


def _items(w: Walk, pos: int, end: int, depth: int, owner: int, defined: bool = False) -> int:
    """Walk the items of a sequence (or encapsulated fragments) from `pos`; return where it ends."""
    while True:
        if pos >= end and defined:
            return pos
        if pos + 8 > end:
            raise Incomplete(f"the file ends inside sequence {_where(owner)} (no Sequence Delimitation Item)")
        tag, length = w.tag_at(pos), w.u32(pos + 4)
        pos += 8
        if tag == SEQUENCE_END and not defined:
            return pos
        if tag != ITEM:
            raise Incomplete(f"sequence {_where(owner)} holds {_where(tag)} where an item belongs")
        if length == UNDEFINED:
            pos = _elements(w, pos, end, depth + 1, until_item_end=True)
        elif pos + length > end:
            raise Incomplete(f"an item of sequence {_where(owner)} declares {length} bytes, {end - pos} remain")
        else:
            if owner != 0x7FE00010:  # encapsulated pixel data fragments are not datasets
                _elements(w, pos, pos + length, depth + 1, until_item_end=False)
            pos += length


def _dictionary_sq(tag: int) -> bool:
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


def walk(data: bytes, *, boundaries: list[int] | None = None) -> Walk:
    """Walk a whole Part 10 file (preamble optional); raise Incomplete where it ends too soon.

    `boundaries`, if given, collects the byte offset of every element (for truncation tests).
    """
    pos = 132 if data[128:132] == b"DICM" else 0
    meta = Walk(data, explicit=True, little=True, boundaries=boundaries)
    ts = EXPLICIT_LE
    while pos + 8 <= len(data) and meta.tag_at(pos) >> 16 == 0x0002:
        if boundaries is not None:
            boundaries.append(pos)
        tag, vr = meta.tag_at(pos), data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            length, pos = meta.u32(pos + 8), pos + 12
        else:
            length, pos = meta.u16(pos + 6), pos + 8
        if pos + length > len(data):
            raise Incomplete(f"file meta element {_where(tag)} declares {length} bytes, {len(data) - pos} remain")
        if tag == 0x00020010:
            ts = data[pos : pos + length].rstrip(b"\x00 ").decode("ascii", "replace")
        pos += length
    body = data[pos:]
    if ts == DEFLATED_LE:
        try:
            d = zlib.decompressobj(-zlib.MAX_WBITS)
            body = d.decompress(body)
            if not d.eof:
                raise Incomplete("the deflated data set ends before its end of stream")
        except zlib.error as exc:
            raise Incomplete(f"the deflated data set is corrupt ({exc})") from None
        base = 0
        w = Walk(body, explicit=True, little=True, boundaries=None)
    else:
        base = pos
        w = Walk(data, explicit=ts != IMPLICIT_LE, little=ts != EXPLICIT_BE, boundaries=boundaries)
        body = data
    _elements(w, base, len(body), 0, until_item_end=False, top=True)
    return w
