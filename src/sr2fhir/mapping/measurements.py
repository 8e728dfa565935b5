"""ImagingMeasurement (profile imaging-measurement; ConceptMap 04): a NUM of TID 300 / TID 1419.

code <- the NUM's concept name; valueQuantity <- Measured Value Sequence (0040,A300); method,
finding site and device: the NUM's own, else the group's (diagram 4_6); derivedFrom: the group's
ImagingSelections, overridden by the NUM's own INFERRED FROM regions (D-8).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..dicom import concepts
from ..dicom.content import Code, ContentItem, MeasuredValue
from . import devices, imaging_selections, modifiers, vital_signs
from .body_structures import Tracking, finding_site, track_on_observation
from .context import ReportContext, Scope
from .imaging_observation import GroupInheritance, absent_reason, observation, quantity, require_concept, set_derived_from

# Children of a NUM that the mapping consumes (TID 300 / 1419 rows); the rest is reported.
_CONSUMED: frozenset[tuple[str, str]] = frozenset(
    {concepts.MEASUREMENT_METHOD, concepts.FINDING_SITE, concepts.TRACKING_IDENTIFIER, concepts.TRACKING_UID} | concepts.ALGORITHM_CODES
)


def method_of(ctx: ReportContext, item: ContentItem) -> dict[str, Any] | None:
    """Measurement Method (SCT 370129005) child as a CodeableConcept."""
    for ch in item.children:
        if concepts.key(ch.concept) == concepts.MEASUREMENT_METHOD and isinstance(ch.value, Code):
            return ctx.schemes.concept(ch.value)
    return None


def with_own_device(ctx: ReportContext, scope: Scope, item: ContentItem) -> Scope:
    """The scope with `item`'s own TID 4019 algorithm as device, if it has one."""
    alg = devices.algorithm(ctx, item, ctx.equipment)
    return replace(scope, device=alg, device_kind="algorithm") if alg else scope


def num_value(ctx: ReportContext, obs: dict[str, Any], item: ContentItem) -> bool:
    """Set valueQuantity, or dataAbsentReason for a NUM without a value (D-14). True if valued."""
    mv = item.value if isinstance(item.value, MeasuredValue) else MeasuredValue()
    q = quantity(ctx, mv)
    if q is not None:
        obs["valueQuantity"] = q
        return True
    obs["dataAbsentReason"] = absent_reason(mv)
    reason = f"Numeric Value Qualifier {mv.qualifier}" if mv.qualifier else "no Measured Value Sequence value"
    ctx.diags.warn(
        "num-without-value",
        f"NUM without a numeric value ({reason}); the measurement profiles require valueQuantity",
        path=item.path, concept=item.concept, action="Observation with dataAbsentReason, without meta.profile",
    )
    return False


_SITE_MODIFIERS: frozenset[tuple[str, str]] = frozenset({concepts.LATERALITY, concepts.TOPOGRAPHICAL_MODIFIER})


def consumed(item: ContentItem) -> bool:
    """A child of a NUM that the IG's mapping takes (method, site, tracking, TID 4019, regions)."""
    return concepts.key(item.concept) in _CONSUMED or imaging_selections.consumes(item, any_concept=True)


def imaging_measurement(ctx: ReportContext, scope: Scope, item: ContentItem, group: GroupInheritance) -> dict[str, Any] | None:
    """The ImagingMeasurement Observation of one NUM; None if it has no concept name."""
    concept = require_concept(ctx, item)
    if concept is None:
        return None
    scope = with_own_device(ctx, scope.with_item(ctx, item), item)
    rid = ctx.id("observation", item.path, source=item.path)
    obs, condition = observation(ctx, scope, item, rid, "imaging-measurement", ctx.schemes.concept(concept))
    ref = ctx.resources.add(obs, condition)
    if not num_value(ctx, obs, item):
        del obs["meta"]
    method = method_of(ctx, item) or group.method
    if method:
        obs["method"] = method
    tracking = Tracking.of(item)
    own_site = finding_site(ctx, item, tracking)
    track_on_observation(ctx, obs, item, tracking, own_site)
    # Laterality / modifiers beside the NUM's own Finding Site belong to it (finding_site reads them).
    site_rows = _SITE_MODIFIERS if own_site is not None else frozenset()
    site = own_site or group.site
    if site:
        site.apply(obs)
    own = imaging_selections.collect(ctx, item, site, any_concept=True)
    set_derived_from(ctx, obs, item, group.selections.overridden_by(own).derived_from())
    modifiers.apply(obs, modifiers.components(ctx, item, lambda ch: consumed(ch) or concepts.key(ch.concept) in site_rows))
    vital_signs.apply(ctx, obs, item)
    return ref
