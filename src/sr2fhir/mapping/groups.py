"""ImagingMeasurementGroup (profile imaging-measurement-group; ConceptMap 03).

A Measurement Group CONTAINER (DCM 125007) of TID 1410 Planar ROI, TID 1411 Volumetric ROI or
TID 1501 Measurement and Qualitative Evaluation Group. Rows: Tracking Identifier/UID -> the
BodyStructure; Finding Category -> `code` (else DCM 125007); Finding -> `valueCodeableConcept`;
Measurement Method -> `method`; Finding Site -> `bodySite` / `bodyStructure`; region and
reference items -> ImagingSelections (`derivedFrom`); NUMs -> ImagingMeasurement, qualitative
evaluations -> ImagingQualitativeEvaluation (`hasMember`); TID 4019 -> `device`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..dicom import concepts
from ..codes import FIXED
from ..dicom.content import Code, ContentItem
from . import imaging_selections, modifiers, practitioners
from .body_structures import Tracking, finding_site, track_on_observation
from .context import ReportContext, Scope
from .imaging_observation import GroupInheritance, observation, set_derived_from, unmapped
from .measurements import imaging_measurement, method_of, with_own_device
from .qualitative import is_qualitative, qualitative_evaluation

# Group rows consumed by the group itself (or by its selections / device / body structure).
_GROUP_ROWS: frozenset[tuple[str, str]] = frozenset(
    {
        concepts.TRACKING_IDENTIFIER, concepts.TRACKING_UID, concepts.FINDING_CATEGORY, concepts.FINDING,
        concepts.MEASUREMENT_METHOD, concepts.FINDING_SITE, concepts.LATERALITY, concepts.TOPOGRAPHICAL_MODIFIER,
        concepts.SOURCE_IMAGE_FOR_SEGMENTATION, concepts.SOURCE_SERIES_FOR_SEGMENTATION,
    }
    | concepts.ALGORITHM_CODES
)
# Observer context rows, consumed by the performer (D-10).
_SILENT: frozenset[tuple[str, str]] = frozenset({concepts.OBSERVER_TYPE, concepts.PERSON_OBSERVER_NAME})


def _code_value(item: ContentItem, k: tuple[str, str]) -> Code | None:
    for ch in item.children:
        if concepts.key(ch.concept) == k and isinstance(ch.value, Code):
            return ch.value
    return None


def measurement_group(ctx: ReportContext, scope: Scope, item: ContentItem) -> dict[str, Any]:
    """The ImagingMeasurementGroup Observation of one group, with its members and selections."""
    scope = with_own_device(ctx, scope.with_item(ctx, item), item)
    person = practitioners.observer_context_performer(ctx, item)
    if person:
        scope = replace(scope, performer=(person,))
    tracking = Tracking.of(item)
    site = finding_site(ctx, item, tracking)
    selections = imaging_selections.collect(ctx, item, site)

    category = _code_value(item, concepts.FINDING_CATEGORY)
    code = ctx.schemes.concept(category) if category else {"coding": [dict(FIXED["measurement-group"])]}
    rid = ctx.id("observation", item.path, source=item.path)
    obs, condition = observation(ctx, scope, item, rid, "imaging-measurement-group", code)
    obs["category"] = [{"coding": [dict(FIXED["measurement-group"])]}]
    ref = ctx.resources.add(obs, condition)
    track_on_observation(ctx, obs, item, tracking, site)
    finding = _code_value(item, concepts.FINDING)
    if finding:
        obs["valueCodeableConcept"] = ctx.schemes.concept(finding)
    method = method_of(ctx, item)
    if method:
        obs["method"] = method
    if site:
        site.apply(obs)
    set_derived_from(ctx, obs, item, selections.derived_from())

    inherit = GroupInheritance(selections=selections, site=site, method=method)
    members = []
    for ch in item.children:
        if ch.value_type == "NUM":
            member = imaging_measurement(ctx, scope, ch, inherit)
        elif is_qualitative(ch):
            member = qualitative_evaluation(ctx, scope, ch, inherit)
        else:
            if concepts.key(ch.concept) in concepts.STRUCTURE:
                unmapped(ctx, ch, clinical=False)
            continue
        if member:
            members.append(member)
    if members:
        obs["hasMember"] = members
    modifiers.apply(obs, modifiers.components(ctx, item, _consumed), name_in_code=False)
    return ref


def _consumed(item: ContentItem) -> bool:
    """Group rows the IG maps (members, context rows, selections, TID 4019) and document structure."""
    k = concepts.key(item.concept)
    return (
        item.value_type == "NUM" or is_qualitative(item) or k in _GROUP_ROWS or k in _SILENT
        or k in concepts.STRUCTURE or imaging_selections.consumes(item)
    )

