"""Part 10 files parsed straight from their bytes (PS3.10 7.1; PS3.5 7.1 data elements, 7.5 nesting).

The lean reader of issue 16: one pass over the bytes builds a :class:`DataSet` of raw element
values, in the four transfer syntaxes an SR travels in (Implicit VR Little Endian, Explicit VR
Little and Big Endian, Deflated Explicit VR Little Endian; any other is read as Explicit VR
Little Endian, as pydicom does), with defined and undefined lengths. Values are not decoded
here; `values.py` decodes the few the tree builder reads. pydicom reads the same bytes in the
tests, as the oracle (tests/test_lean_reader.py).

The pass also says whether the file is whole: pydicom reads a file that ends early without
complaint when the cut falls between items of an undefined-length sequence or between elements,
so that the report looks complete but has lost its tail. Every element's length and every
undefined-length sequence and item is followed to its delimiter, and :class:`Incomplete` says
where the file ends too soon (offsets and tags only, never values).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from ..errors import Sr2fhirError
from .dataset import DataSet, dictionary_vr

UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = 0x00080005
TRANSFER_SYNTAX_UID = 0x00020010
IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"

# PS3.5 Table 7.1-1: the VRs with a 2-byte reserved field and a 32-bit length.
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_VRS = frozenset({"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"}) | _LONG_VRS
_EXPLICIT = {True: struct.Struct("<HH2sH"), False: struct.Struct(">HH2sH")}
_IMPLICIT = {True: struct.Struct("<HHI"), False: struct.Struct(">HHI")}
_U32 = {True: struct.Struct("<I"), False: struct.Struct(">I")}
_VR_TEXT = {vr.encode("ascii"): vr for vr in _VRS}
# The VRs of the values an SR repeats (code values, schemes and meanings, relationship and value
# types): each distinct (VR, value) is kept once. UIDs and numbers, mostly distinct, are not.
_SHARED_VRS = frozenset({"CS", "SH", "LO"})  # values.py caches their text alike (_REPEATED)


class Incomplete(Sr2fhirError):
    """The file ends before its structure does; the message says where (offsets and tags only)."""


class Corrupt(Sr2fhirError):
    """An element header no writer could have meant (an invalid VR); the message says where."""


class TooLarge(Sr2fhirError):
    """A Deflated data set that would inflate beyond the limit (a deflate bomb)."""


MAX_INFLATED = 256 * 2**20
"""The most a Deflated data set (PS3.5 A.5) may inflate to. Deflate reaches about 1,000:1, so a
64 MiB object could ask for 64 GiB; the largest real SR seen is 1.2 MB, and 250,000 content items
(--max-items' default) take about 70 MB."""


def _where(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@dataclass(slots=True)
class Parsed:
    """A parsed Part 10 file: its data set, the tags of its top level, and its File Meta
    Information (group 0002, PS3.10 7.1)."""

    dataset: DataSet
    top_tags: list[int] = field(default_factory=list)
    meta: DataSet = field(default_factory=DataSet)


@dataclass(slots=True)
class _Reader:
    """One pass over a data set's bytes (`data`: the whole file, or the inflated Deflated body)."""

    data: bytes
    little: bool
    boundaries: list[int] | None
    depth_limit: int = 200
    stop_after: int = 0xFFFFFFFF
    """The last top-level tag to read: the reading ends before the first one above it."""
    shared: dict[bytes, tuple[str, bytes]] = field(default_factory=dict)

    def elements(self, ds: DataSet, pos: int, end: int, depth: int, explicit: bool, until_item_end: bool, top: list[int] | None = None) -> int:
        """Read the elements of one data set from `pos` into `ds`; return where it ends."""
        if depth > self.depth_limit:
            raise Incomplete("sequences nested too deeply")
        if not explicit:
            return self.implicit_elements(ds, pos, end, depth, until_item_end, top)
        # Explicit VR, the common case, kept in one loop: most elements are short text.
        data, boundaries, shared = self.data, self.boundaries, self.shared
        unpack = _EXPLICIT[self.little].unpack_from
        u32 = _U32[self.little].unpack_from
        while pos < end:
            if pos + 8 > end:
                raise Incomplete(f"the file ends inside an element header at byte {pos}")
            group, elem, vr_bytes, length = unpack(data, pos)
            tag = group << 16 | elem
            if group == 0xFFFE:
                return _item_end(tag, pos, until_item_end)
            if top is not None:
                if tag > self.stop_after:
                    return pos
                top.append(tag)
            if boundaries is not None:
                boundaries.append(pos)
            vr = _VR_TEXT.get(vr_bytes)
            if vr is None:
                raise Corrupt(f"element {_where(tag)} at byte {pos} has an invalid VR")
            if vr in _LONG_VRS:
                if vr == "SQ" and pos + 12 <= end:  # the commonest long element, read here
                    length = u32(data, pos + 8)[0]
                    if length == UNDEFINED or pos + 12 + length <= end:
                        items: list[DataSet] = []
                        ds[tag] = ("SQ", items)
                        if length == UNDEFINED:
                            pos = self.items(items, ds, pos + 12, end, depth + 1, tag, True, defined=False)
                        else:
                            pos = self.items(items, ds, pos + 12, pos + 12 + length, depth + 1, tag, True, defined=True)
                        continue
                pos = self.long_element(ds, tag, vr, pos, end, depth)
                continue
            pos += 8
            if pos + length > end:
                raise Incomplete(f"element {_where(tag)} declares {length} bytes, {end - pos} remain")
            value = data[pos : pos + length]
            if vr in _SHARED_VRS:  # one object for each repeated code, meaning, relationship ...
                element = shared.get(value)
                if element is None or element[0] != vr:
                    element = shared[value] = (vr, value)
                ds[tag] = element
                if tag == SPECIFIC_CHARACTER_SET:
                    ds.charset = tuple(t.strip(" \x00") for t in value.decode("latin-1").split("\\"))
            else:
                ds[tag] = (vr, value)
            pos += length
        if until_item_end:
            raise Incomplete("the file ends inside an item of undefined length (no Item Delimitation Item)")
        return pos

    def long_element(self, ds: DataSet, tag: int, vr: str, pos: int, end: int, depth: int) -> int:
        """An explicit VR element with a 32-bit length (PS3.5 Table 7.1-1): sequences among them."""
        if pos + 12 > end:
            raise Incomplete(f"the file ends inside the header of {_where(tag)} at byte {pos}")
        length = _U32[self.little].unpack_from(self.data, pos + 8)[0]
        explicit = True
        if vr == "UN":  # PS3.5 6.2.2: a sequence of unknown VR is Implicit VR Little Endian inside
            known = dictionary_vr(tag)
            if known == "SQ" or (known is not None and length != UNDEFINED):
                vr = known
            explicit = False
        return self.value(ds, tag, vr, pos + 12, end, length, depth, explicit)

    def implicit_elements(self, ds: DataSet, pos: int, end: int, depth: int, until_item_end: bool, top: list[int] | None) -> int:
        """The elements of an Implicit VR data set: the VR is the dictionary's (PS3.5 7.1.3)."""
        data, boundaries = self.data, self.boundaries
        unpack = _IMPLICIT[self.little].unpack_from
        while pos < end:
            if pos + 8 > end:
                raise Incomplete(f"the file ends inside an element header at byte {pos}")
            group, elem, length = unpack(data, pos)
            tag = group << 16 | elem
            if group == 0xFFFE:
                return _item_end(tag, pos, until_item_end)
            if top is not None:
                if tag > self.stop_after:
                    return pos
                top.append(tag)
            if boundaries is not None:
                boundaries.append(pos)
            pos = self.value(ds, tag, dictionary_vr(tag) or "UN", pos + 8, end, length, depth, False)
        if until_item_end:
            raise Incomplete("the file ends inside an item of undefined length (no Item Delimitation Item)")
        return pos

    def value(self, ds: DataSet, tag: int, vr: str, pos: int, end: int, length: int, depth: int, explicit: bool) -> int:
        """Store one element's value (a sequence's items read in `explicit` VR); return where it ends."""
        if length == UNDEFINED:
            if tag == PIXEL_DATA:
                ds[tag] = (vr, None)
                return self.fragments(pos, end, tag)
            items: list[DataSet] = []
            ds[tag] = ("SQ", items)
            return self.items(items, ds, pos, end, depth + 1, tag, explicit, defined=False)
        if pos + length > end:
            raise Incomplete(f"element {_where(tag)} declares {length} bytes, {end - pos} remain")
        if vr == "SQ":
            items = []
            ds[tag] = ("SQ", items)
            self.items(items, ds, pos, pos + length, depth + 1, tag, explicit, defined=True)
        else:
            value = self.data[pos : pos + length]
            ds[tag] = (vr, value)
            if tag == SPECIFIC_CHARACTER_SET:
                ds.charset = tuple(t.strip(" \x00") for t in value.decode("latin-1").split("\\"))
        return pos + length

    def items(self, out: list[DataSet], parent: DataSet, pos: int, end: int, depth: int, owner: int, explicit: bool, defined: bool) -> int:
        """Read the items of a sequence from `pos` into `out`; return where the sequence ends."""
        data = self.data
        tag_struct = _IMPLICIT[self.little]
        while True:
            if pos >= end and defined:
                return pos
            if pos + 8 > end:
                raise Incomplete(f"the file ends inside sequence {_where(owner)} (no Sequence Delimitation Item)")
            group, elem, length = tag_struct.unpack_from(data, pos)
            tag = group << 16 | elem
            pos += 8
            if tag == SEQUENCE_END and not defined:
                return pos
            if tag != ITEM:
                raise Incomplete(f"sequence {_where(owner)} holds {_where(tag)} where an item belongs")
            item = DataSet()
            if parent.charset:
                item.charset = parent.charset
            if not self.little:
                item.little = False
            out.append(item)
            if length == UNDEFINED:
                pos = self.elements(item, pos, end, depth + 1, explicit, until_item_end=True)
            elif pos + length > end:
                raise Incomplete(f"an item of sequence {_where(owner)} declares {length} bytes, {end - pos} remain")
            else:
                self.elements(item, pos, pos + length, depth + 1, explicit, until_item_end=False)
                pos += length

    def fragments(self, pos: int, end: int, owner: int) -> int:
        """Skip encapsulated Pixel Data fragments (PS3.5 A.4): they are not data sets."""
        tag_struct = _IMPLICIT[self.little]
        while True:
            if pos + 8 > end:
                raise Incomplete(f"the file ends inside sequence {_where(owner)} (no Sequence Delimitation Item)")
            group, elem, length = tag_struct.unpack_from(self.data, pos)
            tag = group << 16 | elem
            pos += 8
            if tag == SEQUENCE_END:
                return pos
            if tag != ITEM:
                raise Incomplete(f"sequence {_where(owner)} holds {_where(tag)} where an item belongs")
            if length == UNDEFINED or pos + length > end:
                raise Incomplete(f"an item of sequence {_where(owner)} declares {length} bytes, {end - pos} remain")
            pos += length


def _item_end(tag: int, pos: int, until_item_end: bool) -> int:
    """Where a data set ends at a delimiter: an item of undefined length at its Item Delimitation Item."""
    if tag == ITEM_END and until_item_end:
        return pos + 8
    raise Incomplete(f"unexpected delimiter {_where(tag)} at byte {pos}")


def _guess_explicit(data: bytes, pos: int) -> bool:
    """No Transfer Syntax UID: explicit VR if the first element has a valid VR (as pydicom guesses)."""
    return data[pos + 4 : pos + 6] in _VR_TEXT


def parse(data: bytes, *, boundaries: list[int] | None = None, max_inflated: int = MAX_INFLATED, stop_after: int = 0xFFFFFFFF) -> Parsed:
    """Parse a whole Part 10 file (preamble optional); raise Incomplete where it ends too soon,
    TooLarge where a Deflated data set would inflate beyond `max_inflated` bytes.

    `boundaries`, if given, collects the byte offset of every element (for truncation tests).
    `stop_after`: the last top-level tag wanted; the reading ends before the first one above it
    (the gateway's identification reads the header alone, as far as the Predecessor Documents).
    """
    meta = DataSet()
    pos, ts = _file_meta(data, boundaries, meta)
    if ts == DEFLATED_LE:
        body = _inflate(data[pos:], max_inflated)
        r = _Reader(body, little=True, boundaries=None, stop_after=stop_after)
        start, explicit = 0, True
    else:
        little = ts != EXPLICIT_BE
        explicit = ts != IMPLICIT_LE if ts is not None else _guess_explicit(data, pos)
        r = _Reader(data, little=little, boundaries=boundaries, stop_after=stop_after)
        start = pos
    ds = DataSet()
    if not r.little:
        ds.little = False
    top: list[int] = []
    r.elements(ds, start, len(r.data), 0, explicit, until_item_end=False, top=top)
    return Parsed(ds, top, meta)


def _inflate(deflated: bytes, max_inflated: int) -> bytes:
    """The inflated data set. Its size is counted first in 1 MiB pieces that are thrown away, so
    that a deflate bomb is refused having held next to nothing (deflate reaches about 1,000:1)."""
    d, size, rest = zlib.decompressobj(-zlib.MAX_WBITS), 0, deflated
    try:
        while not d.eof:
            piece = d.decompress(rest, 2**20)
            rest = d.unconsumed_tail
            if not piece and not rest:
                break
            size += len(piece)
            if size > max_inflated:
                raise TooLarge(f"the deflated data set inflates to more than {max_inflated // 2**20} MiB")
        if not d.eof:
            raise Incomplete("the deflated data set ends before its end of stream")
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(deflated)
    except zlib.error as exc:
        raise Incomplete(f"the deflated data set is corrupt ({exc})") from None


def _file_meta(data: bytes, boundaries: list[int] | None, meta: DataSet) -> tuple[int, str | None]:
    """Where the data set starts, after the File Meta Information (group 0002), and the Transfer
    Syntax UID; the meta elements go into `meta`."""
    pos = 132 if data[128:132] == b"DICM" else 0
    ts: str | None = None
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
        if boundaries is not None:
            boundaries.append(pos)
        group, elem, vr_bytes, length = _EXPLICIT[True].unpack_from(data, pos)
        tag = group << 16 | elem
        vr = _VR_TEXT.get(vr_bytes)
        if vr is None:
            raise Corrupt(f"file meta element {_where(tag)} at byte {pos} has an invalid VR")
        if vr in _LONG_VRS:
            if pos + 12 > len(data):
                raise Incomplete(f"the file ends inside the header of {_where(tag)} at byte {pos}")
            length, pos = _U32[True].unpack_from(data, pos + 8)[0], pos + 12
        else:
            pos += 8
        if pos + length > len(data):
            raise Incomplete(f"file meta element {_where(tag)} declares {length} bytes, {len(data) - pos} remain")
        meta[tag] = (vr, data[pos : pos + length])
        if tag == TRANSFER_SYNTAX_UID:
            ts = data[pos : pos + length].rstrip(b"\x00 ").decode("ascii", "replace")
        pos += length
    return pos, ts
