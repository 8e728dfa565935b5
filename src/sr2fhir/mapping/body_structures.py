"""Finding site: Observation.bodySite or a BodyStructure (profile dicom-sr-finding-site).

ConceptMaps 03/04 (FHIR-47941): a Finding Site (SCT 363698007) with Laterality (SCT 272741003)
or Topographical modifier (SCT 106233006) becomes a BodyStructure; a plain one goes to
`bodySite`. The worked example also makes a BodyStructure for a plain site when the group has
tracking identifiers (TID 4108 rows: 112039, 112040), which we follow (D-19). Never both (obs-8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..dicom import concepts
from ..codes import DICOM_UID, FIXED, urn_oid
from ..dicom.content import Code, ContentItem
from . import identity
from .context import ReportContext, profile_url


@dataclass(frozen=True, slots=True)
class Site:
    """What an Observation carries for its finding site: exactly one of the two."""

    body_site: dict[str, Any] | None = None
    body_structure: dict[str, Any] | None = None

    def apply(self, obs: dict[str, Any]) -> None:
        if self.body_structure:
            obs["bodyStructure"] = self.body_structure
        elif self.body_site:
            obs["bodySite"] = self.body_site


@dataclass(frozen=True, slots=True)
class Tracking:
    """TID 4108 Tracking Identifier (112039) and Tracking Unique Identifier (112040)."""

    identifier: str | None = None
    uid: str | None = None

    @classmethod
    def of(cls, item: ContentItem) -> "Tracking":
        ident = uid = None
        for ch in item.children:
            k = concepts.key(ch.concept)
            if k == concepts.TRACKING_IDENTIFIER and isinstance(ch.value, str):
                ident = ch.value
            elif k == concepts.TRACKING_UID and isinstance(ch.value, str):
                uid = ch.value
        return cls(ident, uid)

    def __bool__(self) -> bool:
        return bool(self.identifier or self.uid)

    def identifiers(self) -> list[dict[str, Any]]:
        """identifier[trackingIdentifier] and identifier[trackingUid] (dicom-sr-finding-site; D-34)."""
        out: list[dict[str, Any]] = []
        if self.identifier:
            out.append({"type": {"coding": [dict(FIXED["tracking-identifier"])]}, "value": self.identifier})
        if self.uid:
            out.append({"type": {"coding": [dict(FIXED["tracking-uid"])]}, "system": DICOM_UID, "value": urn_oid(self.uid)})
        return out


def track_on_observation(ctx: ReportContext, obs: dict[str, Any], owner: ContentItem, tracking: Tracking, site: Site | None) -> None:
    """Tracking ids that no BodyStructure of `owner`'s own carries go to the Observation's identifiers.

    A BodyStructure needs a Finding Site (includedStructure 1..*); without one, the tracking
    identifier and UID become `Observation.identifier` entries typed DCM 112039 / 112040, which the
    open, type-discriminated identifier slicing of the imaging-observation profiles allows (D-34).
    """
    if not tracking or (site is not None and site.body_structure is not None):
        return
    obs["identifier"].extend(tracking.identifiers())
    ctx.diags.info(
        "tracking-on-observation",
        "tracking identifiers without a Finding Site of their own: no BodyStructure can hold them (includedStructure 1..*)",
        path=owner.path, concept=owner.concept, action="Observation.identifier typed DCM 112039 / 112040 (D-34)",
    )


def _code_child(item: ContentItem, k: tuple[str, str]) -> list[Code]:
    return [ch.value for ch in item.children if concepts.key(ch.concept) == k and isinstance(ch.value, Code)]


def finding_site(ctx: ReportContext, owner: ContentItem, tracking: Tracking = Tracking()) -> Site | None:
    """The Site of `owner` (a group or a NUM) from its Finding Site child; None if it has none."""
    site_item = next((ch for ch in owner.children if concepts.key(ch.concept) == concepts.FINDING_SITE), None)
    if site_item is None or not isinstance(site_item.value, Code):
        if site_item is not None:
            ctx.diags.warn("finding-site-empty", "Finding Site has no coded value", path=site_item.path, concept=site_item.concept, action="not mapped")
        return None
    # Laterality and modifiers are children of the Finding Site (TID 1419 rows 3-4); some
    # writers put them beside it, which we accept too.
    laterality = _code_child(site_item, concepts.LATERALITY) or _code_child(owner, concepts.LATERALITY)
    modifiers = _code_child(site_item, concepts.TOPOGRAPHICAL_MODIFIER) or _code_child(owner, concepts.TOPOGRAPHICAL_MODIFIER)
    structure = ctx.schemes.concept(site_item.value)
    if not (laterality or modifiers or tracking):
        return Site(body_site=structure)
    included: dict[str, Any] = {"structure": structure}
    if laterality:
        included["laterality"] = ctx.schemes.concept(laterality[0])
    if modifiers:
        included["qualifier"] = [ctx.schemes.concept(m) for m in modifiers]
    # A tracking UID names one lesion: one BodyStructure for it (D-19).
    rid = ctx.id("body-structure", "tracking-uid", tracking.uid) if tracking.uid else ctx.id("body-structure", owner.path, source=owner.path)
    identifiers = tracking.identifiers()
    if tracking.uid:
        condition = identity.by_uid(tracking.uid)[1]
    else:
        ident, condition = identity.by_id(rid)
        identifiers.append(ident)
    res = {
        "resourceType": "BodyStructure",
        "id": rid,
        "meta": {"profile": [profile_url("dicom-sr-finding-site")]},
        "identifier": identifiers,
        "includedStructure": [included],
        "patient": ctx.subject,
    }
    return Site(body_structure=ctx.resources.add(res, condition))
