"""DerivedImagingMeasurement (profile derived-imaging-measurement; ConceptMap 06; TID 1420).

Each NUM (CID 7465) of the Derived Imaging Measurements container (DCM 126011) becomes one
Observation; the measurement groups it was derived from (nested TID 1410/1411 groups, or groups
referenced by-reference, Q-26) become `derivedFrom[imagingMeasurementGroupRef]` (1..*). Device:
the NUM's own TID 4019 > the container's > general equipment (a participant device is not
allowed by the profile).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..dicom import concepts
from ..codes import FIXED
from ..dicom.content import ContentItem
from ..fhir.ids import full_url
from . import modifiers, vital_signs
from .context import ReportContext, Scope
from .groups import measurement_group
from .imaging_observation import observation, require_concept, set_derived_from, unmapped
from .measurements import num_value, with_own_device


def derived_measurements(ctx: ReportContext, scope: Scope, container: ContentItem) -> list[dict[str, Any]]:
    """All DerivedImagingMeasurements of one 126011 container."""
    scope = with_own_device(ctx, scope.with_item(ctx, container), container)
    if scope.device_kind == "participant":
        scope = replace(scope, device=ctx.equipment, device_kind="equipment")
    out = []
    for ch in container.children:
        if ch.value_type == "NUM":
            ref = derived_measurement(ctx, scope, ch)
            if ref:
                out.append(ref)
        elif concepts.key(ch.concept) not in concepts.ALGORITHM_CODES:
            unmapped(ctx, ch, "only NUM items of a Derived Imaging Measurements container are mapped (TID 1420)")
    return out


def _consumed(item: ContentItem) -> bool:
    """TID 1420 rows the mapping takes: source groups (nested or by reference) and TID 4019."""
    return (item.value_type == "CONTAINER" and concepts.key(item.concept) == concepts.MEASUREMENT_GROUP) or item.reference is not None or concepts.key(item.concept) in concepts.ALGORITHM_CODES


def derived_measurement(ctx: ReportContext, scope: Scope, item: ContentItem) -> dict[str, Any] | None:
    concept = require_concept(ctx, item)
    if concept is None:
        return None
    scope = with_own_device(ctx, scope.with_item(ctx, item), item)
    rid = ctx.id("observation", item.path, source=item.path)
    obs, condition = observation(ctx, scope, item, rid, "derived-imaging-measurement", ctx.schemes.concept(concept))
    obs["category"] = [{"coding": [dict(FIXED["derived-imaging-measurements"])]}]
    ref = ctx.resources.add(obs, condition)
    valued = num_value(ctx, obs, item)

    groups: list[dict[str, Any]] = []
    for ch in item.children:
        k = concepts.key(ch.concept)
        if ch.value_type == "CONTAINER" and k == concepts.MEASUREMENT_GROUP:
            groups.append(measurement_group(ctx, scope, ch))
        elif ch.reference is not None:
            target = ".".join(str(n) for n in ch.reference)
            gid = ctx.id("observation", target)
            if gid in ctx.resources:
                groups.append({"reference": full_url(gid), "type": "Observation"})
            else:
                ctx.diags.warn("unresolved-reference", f"by-reference item points at content item {target}, which produced no measurement group", path=ch.path, action="reference not mapped")
    set_derived_from(ctx, obs, item, list(groups))
    modifiers.apply(obs, modifiers.components(ctx, item, _consumed))
    vital_signs.apply(ctx, obs, item)
    if not valued or not groups:
        obs.pop("meta", None)
        if valued:
            ctx.diags.warn(
                "derived-without-groups",
                "derived measurement without source measurement groups; the profile requires derivedFrom[imagingMeasurementGroupRef] 1..*",
                path=item.path, concept=item.concept, action="Observation emitted without meta.profile",
            )
    return ref
