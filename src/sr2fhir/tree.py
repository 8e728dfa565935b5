"""pydicom dataset -> our content tree (PS3.3 C.17.3, Table C.17-5 value types and their macros).

The hot path of the conversion. Leaf values are read from pydicom's raw data elements and decoded
here (ASCII text, little-endian binary) instead of through pydicom's per-element conversion; any
element that is not plain ASCII / little endian goes through pydicom, which handles character
sets and byte orders. Sequences are always parsed by pydicom.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any, Callable

from pydicom.dataset import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from .codes import uid_ok
from .content import Code, ContentItem, MeasuredValue, SopReference, SpatialCoordinates, TemporalCoordinates
from .diagnostics import Diagnostics
from .errors import ConversionError




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


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds against hostile input."""

    max_depth: int = 64
    max_items: int = 250_000
    """About 5 kB of memory per item at the peak: the default bounds one report to about 1.3 GB
    (the largest real report seen has 4,603 items; raise it with --max-items for bigger ones)."""


# --- leaf access -------------------------------------------------------------------------------


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


# --- value types -------------------------------------------------------------------------------


def _num(ds: Dataset) -> MeasuredValue:
    mv = MeasuredValue()
    mvs = sequence(ds, MEASURED_VALUE_SEQUENCE)
    if mvs:
        m = mvs[0]
        mv.numeric = text(m, NUMERIC_VALUE)
        fv = numbers(m, FLOATING_POINT_VALUE, "d")
        if fv:
            mv.floating = float(fv[0])
        mv.unit = code(m, MEASUREMENT_UNITS_CODE_SEQUENCE)
    mv.qualifier = code(ds, NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE)
    return mv


def _sop(ds: Dataset) -> SopReference | None:
    seq = sequence(ds, REFERENCED_SOP_SEQUENCE)
    if not seq:
        return None
    r = seq[0]
    return SopReference(
        sop_class_uid=text(r, REFERENCED_SOP_CLASS_UID),
        sop_instance_uid=text(r, REFERENCED_SOP_INSTANCE_UID),
        frames=ints(r, REFERENCED_FRAME_NUMBER),
        segments=ints(r, REFERENCED_SEGMENT_NUMBER),
    )


def shortest_f32(x: float) -> float:
    """The shortest decimal that is the same FL (float32) value: 0.25, not 0.25000000372529."""
    packed = array("f", [x]).tobytes()
    for digits in range(6, 10):
        y = float(f"{x:.{digits}g}")
        if array("f", [y]).tobytes() == packed:
            return y
    return x


def _scoord(ds: Dataset) -> SpatialCoordinates:
    return SpatialCoordinates(
        graphic_type=text(ds, GRAPHIC_TYPE) or "",
        graphic_data=[shortest_f32(x) for x in numbers(ds, GRAPHIC_DATA, "f")],  # FL for SCOORD
    )


def _scoord3d(ds: Dataset) -> SpatialCoordinates:
    return SpatialCoordinates(
        graphic_type=text(ds, GRAPHIC_TYPE) or "",
        graphic_data=[float(x) for x in numbers(ds, GRAPHIC_DATA, "d")],  # FD for SCOORD3D
        frame_of_reference_uid=text(ds, REFERENCED_FRAME_OF_REFERENCE_UID),
    )


def _tcoord(ds: Dataset) -> TemporalCoordinates:
    return TemporalCoordinates(
        range_type=text(ds, TEMPORAL_RANGE_TYPE) or "",
        sample_positions=[int(x) for x in numbers(ds, REFERENCED_SAMPLE_POSITIONS, "I")],
        time_offsets=[float(x) for x in numbers(ds, REFERENCED_TIME_OFFSETS, "d")],
        datetimes=multi_text(ds, REFERENCED_DATETIME),
    )


def _text_of(tag: BaseTag) -> Callable[[Dataset], str | None]:
    return lambda ds: text(ds, tag)


# Value Type (0040,A040) -> how to read its value (PS3.3 Table C.17-5 and the macros it names).
VALUE_READERS: dict[str, Callable[[Dataset], Any]] = {
    "TEXT": _text_of(TEXT_VALUE),
    "CODE": lambda ds: code(ds, CONCEPT_CODE_SEQUENCE),
    "NUM": _num,
    "UIDREF": _text_of(UID),
    "PNAME": _text_of(PERSON_NAME),
    "DATE": _text_of(DATE),
    "TIME": _text_of(TIME),
    "DATETIME": _text_of(DATETIME),
    "IMAGE": _sop,
    "COMPOSITE": _sop,
    "WAVEFORM": _sop,
    "SCOORD": _scoord,
    "SCOORD3D": _scoord3d,
    "TCOORD": _tcoord,
}


