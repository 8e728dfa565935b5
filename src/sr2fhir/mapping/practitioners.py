"""Practitioner (profile dicom-participant-person) -> Observation.performer (ConceptMap 02, D-10).

Source, in order: a Participant Sequence (0040,A07A) item with Observer Type PSN (Participation
Type SOURCE first), else the Person Observer Name (DCM 121008) of the TID 1002 observer context
of the root or of the nearest enclosing container.
"""

from __future__ import annotations

from typing import Any

from ..dicom import concepts
from ..dicom.content import ContentItem
from ..fhir.ids import resource_id
from . import identity
from .context import ReportContext, profile_url


def human_name(pn: str) -> dict[str, Any] | None:
    """DICOM PN (family^given^middle^prefix^suffix, alphabetic group) -> HumanName."""
    alpha = pn.split("=")[0]
    parts = (alpha.split("^") + [""] * 5)[:5]
    family, given, middle, prefix, suffix = (p.strip() for p in parts)
    name: dict[str, Any] = {}
    if family:
        name["family"] = family
    givens = [g for g in (given, middle) if g]
    if givens:
        name["given"] = givens
    if prefix:
        name["prefix"] = [prefix]
    if suffix:
        name["suffix"] = [suffix]
    if not name:
        return None
    name["text"] = " ".join(p for p in (prefix, given, middle, family, suffix) if p)
    return name


def practitioner(ctx: ReportContext, pn: str) -> dict[str, Any] | None:
    """A Practitioner identified by name only (the SR has nothing else that identifies a person)."""
    name = human_name(pn)
    if name is None:
        return None
    rid = resource_id("practitioner", ctx.key, pn)
    ident, cond = identity.by_id(rid)
    res = {
        "resourceType": "Practitioner",
        "id": rid,
        "meta": {"profile": [profile_url("dicom-participant-person")]},
        "identifier": [ident],
        "name": [name],
    }
    return ctx.resources.add(res, cond)


def document_performer(ctx: ReportContext) -> dict[str, Any] | None:
    """The performer from the Participant Sequence (PSN)."""
    people = [p for p in ctx.doc.header.participants if p.observer_type == "PSN"]
    people.sort(key=lambda p: 0 if p.participation_type == "SOURCE" else 1)
    for p in people:
        if p.person_name:
            return practitioner(ctx, p.person_name)
    return None


def observer_context_performer(ctx: ReportContext, container: ContentItem) -> dict[str, Any] | None:
    """The Person Observer Name (121008) among `container`'s HAS OBS CONTEXT children (TID 1002)."""
    for ch in container.children:
        if ch.relationship == "HAS OBS CONTEXT" and concepts.key(ch.concept) == concepts.PERSON_OBSERVER_NAME and isinstance(ch.value, str):
            return practitioner(ctx, ch.value)
    return None
