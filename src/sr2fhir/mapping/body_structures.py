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
    """The Site of `owner` (a group or a NUM) from its Finding Site children; None if it has none.

    One plain site is `bodySite`; a qualified one, or several (a bilateral finding: `bodySite`
    holds one concept), a BodyStructure with one `includedStructure` per site (D-48)."""
    site_items = [ch for ch in owner.children if concepts.key(ch.concept) == concepts.FINDING_SITE]
    for empty in (ch for ch in site_items if not isinstance(ch.value, Code)):
        ctx.diags.warn("finding-site-empty", "Finding Site has no coded value", path=empty.path, concept=empty.concept, action="not mapped")
    sites = [ch for ch in site_items if isinstance(ch.value, Code)]
    if not sites:
        return None
    # Laterality and modifiers are children of the Finding Site (TID 1419 rows 3-4); some
    # writers put them beside it, which we accept too where there is one site to give them to.
    beside = (_code_child(owner, concepts.LATERALITY), _code_child(owner, concepts.TOPOGRAPHICAL_MODIFIER))
    if len(sites) > 1 and any(beside):
        ctx.diags.warn("site-modifier-ambiguous", f"Laterality or Topographical modifier beside {len(sites)} Finding Sites belongs to none of them in particular",
                       path=owner.path, concept=owner.concept, action="not attached to a site")
        beside = ([], [])
    included = [_included(ctx, item, beside) for item in sites]
    if len(included) == 1 and set(included[0]) == {"structure"} and not tracking:
        return Site(body_site=included[0]["structure"])
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
        "includedStructure": included,
        "patient": ctx.subject,
    }
    return Site(body_structure=ctx.resources.add(res, condition))


def _included(ctx: ReportContext, site: ContentItem, beside: tuple[list[Code], list[Code]]) -> dict[str, Any]:
    """One includedStructure (dicom-sr-finding-site): the site, its laterality and modifiers."""
    assert isinstance(site.value, Code)
    laterality = _code_child(site, concepts.LATERALITY) or beside[0]
    modifiers = _code_child(site, concepts.TOPOGRAPHICAL_MODIFIER) or beside[1]
    included: dict[str, Any] = {"structure": ctx.schemes.concept(site.value)}
    if laterality:
        included["laterality"] = ctx.schemes.concept(laterality[0])
    if modifiers:
        included["qualifier"] = [ctx.schemes.concept(m) for m in modifiers]
    return included
