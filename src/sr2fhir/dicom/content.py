"""A small, typed, lenient SR content tree (PS3.3 C.17.3 SR Document Content Module).

The tree is our own so that mapping never touches pydicom objects: every content item carries
its path ("1.4.2" in the Referenced Content Item Identifier style, root = "1"), relationship
type, value type, concept name and a typed value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Union

from .header import SRHeader


@dataclass(frozen=True, slots=True)
class Code:
    """A DICOM code triplet (PS3.3 Table 8.8-1 Code Sequence Macro)."""

    value: str
    scheme: str
    meaning: str = ""
    version: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(scheme, value): what identifies the concept, ignoring its meaning."""
        return (self.scheme, self.value)

    def __str__(self) -> str:
        return f'({self.value}, {self.scheme}, "{self.meaning}")'


@dataclass(slots=True)
class MeasuredValue:
    """NUM content: Measured Value Sequence (0040,A300) and Numeric Value Qualifier (0040,A301)."""

    numeric: str | None = None
    """Numeric Value (0040,A30A) as written (DS text), if any."""
    floating: float | None = None
    """Floating Point Value (0040,A161), if any."""
    unit: Code | None = None
    qualifier: Code | None = None


@dataclass(slots=True)
class SopReference:
    """IMAGE / COMPOSITE / WAVEFORM content: one Referenced SOP Sequence (0008,1199) item."""

    sop_class_uid: str | None
    sop_instance_uid: str | None
    frames: list[int] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)


@dataclass(slots=True)
class SpatialCoordinates:
    """SCOORD / SCOORD3D content (PS3.3 C.18.6, C.18.9)."""

    graphic_type: str
    graphic_data: list[float]
    frame_of_reference_uid: str | None = None


@dataclass(slots=True)
class TemporalCoordinates:
    """TCOORD content (PS3.3 C.18.7)."""

    range_type: str
    sample_positions: list[int] = field(default_factory=list)
    time_offsets: list[float] = field(default_factory=list)
    datetimes: list[str] = field(default_factory=list)


Value = Union[str, Code, MeasuredValue, SopReference, SpatialCoordinates, TemporalCoordinates, None]


@dataclass(slots=True)
class ContentItem:
    """One SR content item with its children."""

    path: str
    relationship: str | None
    value_type: str | None
    concept: Code | None
    value: Value = None
    observation_uid: str | None = None
    observation_datetime: str | None = None
    template: str | None = None
    reference: list[int] | None = None
    """Referenced Content Item Identifier (0040,DB73) of a by-reference relationship."""
    children: list["ContentItem"] = field(default_factory=list)

    def is_concept(self, scheme: str, value: str) -> bool:
        c = self.concept
        return c is not None and c.value == value and c.scheme == scheme

    def child(self, scheme: str, value: str, value_type: str | None = None) -> "ContentItem | None":
        """The first child with this concept name (and value type)."""
        for ch in self.children:
            if ch.is_concept(scheme, value) and (value_type is None or ch.value_type == value_type):
                return ch
        return None

    def walk(self) -> Iterator["ContentItem"]:
        """Depth-first, pre-order, without recursion."""
        stack = [self]
        while stack:
            item = stack.pop()
            yield item
            stack.extend(reversed(item.children))


@dataclass(slots=True)
class SRDocument:
    """An SR document: header attributes the mapping needs, and the content tree."""

    source: str
    """Where the document came from (file name), for messages."""
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str | None
    study_instance_uid: str | None
    root: ContentItem
    header: SRHeader = field(default_factory=SRHeader)
    """The header attributes the mapping reads, typed (header.py)."""

    def find(self, path: str) -> ContentItem | None:
        """The content item at a 1.2.3 path."""
        parts = path.split(".")
        if parts[0] != "1":
            return None
        item = self.root
        for p in parts[1:]:
            idx = int(p) - 1
            if idx < 0 or idx >= len(item.children):
                return None
            item = item.children[idx]
        return item
