"""ImagingSelections (IG section "ImagingSelection profiles", ConceptMap 03 rows 111030..121231).

One ImagingSelection per kind per measurement group, with one `instance` per referenced object
(the Observation `derivedFrom` slices are max 1 per kind: D-8). The table SELECTION_KINDS says
which group content item makes which profile.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Any, Callable

from .. import codes
from ..dicom import concepts
from ..codes import sop_class_coding
from ..ig_facts import PATTERNS
from ..dicom.header import EvidenceRef
from ..dicom.content import ContentItem, SopReference, SpatialCoordinates
from ..fhir import extensions
from . import identity
from .body_structures import Site
from .context import ReportContext, profile_url

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RWVM_STORAGE = "1.2.840.10008.5.1.4.1.1.67"


@dataclass(frozen=True, slots=True)
class SelectionKind:
    """One concrete ImagingSelection profile: the content item it comes from, and how it is made.

    `code` is the profile's fixed code.coding, as the IG spells it (ig_facts, generated from the
    IG, I-18). `instances` makes the `instance` entries of an IMAGE / COMPOSITE item; `check` says
    why a selection cannot claim the profile (D-0), as (rule, problem), or None.
    """

    profile: str | None
    """None: a selection the IG has no profile for, emitted without a claim (D-49)."""
    slice: str
    """Observation.derivedFrom slice (imaging-observation profile), or a name of our own."""
    focus_source_image: bool = False
    """Has focus[sourceImageForSegmentation]."""
    frame_of_reference: bool = False
    """frameOfReferenceUid 1..1 (3D profiles)."""
    instances: Callable[[ReportContext, ContentItem, SopReference], list[dict[str, Any]]] = field(default=lambda ctx, item, ref: _whole(ctx, item, ref))
    check: Callable[[dict[str, Any]], tuple[str, str] | None] = field(default=lambda res: None)
    own_code: dict[str, str] | None = None
    """code.coding of a kind without a profile (PS3.16's code and meaning)."""

    @property
    def code(self) -> dict[str, str]:
        if self.profile is None:
            assert self.own_code is not None
            return self.own_code
        return PATTERNS[self.profile]["ImagingSelection.code.coding"]


def _whole(ctx: ReportContext, item: ContentItem, ref: SopReference) -> list[dict[str, Any]]:
    """One instance, with the Referenced Frame Numbers as subset."""
    inst = _instance(ctx, ref, item)
    return [inst] if inst else []


def _segments(ctx: ReportContext, item: ContentItem, ref: SopReference) -> list[dict[str, Any]]:
    """One instance per Referenced Segment Number (0062,000B): subset 1..1 per instance slice
    (the IG maps subset from the segment number alone). A Referenced Frame Number (0008,1160)
    names a frame of the Segmentation, not a segment: it is never written as one (D-47)."""
    numbers = [str(s) for s in ref.segments]
    if ref.frames:
        frames = ", ".join(str(f) for f in ref.frames)
        ctx.diags.warn("segmentation-frame-not-carried", f"Referenced Frame Number(s) {frames} of a segmentation reference have no element in the IG's profile",
                       path=item.path, concept=item.concept, action="frame numbers not carried; the segment number is instance.subset")
    if not numbers:
        ctx.diags.warn("no-segment-number", "segmentation reference without Referenced Segment Number (0062,000B)", path=item.path, concept=item.concept, action="instance without subset")
        inst = _instance(ctx, ref, item, [])
        return [inst] if inst else []
    return [i for n in numbers if (i := _instance(ctx, ref, item, [n]))]


def _rois(ctx: ReportContext, item: ContentItem, ref: SopReference) -> list[dict[str, Any]]:
    """subset <- Text Value of the child 130489 "Referenced Region of Interest Identifier"."""
    rois = [ch.value for ch in item.children if concepts.key(ch.concept) == concepts.REFERENCED_ROI_IDENTIFIER and isinstance(ch.value, str)]
    inst = _instance(ctx, ref, item, rois)
    return [inst] if inst else []


def _sop_classes(res: dict[str, Any]) -> set[str | None]:
    return {i.get("sopClass", {}).get("code") for i in res.get("instance", [])}


def _one_segment_each(res: dict[str, Any]) -> tuple[str, str] | None:
    if _sop_classes(res) - {SEGMENTATION_STORAGE} or any(len(i.get("subset", [])) != 1 for i in res.get("instance", [])):
        return "profile-not-claimed", "needs Segmentation Storage instances with one segment number each"
    return None


def _rtss_typo(res: dict[str, Any]) -> tuple[str, str] | None:
    return "region-in-space-sop-class-typo", "fixes the RT Structure Set SOP class as '11.2.840.10008.5.1.4.1.1.481.3' (I-9); the true UID is kept (D-25)"


def _rwvm(res: dict[str, Any]) -> tuple[str, str] | None:
    return ("profile-not-claimed", "needs Real World Value Mapping Storage instances") if _sop_classes(res) - {RWVM_STORAGE} else None


def _frame_of_reference(res: dict[str, Any]) -> tuple[str, str] | None:
    return None if res.get("frameOfReferenceUid") else ("profile-not-claimed", "needs frameOfReferenceUid")


def _a_region(res: dict[str, Any]) -> tuple[str, str] | None:
    return None if res.get("instance") else ("profile-not-claimed", "needs an instance with an image region")


# (concept name, value type) -> profile: one row per ImagingSelection profile (ImagingSelection-*.fsh;
# TID 1410/1411/1501 rows).
SELECTION_KINDS: dict[tuple[tuple[str, str], str], SelectionKind] = {
    (concepts.IMAGE_REGION, "SCOORD"): SelectionKind("image-region-2d", "imageRegion2d", check=_a_region),
    (concepts.IMAGE_REGION, "SCOORD3D"): SelectionKind("image-region-3d", "imageRegion3d", frame_of_reference=True, check=_frame_of_reference),
    (("DCM", "121214"), "IMAGE"): SelectionKind("referenced-segmentation-frame", "referencedSegmentationFrame", focus_source_image=True, instances=_segments, check=_one_segment_each),
    (("DCM", "121191"), "IMAGE"): SelectionKind("referenced-segment", "referencedSegment", focus_source_image=True, instances=_segments, check=_one_segment_each),
    (("DCM", "121231"), "SCOORD3D"): SelectionKind("volume-surface", "volumeSurface", focus_source_image=True, frame_of_reference=True, check=_frame_of_reference),
    (("DCM", "130488"), "COMPOSITE"): SelectionKind("region-in-space", "regionInSpace", instances=_rois, check=_rtss_typo),
    (("DCM", "126100"), "COMPOSITE"): SelectionKind("real-world-value-map", "realWorldValueMap", check=_rwvm),
    (("DCM", "121200"), "IMAGE"): SelectionKind("illustration-of-roi", "illustrationOfRoi"),
    (("DCM", "130401"), "IMAGE"): SelectionKind("visual-explanation", "visualExplanation"),
}

SOURCE_IMAGE = SelectionKind("source-image-for-segmentation", "")

UNPROFILED_KINDS: dict[tuple[tuple[str, str], str], SelectionKind] = {
    (concepts.SOURCE_OF_MEASUREMENT, "IMAGE"): SelectionKind(
        None, "sourceOfMeasurement", own_code={"system": codes.DCM, "code": "121112", "display": "Source of Measurement"}),
}
"""Image references the IG maps nowhere but that name what a value was measured on: an
ImagingSelection without a profile claim, in the open derivedFrom slicing (D-49)."""


# DICOM Graphic Type (0070,0023) of SCOORD -> R5 imageRegion2D.regionType (MAPPING 9.9).
GRAPHIC_TYPE_2D: dict[str, tuple[str, int, int]] = {
    # graphic type: (regionType, minimum values, required multiple)
    "POINT": ("point", 2, 2),
    "MULTIPOINT": ("point", 2, 2),  # one point region per pair (D-2)
    "POLYLINE": ("polyline", 4, 2),
    "CIRCLE": ("circle", 4, 4),
    "ELLIPSE": ("ellipse", 8, 8),
}

# DICOM 3D Graphic Type (0070,0023) of SCOORD3D (PS3.3 C.18.9.1.2) -> the regionType of sr2fhir's
# image-region-3d extension (R6 imageRegion3D, D-51): (regionType, minimum values, required multiple).
GRAPHIC_TYPE_3D: dict[str, tuple[str, int, int]] = {
    "POINT": ("point", 3, 3),
    "MULTIPOINT": ("multipoint", 3, 3),
    "POLYLINE": ("polyline", 6, 3),
    "POLYGON": ("polygon", 9, 3),
    "ELLIPSE": ("ellipse", 12, 12),
    "ELLIPSOID": ("ellipsoid", 18, 18),
}


@dataclass(slots=True)
class _Pending:
    kind: SelectionKind
    items: list[ContentItem] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    frame_of_reference_uid: str | None = None
    regions_3d: list[dict[str, Any]] = field(default_factory=list)


def _instance(ctx: ReportContext, ref: SopReference, item: ContentItem, subset: list[str] | None = None) -> dict[str, Any] | None:
    if not ref.sop_instance_uid:
        ctx.diags.warn("no-referenced-instance", "no Referenced SOP Instance UID (0008,1155)", path=item.path, concept=item.concept, action="reference not mapped")
        return None
    inst: dict[str, Any] = {"uid": ref.sop_instance_uid}
    if ref.sop_class_uid:
        inst["sopClass"] = sop_class_coding(ref.sop_class_uid)
    subset = subset if subset is not None else [str(f) for f in ref.frames]
    if subset:
        inst["subset"] = subset
    return inst


def _selected_from(item: ContentItem) -> SopReference | None:
    for ch in item.children:
        if ch.value_type == "IMAGE" and isinstance(ch.value, SopReference):
            return ch.value
    return None


def _scoord_2d(ctx: ReportContext, item: ContentItem) -> list[dict[str, Any]]:
    """image-region-2d instances: the SELECTED FROM image, the region's coordinates copied unchanged."""
    sc = item.value
    assert isinstance(sc, SpatialCoordinates)
    ref = _selected_from(item)
    if ref is None:
        ctx.diags.warn("scoord-without-image", "SCOORD has no SELECTED FROM IMAGE child", path=item.path, concept=item.concept, action="region not mapped")
        return []
    if not all(math.isfinite(x) for x in sc.graphic_data):
        ctx.diags.warn("bad-graphic-data", "Graphic Data holds NaN or infinity, which no image region (and no JSON number) can hold", path=item.path, concept=item.concept, action="region not mapped")
        return []
    rule = GRAPHIC_TYPE_2D.get(sc.graphic_type.upper())
    n = len(sc.graphic_data)
    if rule is None or n < rule[1] or n % rule[2] or (sc.graphic_type.upper() in ("POINT", "CIRCLE", "ELLIPSE") and n != rule[1]):
        ctx.diags.warn("bad-graphic-data", f"Graphic Type {sc.graphic_type!r} with {n} Graphic Data values cannot be an R5 image region", path=item.path, concept=item.concept, action="region not mapped")
        return []
    region_type, step = rule[0], (2 if sc.graphic_type.upper() == "MULTIPOINT" else n)
    out = []
    for i in range(0, n, step):
        inst = _instance(ctx, ref, item)
        if inst is None:
            return []
        inst["imageRegion2D"] = [{"regionType": region_type, "coordinate": sc.graphic_data[i : i + step]}]
        out.append(inst)
    return out


def _scoord_3d(ctx: ReportContext, item: ContentItem, sc: SpatialCoordinates) -> list[dict[str, Any]]:
    """The region as sr2fhir's image-region-3d extension (D-51); its coordinates copied unchanged."""
    rule = GRAPHIC_TYPE_3D.get(sc.graphic_type.upper())
    n = len(sc.graphic_data)
    if not all(math.isfinite(x) for x in sc.graphic_data):
        ctx.diags.warn("bad-graphic-data", "Graphic Data holds NaN or infinity, which no image region (and no JSON number) can hold", path=item.path, concept=item.concept, action="coordinates not mapped (frameOfReferenceUid kept)")
        return []
    if rule is None or n < rule[1] or n % rule[2] or (rule[0] in ("point", "ellipse", "ellipsoid") and n != rule[1]):
        ctx.diags.warn("bad-graphic-data", f"3D Graphic Type {sc.graphic_type!r} with {n} Graphic Data values is not a region PS3.3 C.18.9.1.2 defines", path=item.path, concept=item.concept, action="coordinates not mapped (frameOfReferenceUid kept)")
        return []
    return [extensions.image_region_3d(rule[0], list(sc.graphic_data))]


def _referenced_image(ctx: ReportContext, item: ContentItem, kind: SelectionKind) -> list[dict[str, Any]]:
    ref = item.value
    if not isinstance(ref, SopReference):
        ctx.diags.warn("no-referenced-sop", "IMAGE/COMPOSITE item without a Referenced SOP Sequence", path=item.path, concept=item.concept, action="reference not mapped")
        return []
    return kind.instances(ctx, item, ref)


class Selections:
    """The ImagingSelections of one measurement group (or one measurement's own regions)."""

    def __init__(self) -> None:
        self.refs: dict[str, dict[str, Any]] = {}
        """derivedFrom slice -> Reference."""

    def derived_from(self) -> list[dict[str, Any]]:
        return list(self.refs.values())

    def overridden_by(self, own: "Selections") -> "Selections":
        merged = Selections()
        merged.refs = {**self.refs, **own.refs}
        return merged


def kind_of(item: ContentItem, *, any_concept: bool = False) -> SelectionKind | None:
    """The ImagingSelection profile a content item makes, if any.

    `any_concept` (for a NUM's own INFERRED FROM regions, D-8): any SCOORD/SCOORD3D child,
    whatever its concept name, is an Image Region.
    """
    k, vt = concepts.key(item.concept), item.value_type
    if vt is None:
        return None
    kind = (SELECTION_KINDS.get((k, vt)) or UNPROFILED_KINDS.get((k, vt))) if k else None
    if kind is None and any_concept and vt in ("SCOORD", "SCOORD3D") and item.relationship in (None, "INFERRED FROM", "CONTAINS"):
        kind = SELECTION_KINDS[(concepts.IMAGE_REGION, vt)]
    return kind


def consumes(item: ContentItem, *, any_concept: bool = False) -> bool:
    """True if `collect` takes this child into an ImagingSelection (same arguments)."""
    k = concepts.key(item.concept)
    return k in (concepts.SOURCE_IMAGE_FOR_SEGMENTATION, concepts.SOURCE_SERIES_FOR_SEGMENTATION) or kind_of(item, any_concept=any_concept) is not None


def collect(ctx: ReportContext, owner: ContentItem, site: Site | None, *, any_concept: bool = False) -> Selections:
    """Make the ImagingSelections for the selection items among `owner`'s children.

    `any_concept` (for a NUM's own INFERRED FROM regions, D-8): take any SCOORD/SCOORD3D child,
    whatever its concept name, as an Image Region.
    """
    pending: dict[str, _Pending] = {}
    source_images: list[dict[str, Any]] = []
    source_series: str | None = None
    for ch in owner.children:
        vt = ch.value_type
        k = concepts.key(ch.concept)
        if k == concepts.SOURCE_IMAGE_FOR_SEGMENTATION and vt == "IMAGE" and isinstance(ch.value, SopReference):
            inst = _instance(ctx, ch.value, ch)
            if inst:
                source_images.append(inst)
            continue
        if k == concepts.SOURCE_SERIES_FOR_SEGMENTATION and vt == "UIDREF" and isinstance(ch.value, str):
            source_series = ch.value
            continue
        kind = kind_of(ch, any_concept=any_concept)
        if kind is None:
            continue
        p = pending.setdefault(kind.slice, _Pending(kind))
        p.items.append(ch)
        if vt == "SCOORD":
            p.instances.extend(_scoord_2d(ctx, ch))
        elif vt == "SCOORD3D":
            sc = ch.value
            assert isinstance(sc, SpatialCoordinates)
            if not sc.frame_of_reference_uid:
                ctx.diags.warn("scoord3d-without-frame", "SCOORD3D without Referenced Frame of Reference UID (3006,0024)", path=ch.path, concept=ch.concept, action="region not mapped")
            elif p.frame_of_reference_uid and p.frame_of_reference_uid != sc.frame_of_reference_uid:
                ctx.diags.warn("scoord3d-frames-differ", "3D regions of one group in different frames of reference", path=ch.path, concept=ch.concept,
                               action="region not mapped: its coordinates belong to another frame of reference than the selection's")
            else:
                p.frame_of_reference_uid = sc.frame_of_reference_uid
                p.regions_3d.extend(_scoord_3d(ctx, ch, sc))
        else:
            p.instances.extend(_referenced_image(ctx, ch, kind))

    sel = Selections()
    source_ref = None
    if source_images or source_series:
        source_ref = _source_image_selection(ctx, owner, source_images, source_series, site)
    for slice_name, p in pending.items():
        if not p.instances and not p.frame_of_reference_uid:
            continue
        res = _selection(ctx, p.kind, ctx.id("imaging-selection", owner.path, p.kind.profile or p.kind.slice, source=owner.path), site)
        if p.regions_3d:
            res["extension"] = p.regions_3d
        if p.frame_of_reference_uid:
            res["frameOfReferenceUid"] = p.frame_of_reference_uid
        if p.instances:
            _set_series(ctx, res, p.instances)
            res["instance"] = p.instances
        if p.kind.focus_source_image and source_ref:
            res["focus"] = [source_ref]
        _check_profile(ctx, res, p)
        sel.refs[slice_name] = ctx.resources.add(res, _condition(res))
    return sel


def _selection(ctx: ReportContext, kind: SelectionKind, rid: str, site: Site | None) -> dict[str, Any]:
    """The elements every observation-imaging-selection shares (MAPPING 9.10)."""
    res: dict[str, Any] = {
        "resourceType": "ImagingSelection",
        "id": rid,
        "meta": {"profile": [profile_url(kind.profile)] if kind.profile else []},
        "identifier": [identity.by_id(rid)[0]],
        "status": "available",
        "subject": ctx.subject,
    }
    if kind.profile is None:
        del res["meta"]
    if ctx.service_request:
        res["basedOn"] = [ctx.service_request]
    res["code"] = {"coding": [dict(kind.code)]}
    res["derivedFrom"] = [ctx.study]
    if ctx.doc.study_instance_uid:
        res["studyUid"] = ctx.doc.study_instance_uid
    if site and site.body_structure:
        res["bodySite"] = {"reference": site.body_structure}
    return res


def _condition(res: dict[str, Any]) -> str:
    return identity.by_id(res["id"])[1]


NOWHERE = EvidenceRef(None, None, None)
"""An instance the evidence sequences do not list."""


def _set_series(ctx: ReportContext, res: dict[str, Any], instances: list[dict[str, Any]], known: str | None = None) -> None:
    """seriesUid / studyUid from the evidence sequences when all instances share them (D-12)."""
    found = {ctx.doc.header.evidence.get(i["uid"], NOWHERE) for i in instances}
    series = {f.series_uid for f in found}
    studies = {f.study_uid for f in found}
    if known and series <= {known, None}:
        res["seriesUid"] = known
    elif len(series) == 1 and None not in series:
        res["seriesUid"] = series.pop()
    if len(studies) == 1 and None not in studies:
        res["studyUid"] = studies.pop()


def _source_image_selection(
    ctx: ReportContext, owner: ContentItem, images: list[dict[str, Any]], series: str | None, site: Site | None
) -> dict[str, Any] | None:
    """source-image-for-segmentation: 121233 images, or the evidence instances of the 121232 series (D-6)."""
    if not images and series:
        images = [
            {"uid": uid, **({"sopClass": sop_class_coding(ref.sop_class_uid)} if ref.sop_class_uid else {})}
            for uid, ref in sorted(ctx.doc.header.evidence.items())
            if ref.series_uid == series
        ]
        if not images:
            ctx.diags.warn(
                "source-series-only",
                "Source series for segmentation (121232) is given without source images, and the evidence sequences list none of its instances; source-image-for-segmentation needs instance 1..*",
                path=owner.path, concept=owner.concept, action="no source-image-for-segmentation selection",
            )
            return None
    res = _selection(ctx, SOURCE_IMAGE, ctx.id("imaging-selection", owner.path, "source-image-for-segmentation", source=owner.path), site)
    _set_series(ctx, res, images, series)
    res["instance"] = images
    return ctx.resources.add(res, _condition(res))


def _check_profile(ctx: ReportContext, res: dict[str, Any], p: _Pending) -> None:
    """Where the data cannot meet a profile rule, drop the profile claim rather than emit a non-conformant claim (D-0)."""
    found = p.kind.check(res)
    if found:
        rule, problem = found
        del res["meta"]
        ctx.diags.warn(rule, f"{p.kind.profile} {problem}", path=p.items[0].path, concept=p.items[0].concept, action="ImagingSelection emitted without meta.profile")


def source_sr_content_item(ctx: ReportContext, item: ContentItem) -> dict[str, Any] | None:
    """source-sr-content-item: the SR content item an Observation came from (needs its Observation UID, D-6).

    seriesUid <- SR (0020,000E); instance.uid <- SR (0008,0018); instance.subset <- (0040,A171);
    the instance slice is chosen by the SR's SOP Class (0008,0016).
    """
    doc = ctx.doc
    if not item.observation_uid or not doc.sop_instance_uid:
        return None
    rid = ctx.id("imaging-selection", item.path, "source-sr-content-item", source=item.path)
    res: dict[str, Any] = {
        "resourceType": "ImagingSelection",
        "id": rid,
        "meta": {"profile": [profile_url("source-sr-content-item")]},
        "identifier": [identity.by_id(rid)[0]],
        "status": "available",
        "subject": ctx.subject,
    }
    if ctx.service_request:
        res["basedOn"] = [ctx.service_request]
    res["code"] = {"coding": [dict(codes.FIXED["original-source"])]}
    res["derivedFrom"] = [ctx.study]
    if doc.study_instance_uid:
        res["studyUid"] = doc.study_instance_uid
    if doc.series_instance_uid:
        res["seriesUid"] = doc.series_instance_uid
    inst: dict[str, Any] = {"uid": doc.sop_instance_uid}
    if doc.sop_class_uid:
        inst["sopClass"] = sop_class_coding(doc.sop_class_uid)
    inst["subset"] = [item.observation_uid]
    res["instance"] = [inst]
    return ctx.resources.add(res, _condition(res))
