"""TID 1500 Measurement Report: the walk from the root CONTAINER (IG mapping.md, diagram 4_1).

Root rows: observer context (TID 1001) -> performer; Imaging Measurements (126010) -> groups;
Derived Imaging Measurements (126011) -> TID 1420; Qualitative Evaluations (C0034375) -> QEs.
126011 and C0034375 are looked for under the root and, tolerated, inside 126010 (I-3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import codes
from ..dicom import concepts
from ..codes import urn_oid
from ..dicom.content import ContentItem, SRDocument
from ..diagnostics import Diagnostics
from ..fhir.bundle import ResourceSet
from ..fhir.narrative import add_narrative
from ..dicom.template import check_measurement_report
from . import devices, identity, practitioners
from ..ig_facts import PROFILES
from ..settings import Options
from .context import ReportContext, Scope, build_context, default_issued, profile_label
from .derived import derived_measurements
from .groups import measurement_group
from .imaging_observation import GroupInheritance, unmapped
from .measurements import imaging_measurement, with_own_device
from .qualitative import is_qualitative, qualitative_evaluation

# Root rows consumed where they apply (TID 1204 language, TID 1001 observer context: performer
# and participant device); everything else that produces nothing is reported.
_ROOT_CONSUMED: frozenset[tuple[str, str]] = frozenset(
    {concepts.OBSERVER_TYPE, concepts.PERSON_OBSERVER_NAME, *devices.DEVICE_OBSERVER_ROWS}
)

@dataclass(slots=True)
class Conversion:
    """The result of converting one report (``sr2fhir.Conversion``).

    Attributes
    ----------
    document : SRDocument
        The document converted.
    resources : ResourceSet
        The FHIR resources, in creation order; ``resources.resources()`` gives them as dicts.
    diagnostics : Diagnostics
        What could not be mapped, or was repaired; ``diagnostics.items``.
    sources : dict of str to list of str
        Resource id -> the content item paths it was made from.
    """

    document: SRDocument
    resources: ResourceSet
    diagnostics: Diagnostics
    sources: dict[str, list[str]] = field(default_factory=dict)
    """Resource id -> the content item paths its id was made from (the item an Observation
    maps, the group an ImagingSelection belongs to): what `sr2fhir explain` links."""

    def profile_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.resources.resources():
            for p in r.get("meta", {}).get("profile", []) or [r["resourceType"]]:
                name = p.rsplit("/", 1)[-1]
                out[name] = out.get(name, 0) + 1
        return out


def convert(doc: SRDocument, options: Options = Options(), diagnostics: Diagnostics | None = None) -> Conversion:
    """Map one SR document to FHIR resources; raises ConversionError if it is not TID 1500."""
    diags = diagnostics if diagnostics is not None else Diagnostics()
    check_measurement_report(doc, diags)
    ctx = build_context(doc, options, diags)
    ctx.equipment = devices.general_equipment(ctx)
    participant = devices.participant_device(ctx, ctx.equipment)
    performer = practitioners.document_performer(ctx) or practitioners.observer_context_performer(ctx, doc.root)
    scope = Scope(
        issued=default_issued(doc, ctx.default_zone, diags),
        device=participant or ctx.equipment,
        device_kind="participant" if participant else "equipment",
        performer=(performer,) if performer else (),
    ).with_item(ctx, doc.root)

    top: list[dict[str, Any]] = []
    for ch in doc.root.children:
        top.extend(_root_row(ctx, scope, ch))
    for sr in sorted(ctx.schemes.unresolved):
        diags.warn("unknown-coding-scheme", f"Coding Scheme Designator {sr!r} has no known URI", action=f"system {codes.UNKNOWN_SCHEME_PREFIX}{sr}; map it with --coding-scheme")
    for value in sorted(ctx.schemes.untranslated):
        diags.warn("snomed-rt-untranslated", f"SNOMED-RT code {value!r} has no SNOMED CT equivalent in PS3.16 Annex O", action=f"kept as {codes.CODING_SCHEMES['SNM3']}|{value}")
    for unit in sorted(ctx.schemes.repaired_units):
        diags.info("ucum-annotation-repaired", f"UCUM unit {unit!r} starts with an annotation that UCUM does not allow there", action="'.' inserted after the annotation, the same unit in valid UCUM (D-31)")
    if options.diagnostic_report:
        _diagnostic_report(ctx, scope, top)
    source = urn_oid(doc.sop_instance_uid) if doc.sop_instance_uid else None
    for r in ctx.resources.resources():
        prof = r.get("meta", {}).get("profile", [""])[0].rsplit("/", 1)[-1]
        add_narrative(r, profile_label(prof) if prof in PROFILES else r["resourceType"])
        if source and r["resourceType"] != "Device":
            # Provenance: the SR this resource came from (searchable as _source); Devices are
            # shared between reports and carry none (D-29).
            r.setdefault("meta", {})["source"] = source
    return Conversion(doc, ctx.resources, diags, ctx.sources)


def _root_row(ctx: ReportContext, scope: Scope, item: ContentItem) -> list[dict[str, Any]]:
    k = concepts.key(item.concept)
    if item.value_type == "CONTAINER":
        if k == concepts.IMAGING_MEASUREMENTS:
            return _imaging_measurements(ctx, scope, item)
        if k == concepts.DERIVED_IMAGING_MEASUREMENTS:
            return derived_measurements(ctx, scope, item)
        if k == concepts.QUALITATIVE_EVALUATIONS:
            return _qualitative_evaluations(ctx, scope, item)
    if k in _ROOT_CONSUMED:
        return []
    if k in concepts.STRUCTURE:
        unmapped(ctx, item, "document structure the IG does not map", clinical=False)
        for ch in item.children:  # Country of Language below Language of Content; Image Library entries
            if concepts.key(ch.concept) in concepts.STRUCTURE:
                unmapped(ctx, ch, "document structure the IG does not map", clinical=False)
        return []
    unmapped(ctx, item, "root content item not mapped by the IG")
    return []


def _imaging_measurements(ctx: ReportContext, scope: Scope, container: ContentItem) -> list[dict[str, Any]]:
    """Imaging Measurements (126010): its TID 4019 is the default device below it (ConceptMap 01)."""
    scope = with_own_device(ctx, scope.with_item(ctx, container), container)
    out: list[dict[str, Any]] = []
    for ch in container.children:
        k = concepts.key(ch.concept)
        if ch.value_type == "CONTAINER" and k == concepts.MEASUREMENT_GROUP:
            out.append(measurement_group(ctx, scope, ch))
        elif ch.value_type == "CONTAINER" and k in (concepts.DERIVED_IMAGING_MEASUREMENTS, concepts.QUALITATIVE_EVALUATIONS):
            ctx.diags.info("container-placement", "container found inside Imaging Measurements rather than under the root (I-3)", path=ch.path, concept=ch.concept, action="mapped as if under the root")
            out.extend(_root_row(ctx, scope, ch))
        elif ch.value_type == "NUM":
            ctx.diags.info("ungrouped-measurement", "NUM directly in Imaging Measurements, outside a Measurement Group (Q-13)", path=ch.path, concept=ch.concept, action="ImagingMeasurement without a group")
            ref = imaging_measurement(ctx, scope, ch, GroupInheritance())
            if ref:
                out.append(ref)
        elif k not in concepts.ALGORITHM_CODES:
            unmapped(ctx, ch)
    return out


def _qualitative_evaluations(ctx: ReportContext, scope: Scope, container: ContentItem) -> list[dict[str, Any]]:
    """Qualitative Evaluations (C0034375): each qualifying CODE/TEXT child (ConceptMap 01)."""
    scope = with_own_device(ctx, scope.with_item(ctx, container), container)
    out = []
    for ch in container.children:
        if is_qualitative(ch):
            ref = qualitative_evaluation(ctx, scope, ch, None)
            if ref:
                out.append(ref)
        elif concepts.key(ch.concept) not in concepts.ALGORITHM_CODES:
            unmapped(ctx, ch)
    return out


def _diagnostic_report(ctx: ReportContext, scope: Scope, results: list[dict[str, Any]]) -> None:
    """A DiagnosticReport grouping the top-level Observations (the IG example; D-24)."""
    doc = ctx.doc
    rid = ctx.id("diagnostic-report")
    ident, cond = identity.by_uid(doc.sop_instance_uid) if doc.sop_instance_uid else identity.by_id(rid)
    dr: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": rid, "identifier": [ident]}
    if ctx.service_request:
        dr["basedOn"] = [ctx.service_request]
    dr["status"] = ctx.status
    dr["code"] = ctx.schemes.concept(doc.root.concept) if doc.root.concept else {"text": "Imaging Measurement Report"}
    dr["subject"] = ctx.subject
    dr["effectiveDateTime"] = scope.issued
    dr["issued"] = scope.issued
    if scope.performer:
        dr["performer"] = list(scope.performer)
    if results:
        dr["result"] = results
    dr["study"] = [ctx.study]
    ctx.resources.add(dr, cond)
