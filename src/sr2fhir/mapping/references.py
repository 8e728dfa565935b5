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
from ..dicom.header import Issuer, SRHeader

_ABSOLUTE_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")


def issuer_system(issuer: Issuer | None, diags: Diagnostics, what: str) -> tuple[str | None, str | None]:
    """(system, assigner display) from an issuer (Universal Entity ID + type, Local Namespace).

    URI -> as is if absolute; ISO -> urn:oid; anything else -> no system (docs/decisions.md D-22).
    """
    if issuer is None:
        return None, None
    local, universal, utype = issuer.local, issuer.universal, issuer.universal_type
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


def patient_reference(header: SRHeader, diags: Diagnostics) -> dict[str, Any]:
    """Reference(Patient) by Patient ID (0010,0020) and its issuer (0010,0021)/(0010,0024)."""
    pid = header.patient_id
    system, assigner = issuer_system(header.patient_id_issuer, diags, "Patient ID")
    # Issuer of Patient ID (0010,0021) names the issuer better than a non-URI universal id.
    assigner = header.issuer_of_patient_id or assigner
    if not pid:
        diags.warn("no-patient-id", "the SR has no Patient ID (0010,0020)", action="subject is a display-only reference that no server can resolve")
        return {"type": "Patient", "display": "Patient ID absent from the DICOM SR"}
    return {"type": "Patient", "identifier": _identifier(None, system, pid, assigner)}


def imaging_study_reference(study_uid: str | None, diags: Diagnostics) -> dict[str, Any]:
    """Reference(ImagingStudy) by Study Instance UID (slice partOf[imagingStudyRef])."""
    if not study_uid:
        diags.warn("no-study-uid", "the SR has no Study Instance UID (0020,000D)", action="partOf is a display-only reference")
        return {"type": "ImagingStudy", "display": "Study Instance UID absent from the DICOM SR"}
    return {
        "type": "ImagingStudy",
        "identifier": {"type": {"coding": [dict(FIXED["study-instance-uid"])]}, "system": DICOM_UID, "value": urn_oid(study_uid)},
    }


def service_request_reference(header: SRHeader, diags: Diagnostics) -> dict[str, Any] | None:
    """Reference(ServiceRequest) by Accession Number (0008,0050); None when there is none."""
    acc = header.accession_number
    if not acc:
        return None
    system, assigner = issuer_system(header.accession_issuer, diags, "Accession Number")
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
