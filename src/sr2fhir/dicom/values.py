"""Element values of our :class:`DataSet`, decoded on the hot path (PS3.5 6.2 value representations).

A raw value (bytes from a Part 10 file) is decoded here: ASCII text straight, other text through
pydicom's character set handling (imported only then), binary numbers by their VR and byte
order. A decoded value (a list, from DICOM JSON through pydicom) is normalised the same way, so
that both give one content tree (tests/test_lean_reader.py). Tags are PS3.6's, by keyword.
"""

from __future__ import annotations

import functools
from array import array
from typing import Any

from .content import Code
from .dataset import CorruptElement, DataSet, tag_of as _tag

# Tags read on the hot path (PS3.6).
CODE_VALUE = _tag("CodeValue")
CODING_SCHEME_DESIGNATOR = _tag("CodingSchemeDesignator")
CODING_SCHEME_VERSION = _tag("CodingSchemeVersion")
CODE_MEANING = _tag("CodeMeaning")
LONG_CODE_VALUE = _tag("LongCodeValue")
URN_CODE_VALUE = _tag("URNCodeValue")
REFERENCED_SOP_CLASS_UID = _tag("ReferencedSOPClassUID")
REFERENCED_SOP_INSTANCE_UID = _tag("ReferencedSOPInstanceUID")
REFERENCED_FRAME_NUMBER = _tag("ReferencedFrameNumber")
REFERENCED_SOP_SEQUENCE = _tag("ReferencedSOPSequence")
MEASUREMENT_UNITS_CODE_SEQUENCE = _tag("MeasurementUnitsCodeSequence")
RELATIONSHIP_TYPE = _tag("RelationshipType")
OBSERVATION_DATETIME = _tag("ObservationDateTime")
VALUE_TYPE = _tag("ValueType")
CONCEPT_NAME_CODE_SEQUENCE = _tag("ConceptNameCodeSequence")
DATETIME = _tag("DateTime")
DATE = _tag("Date")
TIME = _tag("Time")
PERSON_NAME = _tag("PersonName")
UID = _tag("UID")
TEMPORAL_RANGE_TYPE = _tag("TemporalRangeType")
REFERENCED_SAMPLE_POSITIONS = _tag("ReferencedSamplePositions")
REFERENCED_TIME_OFFSETS = _tag("ReferencedTimeOffsets")
REFERENCED_DATETIME = _tag("ReferencedDateTime")
TEXT_VALUE = _tag("TextValue")
FLOATING_POINT_VALUE = _tag("FloatingPointValue")
CONCEPT_CODE_SEQUENCE = _tag("ConceptCodeSequence")
OBSERVATION_UID = _tag("ObservationUID")
MEASURED_VALUE_SEQUENCE = _tag("MeasuredValueSequence")
NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE = _tag("NumericValueQualifierCodeSequence")
NUMERIC_VALUE = _tag("NumericValue")
CONTENT_TEMPLATE_SEQUENCE = _tag("ContentTemplateSequence")
CONTENT_SEQUENCE = _tag("ContentSequence")
TEMPLATE_IDENTIFIER = _tag("TemplateIdentifier")
REFERENCED_CONTENT_ITEM_IDENTIFIER = _tag("ReferencedContentItemIdentifier")
REFERENCED_SEGMENT_NUMBER = _tag("ReferencedSegmentNumber")
GRAPHIC_DATA = _tag("GraphicData")
GRAPHIC_TYPE = _tag("GraphicType")
REFERENCED_FRAME_OF_REFERENCE_UID = _tag("ReferencedFrameOfReferenceUID")


# PS3.5 6.2: text VRs whose value is one string (backslash is not a delimiter); the rest split.
_UNSPLIT = frozenset({"LT", "ST", "UT", "UR"})
_BLANK = " \x00\t\r\n\f\v"
# Binary VRs and their array formats (PS3.5 Table 6.2-1).
BINARY_FORMATS = {"FL": "f", "OF": "f", "FD": "d", "OD": "d", "US": "H", "UL": "I", "SS": "h", "SL": "i", "OL": "I", "SV": "q", "UV": "Q", "OV": "Q"}


# PS3.5 6.1.2.3: the VRs whose text is in the Specific Character Set; the rest are the default
# repertoire (read as ISO 8859-1, as pydicom reads them, when a byte is not ASCII).
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})


def _decode(ds: DataSet, vr: str, raw: bytes) -> str:
    """Non-ASCII (or ISO 2022) text in the data set's Specific Character Set, by pydicom's codecs."""
    if vr not in _CHARSET_VRS:
        return raw.decode("latin-1")
    from pydicom.charset import convert_encodings, decode_bytes
    from pydicom.valuerep import TEXT_VR_DELIMS

    encodings = convert_encodings(list(ds.charset) or ["ISO_IR 6"])
    return decode_bytes(raw, encodings, {0x5E, 0x3D} if vr == "PN" else TEXT_VR_DELIMS)


def _first(v: bytes, split: bool) -> str | None:
    """An ASCII value's first value, stripped."""
    if split and b"\\" in v:
        v = v[: v.index(b"\\")]
    return v.decode("ascii").strip(_BLANK) or None


