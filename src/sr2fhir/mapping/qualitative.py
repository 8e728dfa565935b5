"""ImagingQualitativeEvaluation (profile imaging-qualitative-evaluation; ConceptMap 05).

A CODE or TEXT that is a qualitative evaluation ($QualType): in a measurement group or in the
Qualitative Evaluations container (UMLS C0034375). Which items qualify: D-3.
"""

from __future__ import annotations

from typing import Any

from ..dicom import concepts
from ..codes import FIXED
from ..dicom.content import Code, ContentItem
from .context import ReportContext, Scope
from . import modifiers
from .imaging_observation import GroupInheritance, observation, set_derived_from
from .measurements import with_own_device


def is_qualitative(item: ContentItem) -> bool:
    """CONTAINS + CODE/TEXT + concept not in the exclusion list (architecture.md; D-3)."""
    return (
        item.value_type in ("CODE", "TEXT")
        and item.relationship in ("CONTAINS", None)
        and item.concept is not None
        and concepts.key(item.concept) not in concepts.NOT_QUALITATIVE
    )


def qualitative_evaluation(ctx: ReportContext, scope: Scope, item: ContentItem, group: GroupInheritance | None) -> dict[str, Any] | None:
    """The Observation of one qualitative evaluation; None if it has no value (valueCodeableConcept 1..1)."""
    if isinstance(item.value, Code):
        value: dict[str, Any] = ctx.schemes.concept(item.value)
    elif isinstance(item.value, str) and item.value:
        value = {"text": item.value}
    else:
        ctx.diags.warn("qualitative-without-value", f"{item.value_type} without a value", path=item.path, concept=item.concept, action="skipped")
        return None
    assert item.concept is not None
    scope = with_own_device(ctx, scope.with_item(ctx, item), item)
    rid = ctx.id("observation", item.path, source=item.path)
    obs, condition = observation(ctx, scope, item, rid, "imaging-qualitative-evaluation", ctx.schemes.concept(item.concept))
    obs["category"] = [{"coding": [dict(FIXED["qualitative-evaluations"])]}]
    obs["valueCodeableConcept"] = value
    if group is not None and group.site:
        group.site.apply(obs)
    set_derived_from(ctx, obs, item, group.selections.derived_from() if group is not None else [])
    modifiers.apply(obs, modifiers.components(ctx, item, lambda ch: concepts.key(ch.concept) in concepts.ALGORITHM_CODES))
    return ctx.resources.add(obs, condition)
