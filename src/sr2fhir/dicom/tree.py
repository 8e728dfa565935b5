"""Our data set -> our content tree (PS3.3 C.17.3, Table C.17-5 value types and their macros).

The hot path of the conversion: each content item's value type is read by the macro it names,
from raw element values (values.py).
"""

from __future__ import annotations

from array import array
from typing import Any, Callable

from .dictionary import uid_ok
from .dataset import CorruptElement, DataSet
from .content import ContentItem, MeasuredValue, SopReference, SpatialCoordinates, TemporalCoordinates
from ..diagnostics import Diagnostics
from ..errors import ConversionError
from .limits import Limits
from .values import (
    CONCEPT_CODE_SEQUENCE,
    CONCEPT_NAME_CODE_SEQUENCE,
    CONTENT_SEQUENCE,
    CONTENT_TEMPLATE_SEQUENCE,
    DATE,
    DATETIME,
    FLOATING_POINT_VALUE,
    GRAPHIC_DATA,
    GRAPHIC_TYPE,
    MEASURED_VALUE_SEQUENCE,
    MEASUREMENT_UNITS_CODE_SEQUENCE,
    NUMERIC_VALUE,
    NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE,
    OBSERVATION_DATETIME,
    OBSERVATION_UID,
    PERSON_NAME,
    REFERENCED_CONTENT_ITEM_IDENTIFIER,
    REFERENCED_DATETIME,
    REFERENCED_FRAME_NUMBER,
    REFERENCED_FRAME_OF_REFERENCE_UID,
    REFERENCED_SAMPLE_POSITIONS,
    REFERENCED_SEGMENT_NUMBER,
    REFERENCED_SOP_CLASS_UID,
    REFERENCED_SOP_INSTANCE_UID,
    REFERENCED_SOP_SEQUENCE,
    REFERENCED_TIME_OFFSETS,
    RELATIONSHIP_TYPE,
    TEMPLATE_IDENTIFIER,
    TEMPORAL_RANGE_TYPE,
    TEXT_VALUE,
    TIME,
    UID,
    VALUE_TYPE,
    clear_caches,
    code,
    ints,
    multi_text,
    numbers,
    sequence,
    text,
)


# --- value types -------------------------------------------------------------------------------


def _num(ds: DataSet) -> MeasuredValue:
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


def _sop(ds: DataSet) -> SopReference | None:
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


def _scoord(ds: DataSet) -> SpatialCoordinates:
    return SpatialCoordinates(
        graphic_type=text(ds, GRAPHIC_TYPE) or "",
        graphic_data=[shortest_f32(x) for x in numbers(ds, GRAPHIC_DATA, "f")],  # FL for SCOORD
    )


def _scoord3d(ds: DataSet) -> SpatialCoordinates:
    """Graphic Data (0070,0022) is FL in PS3.6, and FL values are written as the shortest decimal
    of the same float32, as for SCOORD (D-2, D-51); a writer's FD keeps its double."""
    element = ds.get(GRAPHIC_DATA)
    data = [float(x) for x in numbers(ds, GRAPHIC_DATA, "d")]
    return SpatialCoordinates(
        graphic_type=text(ds, GRAPHIC_TYPE) or "",
        graphic_data=[shortest_f32(x) for x in data] if element is not None and element[0] == "FL" else data,
        frame_of_reference_uid=text(ds, REFERENCED_FRAME_OF_REFERENCE_UID),
    )


def _tcoord(ds: DataSet) -> TemporalCoordinates:
    return TemporalCoordinates(
        range_type=text(ds, TEMPORAL_RANGE_TYPE) or "",
        sample_positions=[int(x) for x in numbers(ds, REFERENCED_SAMPLE_POSITIONS, "I")],
        time_offsets=[float(x) for x in numbers(ds, REFERENCED_TIME_OFFSETS, "d")],
        datetimes=multi_text(ds, REFERENCED_DATETIME),
    )


def _text_of(tag: int) -> Callable[[DataSet], str | None]:
    return lambda ds: text(ds, tag)


# Value Type (0040,A040) -> how to read its value (PS3.3 Table C.17-5 and the macros it names).
VALUE_READERS: dict[str, Callable[[DataSet], Any]] = {
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


def _what(exc: ValueError) -> str:
    """What is wrong, without quoting the value (patient data can be in it): our own messages
    name only the element; others give their type."""
    return str(exc) if isinstance(exc, CorruptElement) else f"a value that cannot be read ({type(exc).__name__})"


class TreeBuilder:
    """Builds the content tree iteratively (no recursion; bounded depth and item count)."""

    def __init__(self, name: str, limits: Limits, diags: Diagnostics, *, release: bool = False) -> None:
        self.release = release  # drop each Content Sequence from the dataset once read (datasets we own)
        self.name = name
        self.limits = limits
        self.diags = diags
        self.count = 0

    def build(self, ds: DataSet) -> ContentItem:
        root, children_of_root = self.read_item(ds, "1", is_root=True)
        # The stack holds each item's children, not the item's own data set: that goes as soon as
        # its ContentItem is made (with `release`), not when its turn comes (a lower peak).
        stack: list[tuple[ContentItem, list[DataSet], int]] = [(root, children_of_root, 1)]
        max_depth, max_items = self.limits.max_depth, self.limits.max_items
        while stack:
            parent, seq, depth = stack.pop()
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
                child, grandchildren = self.read_item(cds, prefix + str(i))
                children.append(child)
                stack.append((child, grandchildren, depth + 1))
        clear_caches()  # the tree holds what it needs; the caches would only hold the bytes
        return root

    def read_item(self, ds: DataSet, path: str, is_root: bool = False) -> tuple[ContentItem, list[DataSet]]:
        """The content item at `path` and the data sets of its children; a value that cannot be
        what its element says fails naming the item and the element."""
        try:
            return self.item(ds, path, is_root), self.children_of(ds)
        except ValueError as exc:
            raise ConversionError(f"{self.name}: corrupt DICOM data at content item {path}: {_what(exc)}", code="truncated") from None

    def children_of(self, ds: DataSet) -> list[DataSet]:
        """The items of a content item's Content Sequence; with `release`, taken out of it."""
        seq = sequence(ds, CONTENT_SEQUENCE)
        if self.release:
            ds.pop(CONTENT_SEQUENCE, None)
        return seq

    def item(self, ds: DataSet, path: str, is_root: bool = False) -> ContentItem:
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