_ascii = functools.lru_cache(maxsize=8192)(_first)
"""_first, cached for the VRs a report repeats (codes, schemes, meanings, relationship and value
types): one string each keeps the tree small. Emptied when a tree is built (clear_caches)."""
_REPEATED = frozenset({"CS", "SH", "LO"})


def clear_caches() -> None:
    """Empty the decoded-text and Code caches: when a content tree is built, and before a
    benchmark measures a cold conversion's memory."""
    _ascii.cache_clear()
    _CODES.clear()


def _strings(ds: DataSet, tag: int) -> list[Any] | None:
    """The values of a text element: a list (empty if none), or None if absent."""
    e = ds.get(tag)
    if e is None:
        return None
    vr, v = e
    if type(v) is bytes:
        try:
            s = v.decode("ascii")
        except UnicodeDecodeError:
            s = _decode(ds, vr, v)
        else:
            if ds.charset and "\x1b" in s:  # ISO 2022 escape sequences are 7-bit too (PS3.5 6.1.2.5)
                s = _decode(ds, vr, v)
        return [s] if vr in _UNSPLIT else s.split("\\")
    if v is None or vr == "SQ":
        return []
    values: list[Any] = v
    return values


def text(ds: DataSet, tag: int) -> str | None:
    """A single text value (the first value of a multi-valued one), stripped; None if empty."""
    e = ds.get(tag)
    if e is None:
        return None
    v = e[1]
    if type(v) is bytes and v.isascii() and not (ds.charset and b"\x1b" in v):  # the hot path
        if e[0] in _REPEATED:
            return _ascii(v, True)
        return _first(v, e[0] not in _UNSPLIT)
    values = _strings(ds, tag)
    if not values:
        return None
    s = str(values[0]).strip(_BLANK)
    return s or None


def multi_text(ds: DataSet, tag: int) -> list[str]:
    """All non-empty values of a multi-valued string element (IS, DT ...), stripped."""
    values = _strings(ds, tag) or []
    return [s for s in (str(x).strip(_BLANK) for x in values) if s]


def numbers(ds: DataSet, tag: int, fmt: str) -> list[float] | list[int]:
    """Numbers of a binary element by its VR (FL, FD, US, UL ...; `fmt` for UN, OB, OW), of a text
    one (IS, DS, or a writer's other string VR), or of decoded values; floats for `fmt` 'f' or 'd',
    else ints."""
    e = ds.get(tag)
    if e is None:
        return []
    vr, v = e
    real = fmt in "fd"
    if type(v) is bytes and (vr in BINARY_FORMATS or vr in ("UN", "OB", "OW")):
        a = array(BINARY_FORMATS.get(vr, fmt))
        a.frombytes(v[: len(v) - len(v) % a.itemsize])
        if not ds.little:
            a.byteswap()
        return [float(x) for x in a] if real else [int(x) for x in a]
    values = multi_text(ds, tag) if type(v) is bytes else (v or [])
    return [float(x) if real else int(float(x)) for x in values]


def sequence(ds: DataSet, tag: int) -> list[DataSet]:
    """A sequence's items; an element there that is not a sequence is corrupt data."""
    e = ds.get(tag)
    if e is None:
        return []
    vr, v = e
    if vr != "SQ":
        raise CorruptElement(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) is not a sequence")
    items: list[DataSet] = v
    return items


def code(ds: DataSet, tag: int) -> Code | None:
    """The first item of a Code Sequence (Code Value, Long Code Value or URN Code Value)."""
    seq = sequence(ds, tag)
    if not seq:
        return None
    item = seq[0]
    # A report names the same concept thousands of times, and the reader shares the elements of
    # repeated values: the item's elements are the key of one Code object for each distinct code.
    key = (item.get(CODE_VALUE), item.get(CODING_SCHEME_DESIGNATOR), item.get(CODE_MEANING), item.get(CODING_SCHEME_VERSION),
           item.get(LONG_CODE_VALUE), item.get(URN_CODE_VALUE), item.charset)
    try:
        return _CODES[key]
    except KeyError:
        pass
    except TypeError:  # decoded values (lists) cannot be a key
        return _code_of(item)
    if len(_CODES) >= 65536:
        _CODES.clear()
    found = _CODES[key] = _code_of(item)
    return found


def _code_of(item: DataSet) -> Code | None:
    value = text(item, CODE_VALUE) or text(item, LONG_CODE_VALUE) or text(item, URN_CODE_VALUE)
    scheme = text(item, CODING_SCHEME_DESIGNATOR)
    if value is None and scheme is None:
        return None
    return Code(value or "", scheme or "", text(item, CODE_MEANING) or "", text(item, CODING_SCHEME_VERSION))


_CODES: dict[tuple[Any, ...], Code | None] = {}
"""One Code object for each distinct code (Code is frozen): the same concept is named thousands of times."""


def ints(ds: DataSet, tag: int) -> list[int]:
    """IS / US / UL values, whatever the VR the writer used."""
    return [int(x) for x in numbers(ds, tag, "i")]
