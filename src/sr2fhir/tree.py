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
from pydicom.multival import MultiValue

from .codes import uid_ok
from .content import Code, ContentItem, MeasuredValue, SopReference, SpatialCoordinates, TemporalCoordinates
from .diagnostics import ConversionError, Diagnostics

EXIT_LIMIT = 15

# Tags read on the hot path (PS3.6).
CODE_VALUE = 0x00080100
CODING_SCHEME_DESIGNATOR = 0x00080102
CODING_SCHEME_VERSION = 0x00080103
CODE_MEANING = 0x00080104
LONG_CODE_VALUE = 0x00080119
URN_CODE_VALUE = 0x00080120
REFERENCED_SOP_CLASS_UID = 0x00081150
REFERENCED_SOP_INSTANCE_UID = 0x00081155
REFERENCED_FRAME_NUMBER = 0x00081160
REFERENCED_SOP_SEQUENCE = 0x00081199
MEASUREMENT_UNITS_CODE_SEQUENCE = 0x004008EA
RELATIONSHIP_TYPE = 0x0040A010
OBSERVATION_DATETIME = 0x0040A032
VALUE_TYPE = 0x0040A040
CONCEPT_NAME_CODE_SEQUENCE = 0x0040A043
DATETIME = 0x0040A120
DATE = 0x0040A121
TIME = 0x0040A122
PERSON_NAME = 0x0040A123
UID = 0x0040A124
TEMPORAL_RANGE_TYPE = 0x0040A130
REFERENCED_SAMPLE_POSITIONS = 0x0040A132
REFERENCED_TIME_OFFSETS = 0x0040A138
REFERENCED_DATETIME = 0x0040A13A
TEXT_VALUE = 0x0040A160
FLOATING_POINT_VALUE = 0x0040A161
CONCEPT_CODE_SEQUENCE = 0x0040A168
OBSERVATION_UID = 0x0040A171
MEASURED_VALUE_SEQUENCE = 0x0040A300
NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE = 0x0040A301
NUMERIC_VALUE = 0x0040A30A
CONTENT_TEMPLATE_SEQUENCE = 0x0040A504
CONTENT_SEQUENCE = 0x0040A730
TEMPLATE_IDENTIFIER = 0x0040DB00
REFERENCED_CONTENT_ITEM_IDENTIFIER = 0x0040DB73
REFERENCED_SEGMENT_NUMBER = 0x0062000B
GRAPHIC_DATA = 0x00700022
GRAPHIC_TYPE = 0x00700023
REFERENCED_FRAME_OF_REFERENCE_UID = 0x30060024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds against hostile input."""

    max_depth: int = 64
    max_items: int = 2_000_000


# --- leaf access -------------------------------------------------------------------------------


def _converted(ds: Dataset, tag: int) -> Any:
    return ds[tag].value


def text(ds: Dataset, tag: int) -> str | None:
    """A single text value (first value of a multi-valued one), stripped; None if empty."""
    e = ds._dict.get(tag)
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


def multi_text(ds: Dataset, tag: int) -> list[str]:
    """All values of a multi-valued string element (IS, DT ...)."""
    e = ds._dict.get(tag)
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


def numbers(ds: Dataset, tag: int, fmt: str) -> list[float] | list[int]:
    """Binary numbers (FL 'f', FD 'd', US 'H', UL 'I') of a raw little-endian element, else via pydicom."""
    e = ds._dict.get(tag)
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


def sequence(ds: Dataset, tag: int) -> Any:
    """A sequence's items (pydicom parses it, once)."""
    e = ds._dict.get(tag)
    if e is None:
        return ()
    v = e.value if not type(e.value) is bytes else _converted(ds, tag)
    return v or ()


def code(ds: Dataset, tag: int) -> Code | None:
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


def ints(ds: Dataset, tag: int) -> list[int]:
    """IS / US / UL values, whatever the VR the writer used."""
    e = ds._dict.get(tag)
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


def _text_of(tag: int) -> Callable[[Dataset], str | None]:
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
                pds._dict.pop(CONTENT_SEQUENCE, None)
            if not seq:
                continue
            if depth >= max_depth:
                raise ConversionError(
                    f"{self.name}: content tree deeper than {max_depth} levels at content item {parent.path}", code="too-deep", exit_code=EXIT_LIMIT
                )
            self.count += len(seq)
            if self.count > max_items:
                raise ConversionError(f"{self.name}: more than {max_items} content items", code="too-many", exit_code=EXIT_LIMIT)
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
        d = ds._dict
        if OBSERVATION_UID in d:
            item.observation_uid = text(ds, OBSERVATION_UID)
        if OBSERVATION_DATETIME in d:
            item.observation_datetime = text(ds, OBSERVATION_DATETIME)
        if CONTENT_TEMPLATE_SEQUENCE in d:
            tseq = sequence(ds, CONTENT_TEMPLATE_SEQUENCE)
            if tseq:
                item.template = text(tseq[0], TEMPLATE_IDENTIFIER)
        if vt is None:
            if REFERENCED_CONTENT_ITEM_IDENTIFIER in d:
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
