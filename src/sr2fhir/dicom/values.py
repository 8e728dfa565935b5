"""Raw element values of a pydicom dataset, decoded on the hot path (PS3.5 6.2 value representations).

Leaf values are read from pydicom's raw data elements (`Dataset.get_item(..., keep_deferred=True)`)
and decoded here (ASCII text, little-endian binary) instead of through pydicom's per-element
conversion; an element that is not plain ASCII / little endian goes through pydicom, which
handles character sets and byte orders. Sequences are always parsed by pydicom. Tags come from
pydicom's data dictionary by keyword.
"""

from __future__ import annotations

from array import array
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from .content import Code


def _tag(keyword: str) -> BaseTag:
    """The tag of a PS3.6 keyword, from pydicom's data dictionary."""
    t = tag_for_keyword(keyword)
    if t is None:
        raise KeyError(keyword)
    return BaseTag(t)


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


def _converted(ds: Dataset, tag: BaseTag) -> Any:
    return ds[tag].value


def text(ds: Dataset, tag: BaseTag) -> str | None:
    """A single text value (first value of a multi-valued one), stripped; None if empty."""
    e: Any = ds.get_item(tag, keep_deferred=True)
    if e is None:
        return None
    v = e.value
    if type(v) is bytes:
        try:
            s = v.decode("ascii")
        except UnicodeDecodeError:
            v = _converted(ds, tag)  # pydicom applies the Specific Character Set
        else:
            s = s.strip(" \x00")
            return s or None
    if v is None:
        return None
    if isinstance(v, (list, MultiValue)):
        v = v[0] if len(v) else None
        if v is None:
            return None
    s = str(v).strip()
    return s or None


def multi_text(ds: Dataset, tag: BaseTag) -> list[str]:
    """All values of a multi-valued string element (IS, DT ...)."""
    e: Any = ds.get_item(tag, keep_deferred=True)
    if e is None:
        return []
    v = e.value
    if type(v) is bytes:
        try:
            return [x.strip(" \x00") for x in v.decode("ascii").split("\\") if x.strip(" \x00")]
        except UnicodeDecodeError:
            v = _converted(ds, tag)
    if v is None or v == "":
        return []
    if isinstance(v, (list, MultiValue, tuple)):
        return [str(x).strip() for x in v]
    return [str(v).strip()]


def numbers(ds: Dataset, tag: BaseTag, fmt: str) -> list[float] | list[int]:
    """Binary numbers (FL 'f', FD 'd', US 'H', UL 'I') of a raw little-endian element, else via pydicom."""
    e: Any = ds.get_item(tag, keep_deferred=True)
    if e is None:
        return []
    v = e.value
    if type(v) is bytes and getattr(e, "is_little_endian", True) and getattr(e, "VR", None) not in ("IS", "DS"):
        a = array(fmt)
        size = a.itemsize
        a.frombytes(v[: len(v) - len(v) % size])
        return a.tolist()
    if type(v) is bytes:
        v = _converted(ds, tag)
    if v is None or v == "":
        return []
    if isinstance(v, (list, MultiValue, tuple)):
        return [float(x) if fmt in "fd" else int(x) for x in v]
    try:
        return [float(x) if fmt in "fd" else int(x) for x in v]  # numpy array
    except TypeError:
        return [float(v) if fmt in "fd" else int(v)]


def sequence(ds: Dataset, tag: BaseTag) -> Any:
    """A sequence's items (pydicom parses it, once)."""
    e: Any = ds.get_item(tag, keep_deferred=True)
    if e is None:
        return ()
    v = e.value if not type(e.value) is bytes else _converted(ds, tag)
    return v or ()


def code(ds: Dataset, tag: BaseTag) -> Code | None:
    """The first item of a Code Sequence (Code Value, Long Code Value or URN Code Value)."""
    seq = sequence(ds, tag)
    if not seq:
        return None
    item = seq[0]
    value = text(item, CODE_VALUE) or text(item, LONG_CODE_VALUE) or text(item, URN_CODE_VALUE)
    scheme = text(item, CODING_SCHEME_DESIGNATOR)
    if value is None and scheme is None:
        return None
    return Code(value or "", scheme or "", text(item, CODE_MEANING) or "", text(item, CODING_SCHEME_VERSION))


def ints(ds: Dataset, tag: BaseTag) -> list[int]:
    """IS / US / UL values, whatever the VR the writer used."""
    e: Any = ds.get_item(tag, keep_deferred=True)
    if e is None:
        return []
    vr = getattr(e, "VR", None)
    if type(e.value) is bytes and vr in ("US", "UL", "SS", "SL"):
        return [int(x) for x in numbers(ds, tag, {"US": "H", "UL": "I", "SS": "h", "SL": "i"}[vr])]
    if type(e.value) is bytes and vr is None:
        v = _converted(ds, tag)  # implicit VR: pydicom knows the dictionary VR
        return [int(x) for x in (v if isinstance(v, (list, MultiValue)) else [v]) if x not in (None, "")]
    return [int(float(x)) for x in multi_text(ds, tag)]
