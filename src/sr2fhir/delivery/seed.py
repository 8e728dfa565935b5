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


def seed_bundle(doc: SRDocument, notes: list[str] | None = None) -> dict[str, Any] | None:
    """A transaction creating the report's Patient, ImagingStudy and (with an accession) ServiceRequest.

    What the SR cannot identify is not seeded, and `notes` says why: without a Patient ID the
    report's subject is display-only, and the ImagingStudy and ServiceRequest (whose `subject` is
    1..1) get the same display-only subject; without a Study Instance UID there is no ImagingStudy
    to seed. None when nothing could be seeded.
    """
    diags = Diagnostics()
    said = notes if notes is not None else []
    patient_ref = references.patient_reference(doc.header, diags)
    study_ref = references.imaging_study_reference(doc.study_instance_uid, diags)
    order_ref = references.service_request_reference(doc.header, diags)
    key = doc.sop_instance_uid or doc.source
    entries = []
    subject: dict[str, Any] = {"display": patient_ref.get("display", "")}
    if "identifier" in patient_ref:
        patient: dict[str, Any] = {"resourceType": "Patient", "id": resource_id("seed", "Patient", key), "active": True}
        subject = {"reference": full_url(patient["id"])}
        entries.append(_entry(patient, patient_ref))
    else:
        said.append("seed: the SR has no Patient ID (0010,0020), so no Patient is seeded; the report's subject is display-only")
    study: dict[str, Any] | None = None
    if "identifier" in study_ref:
        study = {"resourceType": "ImagingStudy", "id": resource_id("seed", "ImagingStudy", key), "status": "available", "subject": subject}
        entries.append(_entry(study, study_ref))
    else:
        said.append("seed: the SR has no Study Instance UID (0020,000D), so no ImagingStudy is seeded; the report's partOf is display-only")
    if order_ref is not None:
        order: dict[str, Any] = {"resourceType": "ServiceRequest", "id": resource_id("seed", "ServiceRequest", key), "status": "active", "intent": "order", "subject": subject}
        entries.append(_entry(order, order_ref))
        if study is not None:
            study["basedOn"] = [{"reference": full_url(order["id"])}]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries} if entries else None
