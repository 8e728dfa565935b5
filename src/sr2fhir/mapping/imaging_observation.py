"""The abstract `imaging-observation` profile: elements every imaging Observation shares.

Profile imaging-observation (Observation-Abstract-ImagingObservation.fsh): identifier[observationUID],
basedOn[serviceRequestRef], partOf[imagingStudyRef] 1..1, subject 1..1, issued 1..1, device 1..1;
derived-imaging-measurement re-declares the same subset. `effectiveDateTime` = `issued` as in every
IG example (D-5). `performer` from the report's person observer (D-10).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ..dicom.content import Code, ContentItem, MeasuredValue
from ..diagnostics import Severity
from ..fhir.bundle import FHIR_DECIMAL
from . import identity
from .body_structures import Site
from .context import ReportContext, Scope, profile_url
from .imaging_selections import Selections, source_sr_content_item

DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

# CID 42 Numeric Value Qualifier -> FHIR data-absent-reason (D-14).
NUMERIC_QUALIFIER_ABSENT_REASON: dict[str, str] = {
    "114000": "not-a-number",  # Not a number
    "114001": "negative-infinity",  # Negative Infinity
    "114002": "positive-infinity",  # Positive Infinity
    "114003": "error",  # Divide by zero
    "114004": "error",  # Underflow
    "114005": "error",  # Overflow
    "114006": "error",  # Measurement failure
    "114007": "not-performed",  # Measurement not attempted
    "114008": "error",  # Calculation failure
    "114009": "error",  # Value out of range
    "114010": "unknown",  # Value unknown
    "114011": "unknown",  # Value indeterminate
}


@dataclass(frozen=True, slots=True)
class GroupInheritance:
    """What a measurement group passes to its members (IG diagrams 4_6, 4_7)."""

    selections: Selections = field(default_factory=Selections)
    site: Site | None = None
    method: dict[str, Any] | None = None


def unmapped(ctx: ReportContext, item: ContentItem, why: str = "not mapped by the IG", *, clinical: bool = True) -> None:
    """Report a content item that produces nothing, so that nothing is dropped silently.

    Clinical content is a warning, shown by a default run; pure document structure (Image
    Library, Language of Content, Procedure Reported) is information, shown with -v.
    """
    sev = Severity.WARNING if clinical else Severity.INFORMATION
    ctx.diags.add(sev, "not-mapped", why, path=item.path, concept=item.concept, action="skipped")


def set_derived_from(ctx: ReportContext, obs: dict[str, Any], item: ContentItem, refs: list[dict[str, Any]]) -> None:
    """derivedFrom = `refs` plus the item's source-sr-content-item selection (if it has an Observation UID)."""
    src = source_sr_content_item(ctx, item)
    refs = refs + [src] if src else refs
    if refs:
        obs["derivedFrom"] = refs


def require_concept(ctx: ReportContext, item: ContentItem) -> Code | None:
    """The concept name a NUM needs to become an Observation (code 1..1); None, reported, if it has none."""
    if item.concept is None:
        ctx.diags.warn("num-without-concept", "NUM without a Concept Name Code Sequence", path=item.path, action="skipped")
    return item.concept


def observation_identity(ctx: ReportContext, item: ContentItem | None, rid: str) -> tuple[list[dict[str, Any]], str]:
    """Identifiers and the conditional-create query of a content-derived resource.

    With an Observation UID (0040,A171): identifier[observationUID] (system urn:dicom:uid, value
    urn:oid, D-11). Without one: a urn:uuid identifier of the deterministic id, so that posting
    the same report twice still creates nothing new (D-21).
    """
    ident, cond = identity.by_uid(item.observation_uid, "observation-uid") if item is not None and item.observation_uid else identity.by_id(rid)
    return [ident], cond


def observation(
    ctx: ReportContext,
    scope: Scope,
    item: ContentItem | None,
    rid: str,
    profile: str | None,
    code: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """The common part of an imaging Observation, and its conditional-create query."""
    identifiers, condition = observation_identity(ctx, item, rid)
    obs: dict[str, Any] = {"resourceType": "Observation", "id": rid}
    if profile:
        obs["meta"] = {"profile": [profile_url(profile)]}
    obs["identifier"] = identifiers
    if ctx.service_request:
        obs["basedOn"] = [ctx.service_request]
    obs["partOf"] = [ctx.study]
    obs["status"] = ctx.status
    obs["code"] = code
    obs["subject"] = ctx.subject
    obs["effectiveDateTime"] = scope.issued
    obs["issued"] = scope.issued
    if scope.performer:
        obs["performer"] = list(scope.performer)
    obs["device"] = scope.device
    return obs, condition


def decimal_text(text: str) -> Decimal | None:
    """A DS string as a Decimal keeping its significant digits, written as FHIR's decimal
    grammar allows (D-46); None if it is not a finite number."""
    try:
        d = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        return None
    if not d.is_finite() or (d and abs(d.adjusted()) > 300):
        return None  # beyond any measurement (and "1E+999999999" in plain notation is a gigabyte)
    if "e" in text.lower():
        # Plain notation where it says exactly the SR's digits and fits FHIR's decimal grammar
        # (at most 18 integer and 17 fraction digits; MAPPING 9.8 prefers it); else the
        # exponent form, which str(Decimal) writes with the same digits (1.5E+30, 2.001773E+9).
        plain = Decimal(format(d, "f"))
        _, digits, exponent = d.as_tuple()
        assert isinstance(exponent, int)  # finite
        invented = exponent > 0 and any(digits)  # plain notation would add zeros the SR never gave
        if not invented and FHIR_DECIMAL.fullmatch(str(plain)):
            return plain
    return d



def quantity(ctx: ReportContext, mv: MeasuredValue) -> dict[str, Any] | None:
    """valueQuantity <- Measured Value Sequence (0040,A300) (ConceptMap 04); None if no value."""
    value = decimal_text(mv.numeric) if mv.numeric else None
    if value is None and mv.floating is not None and mv.floating == mv.floating and abs(mv.floating) != float("inf"):
        value = Decimal(repr(mv.floating))
    if value is None:
        return None
    q: dict[str, Any] = {"value": value}
    if mv.unit:
        if mv.unit.meaning:
            q["unit"] = mv.unit.meaning
        if mv.unit.value.strip():
            q["system"] = ctx.schemes.system(mv.unit.scheme)
            q["code"] = ctx.schemes.unit_code(q["system"], " ".join(mv.unit.value.split()))
    return q


def absent_reason(mv: MeasuredValue) -> dict[str, Any]:
    """dataAbsentReason for a NUM without a value, from its Numeric Value Qualifier (D-14)."""
    q: Code | None = mv.qualifier
    code = NUMERIC_QUALIFIER_ABSENT_REASON.get(q.value, "unknown") if q and q.scheme == "DCM" else "unknown"
    cc: dict[str, Any] = {"coding": [{"system": DATA_ABSENT, "code": code}]}
    if q and q.meaning:
        cc["text"] = q.meaning
    return cc
