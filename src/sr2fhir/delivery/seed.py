"""`sr2fhir push --seed`: create the Patient, ImagingStudy and ServiceRequest an SR refers to.

The IG assumes these already exist on the destination server (ConceptMap 00). A test or demo
server does not have them; `seed` creates minimal ones carrying exactly the identifiers that the
report's references search by (fhir/references.py), and nothing else of the patient's: no name,
no birth date. Every entry is a conditional create, so seeding twice creates nothing twice.
"""

from __future__ import annotations

from typing import Any

from ..dicom.content import SRDocument
from ..diagnostics import Diagnostics
from ..fhir.ids import full_url, resource_id
from ..fhir.references import condition
from ..mapping import references


def _entry(resource: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    resource["identifier"] = [ref["identifier"]]
    return {
        "fullUrl": full_url(resource["id"]),
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], "ifNoneExist": condition(ref["identifier"])},
    }


def seed_bundle(doc: SRDocument) -> dict[str, Any] | None:
    """A transaction creating the report's Patient, ImagingStudy and (with an accession) ServiceRequest.

    None when the SR has no Patient ID or no Study Instance UID: nothing could refer to them.
    """
    diags = Diagnostics()
    patient_ref = references.patient_reference(doc.header, diags)
    study_ref = references.imaging_study_reference(doc.study_instance_uid, diags)
    if "identifier" not in patient_ref or "identifier" not in study_ref:
        return None
    key = doc.sop_instance_uid or doc.source
    patient: dict[str, Any] = {"resourceType": "Patient", "id": resource_id("seed", "Patient", key), "active": True}
    subject = {"reference": full_url(patient["id"])}
    study: dict[str, Any] = {"resourceType": "ImagingStudy", "id": resource_id("seed", "ImagingStudy", key), "status": "available", "subject": subject}
    entries = [_entry(patient, patient_ref), _entry(study, study_ref)]
    order_ref = references.service_request_reference(doc.header, diags)
    if order_ref is not None:
        order: dict[str, Any] = {"resourceType": "ServiceRequest", "id": resource_id("seed", "ServiceRequest", key), "status": "active", "intent": "order", "subject": subject}
        entries.append(_entry(order, order_ref))
        study["basedOn"] = [{"reference": full_url(order["id"])}]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
