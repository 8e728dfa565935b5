"""A readable, indented rendering of an SR content tree (like DCMTK's dsrdump)."""

from __future__ import annotations

from typing import Iterator

from .content import ContentItem, MeasuredValue, SopReference, SpatialCoordinates, SRDocument, TemporalCoordinates


def value_text(item: ContentItem, *, show_names: bool = True) -> str:
    v = item.value
    if v is None:
        if item.reference is not None:
            return "-> " + ".".join(str(n) for n in item.reference)
        return ""
    if isinstance(v, MeasuredValue):
        if v.numeric is None and v.floating is None:
            return f"(no value{', ' + str(v.qualifier) if v.qualifier else ''})"
        unit = f" {v.unit.value}" if v.unit else ""
        return f"{v.numeric if v.numeric is not None else v.floating}{unit}"
    if isinstance(v, SopReference):
        extra = f" frames {v.frames}" if v.frames else ""
        extra += f" segments {v.segments}" if v.segments else ""
        return f"{v.sop_class_uid} {v.sop_instance_uid}{extra}"
    if isinstance(v, SpatialCoordinates):
        fr = f" in {v.frame_of_reference_uid}" if v.frame_of_reference_uid else ""
        return f"{v.graphic_type} {len(v.graphic_data)} values{fr}"
    if isinstance(v, TemporalCoordinates):
        return f"{v.range_type}"
    if item.value_type == "PNAME" and not show_names:
        return "(name)"
    return str(v)


def lines(doc: SRDocument, *, show_names: bool = True) -> Iterator[str]:
    """One line per content item: path, relationship, value type, concept name = value."""
    for item in doc.root.walk():
        depth = item.path.count(".")
        rel = f"{item.relationship} " if item.relationship else ""
        vt = item.value_type or "BY-REFERENCE"
        concept = str(item.concept) if item.concept else ""
        tid = f" [TID {item.template}]" if item.template else ""
        val = value_text(item, show_names=show_names)
        ctx = f" (Observation UID {item.observation_uid})" if item.observation_uid else ""
        ctx += f" (Observation DateTime {item.observation_datetime})" if item.observation_datetime else ""
        yield f"{'  ' * depth}{item.path} {rel}{vt} {concept}{tid}{' = ' + val if val else ''}{ctx}".rstrip()