class TreeBuilder:
    """Builds the content tree iteratively (no recursion; bounded depth and item count)."""

    def __init__(self, name: str, limits: Limits, diags: Diagnostics, *, release: bool = False) -> None:
        self.release = release  # drop each Content Sequence from the dataset once read (datasets we own)
        self.name = name
        self.limits = limits
        self.diags = diags
        self.count = 0

    def build(self, ds: Dataset) -> ContentItem:
        root = self.item(ds, "1", is_root=True)
        stack: list[tuple[ContentItem, Dataset, int]] = [(root, ds, 1)]
        max_depth, max_items = self.limits.max_depth, self.limits.max_items
        while stack:
            parent, pds, depth = stack.pop()
            seq = sequence(pds, CONTENT_SEQUENCE)
            if self.release:  # let each pydicom item go once our tree has it: a lower peak
                if CONTENT_SEQUENCE in pds:
                    del pds[CONTENT_SEQUENCE]
            if not seq:
                continue
            if depth >= max_depth:
                raise ConversionError(
                    f"{self.name}: content tree deeper than {max_depth} levels at content item {parent.path}", code="too-deep"
                )
            self.count += len(seq)
            if self.count > max_items:
                raise ConversionError(f"{self.name}: more than {max_items} content items", code="too-many")
            prefix = parent.path + "."
            children = parent.children
            for i, cds in enumerate(seq, 1):
                child = self.item(cds, prefix + str(i))
                children.append(child)
                stack.append((child, cds, depth + 1))
        return root

    def item(self, ds: Dataset, path: str, is_root: bool = False) -> ContentItem:
        vt = text(ds, VALUE_TYPE)
        concept = code(ds, CONCEPT_NAME_CODE_SEQUENCE)
        item = ContentItem(path, text(ds, RELATIONSHIP_TYPE), vt, concept)
        if OBSERVATION_UID in ds:
            item.observation_uid = text(ds, OBSERVATION_UID)
        if OBSERVATION_DATETIME in ds:
            item.observation_datetime = text(ds, OBSERVATION_DATETIME)
        if CONTENT_TEMPLATE_SEQUENCE in ds:
            tseq = sequence(ds, CONTENT_TEMPLATE_SEQUENCE)
            if tseq:
                item.template = text(tseq[0], TEMPLATE_IDENTIFIER)
        if vt is None:
            if REFERENCED_CONTENT_ITEM_IDENTIFIER in ds:
                item.reference = ints(ds, REFERENCED_CONTENT_ITEM_IDENTIFIER)
            elif not is_root:
                self.diags.warn("missing-value-type", "content item has no Value Type (0040,A040)", path=path, concept=concept, action="kept without a value")
            return item
        reader = VALUE_READERS.get(vt)
        if reader is not None:
            item.value = reader(ds)
            self._check_uids(item)
        elif vt != "CONTAINER":
            self.diags.warn("unknown-value-type", f"unknown Value Type {vt!r}", path=path, concept=concept, action="kept without a value")
        if item.observation_uid is not None:
            item.observation_uid = self.uid(item.observation_uid, item, "Observation UID (0040,A171)")
        return item

    def uid(self, value: str | None, item: ContentItem, what: str) -> str | None:
        """`value` if it is a valid UID; else None and a warning (the value is not quoted)."""
        if value is None or uid_ok(value):
            return value
        self.diags.warn("invalid-uid", f"{what} is not a valid UID", path=item.path, concept=item.concept, action="treated as absent")
        return None

    def _check_uids(self, item: ContentItem) -> None:
        v = item.value
        if isinstance(v, SopReference):
            v.sop_class_uid = self.uid(v.sop_class_uid, item, "Referenced SOP Class UID (0008,1150)")
            v.sop_instance_uid = self.uid(v.sop_instance_uid, item, "Referenced SOP Instance UID (0008,1155)")
        elif isinstance(v, SpatialCoordinates):
            v.frame_of_reference_uid = self.uid(v.frame_of_reference_uid, item, "Referenced Frame of Reference UID (3006,0024)")
        elif item.value_type == "UIDREF" and isinstance(v, str):
            item.value = self.uid(v, item, "UID (0040,A124)")
