"""Report context (IG ConceptMaps 00 and 02): what every resource of one report shares.

Patient / ImagingStudy / ServiceRequest references, status from the Preliminary Flag, the default
`issued` time, and the inherited scope (time, device, performer) passed down the content tree.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .. import datetimes
from ..codes import CodingSchemes
from ..ig_facts import PROFILES
from ..dicom.content import ContentItem, SRDocument
from ..dicom.header import SRHeader
from ..diagnostics import Diagnostics
from ..fhir.bundle import ResourceSet
from ..fhir.ids import resource_id
from ..fhir.references import conditional
from ..settings import Options
from . import references

def profile_url(profile_id: str) -> str:
    """The canonical URL of an IG profile (ig_facts, generated from the IG)."""
    return PROFILES[profile_id][0]


@functools.cache
def profile_label(profile_id: str) -> str:
    """A profile's short name for narratives: its IG title without the resource type, "DICOM (SR)"
    and "Mapping (to X)" ("Observation - DICOM SR Imaging Measurement Mapping to Observation" ->
    "Imaging Measurement")."""
    title = PROFILES[profile_id][1].split(" - ", 1)[-1]
    return re.sub(r"^DICOM (SR )?|( Mapping( to \w+)?)$", "", title)


@dataclass(frozen=True, slots=True)
class Scope:
    """Values inherited down the content tree (IG diagrams 4_3..4_7; PS3.3 C.17.5)."""

    issued: str
    device: dict[str, Any]
    device_kind: str
    """'equipment', 'participant' or 'algorithm': DerivedImagingMeasurement may not use a participant device."""
    performer: tuple[dict[str, Any], ...] = ()

    def with_item(self, ctx: "ReportContext", item: ContentItem) -> "Scope":
        """The scope below `item`: its own Observation DateTime (0040,A032) overrides."""
        if item.observation_datetime:
            t = datetimes.instant(item.observation_datetime, ctx.default_zone)
            if t:
                return replace(self, issued=t)
            ctx.diags.warn("bad-datetime", "Observation DateTime (0040,A032) is not a valid DT", path=item.path, concept=item.concept, action="inherited time used")
        return self


@dataclass(slots=True)
class ReportContext:
    """Everything the mapping of one report needs."""

    doc: SRDocument
    options: Options
    diags: Diagnostics
    schemes: CodingSchemes
    resources: ResourceSet
    subject: dict[str, Any]
    study: dict[str, Any]
    service_request: dict[str, Any] | None
    status: str
    default_zone: str
    key: str
    """The report's identity for ids: its SOP Instance UID."""
    equipment: dict[str, Any] = field(default_factory=dict)
    """Reference to the report's GeneralEquipment Device (set once it exists)."""

    sources: dict[str, list[str]] = field(default_factory=dict)
    """Resource id -> the content item it was made from (Conversion.sources)."""

    def id(self, *parts: str, source: str | None = None) -> str:
        """The id of a resource of this report; `source`: the content item path it is made from."""
        rid = resource_id(self.key, *parts)
        if source is not None:
            self.sources.setdefault(rid, [source])
        return rid


def build_context(doc: SRDocument, options: Options, diags: Diagnostics) -> ReportContext:
    h = doc.header
    zone = datetimes.offset(h.timezone_offset) or options.default_timezone
    if not doc.sop_instance_uid:
        diags.warn("no-sop-instance-uid", "the SR has no SOP Instance UID (0008,0018)", action="ids derived from the file name")
    return ReportContext(
        doc=doc,
        options=options,
        diags=diags,
        schemes=CodingSchemes(h.coding_schemes, options.coding_schemes),
        resources=ResourceSet(),
        subject=conditional(references.patient_reference(h, diags), options.conditional_references),
        study=conditional(references.imaging_study_reference(doc.study_instance_uid, diags), options.conditional_references),
        service_request=conditional(references.service_request_reference(h, diags), options.conditional_references),
        status=observation_status(h, diags),
        default_zone=zone,
        key=doc.sop_instance_uid or f"file:{doc.source}",
    )


def observation_status(header: SRHeader, diags: Diagnostics) -> str:
    """Observation.status <- Preliminary Flag (0040,A496), lowercased (ConceptMap 02); D-4 if absent."""
    flag = header.preliminary_flag
    if flag in ("PRELIMINARY", "FINAL"):
        return flag.lower()
    if flag:
        diags.warn("preliminary-flag", f"Preliminary Flag {flag!r} is neither PRELIMINARY nor FINAL", action="status 'final'")
    if header.completion_flag == "PARTIAL":
        return "preliminary"
    return "final"


def default_issued(doc: SRDocument, zone: str, diags: Diagnostics) -> str:
    """Content Date/Time (0008,0023/0033), else Instance Creation Date/Time (example.md step 1; D-5)."""
    h = doc.header
    for da, tm in ((h.content_date, h.content_time), (h.instance_creation_date, h.instance_creation_time)):
        t = datetimes.instant(datetimes.combine(da, tm), zone)
        if t:
            return t
    diags.warn("no-content-datetime", "the SR has neither Content Date/Time nor Instance Creation Date/Time", action="issued set to 1970-01-01T00:00:00Z so that Observations stay valid")
    return "1970-01-01T00:00:00Z"
