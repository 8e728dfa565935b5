"""ConceptMap 00: references to the pre-existing Patient, ImagingStudy and ServiceRequest.

The IG assumes these exist on the destination server (ConceptMap 00) and references them by
identifier (example.md "search, else logical reference"); without a server we emit logical
references with `Reference.type` set, so that the `type`-discriminated slices
`partOf[imagingStudyRef]` and `basedOn[serviceRequestRef]` match (docs/decisions.md D-1).
"""

from __future__ import annotations

import re
from typing import Any

from ..codes import DICOM_UID, FIXED, urn_oid
from ..diagnostics import Diagnostics
from ..dicom.content import first

_ABSOLUTE_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")


def issuer_system(qualifiers: list[dict[str, Any]] | None, diags: Diagnostics, what: str) -> tuple[str | None, str | None]:
    """(system, assigner display) from an issuer sequence (Universal Entity ID + type, Local Namespace).

    URI -> as is if absolute; ISO -> urn:oid; anything else -> no system (docs/decisions.md D-22).
    """
    if not qualifiers:
        return None, None
    q = qualifiers[0] if isinstance(qualifiers[0], dict) else {}
    local = first(q.get("LocalNamespaceEntityID"))
    universal = first(q.get("UniversalEntityID"))
    utype = (first(q.get("UniversalEntityIDType")) or "").upper()
    system = None
    if universal:
        if utype == "ISO" and re.fullmatch(r"[0-9.]+", universal):
            system = urn_oid(universal)
        elif utype in ("URI", "URL") and _ABSOLUTE_URI.match(universal):
            system = universal
        else:
            diags.warn(
                "issuer-not-uri",
                f"{what} issuer Universal Entity ID of type {utype or '(none)'} is not an absolute URI or ISO OID",
                action="identifier emitted without system; issuer kept as assigner.display",
            )
            local = local or f"{universal}"
            return None, str(local)
    return system, (str(local) if local else None)


def patient_reference(header: dict[str, Any], diags: Diagnostics) -> dict[str, Any]:
    """Reference(Patient) by Patient ID (0010,0020) and its issuer (0010,0021)/(0010,0024)."""
    pid = first(header.get("PatientID"))
    system, assigner = issuer_system(header.get("IssuerOfPatientIDQualifiersSequence"), diags, "Patient ID")
    # Issuer of Patient ID (0010,0021) names the issuer better than a non-URI universal id.
    assigner = first(header.get("IssuerOfPatientID")) or assigner
    if not pid:
        diags.error("no-patient-id", "the SR has no Patient ID (0010,0020)", action="subject is a display-only reference that no server can resolve")
        return {"type": "Patient", "display": "Patient ID absent from the DICOM SR"}
    return {"type": "Patient", "identifier": _identifier(None, system, pid, assigner)}


def imaging_study_reference(study_uid: str | None, diags: Diagnostics) -> dict[str, Any]:
    """Reference(ImagingStudy) by Study Instance UID (slice partOf[imagingStudyRef])."""
    if not study_uid:
        diags.error("no-study-uid", "the SR has no Study Instance UID (0020,000D)", action="partOf is a display-only reference")
        return {"type": "ImagingStudy", "display": "Study Instance UID absent from the DICOM SR"}
    return {
        "type": "ImagingStudy",
        "identifier": {"type": {"coding": [dict(FIXED["study-instance-uid"])]}, "system": DICOM_UID, "value": urn_oid(study_uid)},
    }


def service_request_reference(header: dict[str, Any], diags: Diagnostics) -> dict[str, Any] | None:
    """Reference(ServiceRequest) by Accession Number (0008,0050); None when there is none."""
    acc = first(header.get("AccessionNumber"))
    if not acc:
        return None
    system, assigner = issuer_system(header.get("IssuerOfAccessionNumberSequence"), diags, "Accession Number")
    return {"type": "ServiceRequest", "identifier": _identifier("accession-id", system, acc, assigner)}


def _identifier(type_code: str | None, system: str | None, value: str, assigner: str | None) -> dict[str, Any]:
    ident: dict[str, Any] = {}
    if type_code:
        ident["type"] = {"coding": [dict(FIXED[type_code])]}
    if system:
        ident["system"] = system
    ident["value"] = value
    if assigner:
        ident["assigner"] = {"display": assigner}
    return ident
