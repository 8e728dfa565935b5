"""push --seed: the pre-existing resources a report refers to, and nothing of the patient's but the ID."""

from __future__ import annotations

from typing import Any

from sr2fhir import read
from sr2fhir.delivery.seed import seed_bundle
from tests.helpers import FIXTURES, transaction_bundles, walk_json


def test_seed_answers_exactly_the_reports_conditional_references(manifest: dict[str, Any]) -> None:
    report = FIXTURES / "tid1501_containers.dcm"
    seed = seed_bundle(read(report)[0])
    assert seed is not None
    by_type = {e["resource"]["resourceType"]: e for e in seed["entry"]}
    assert set(by_type) == {"Patient", "ImagingStudy", "ServiceRequest"}
    # What the report's references search for is what the seeded resources are created under.
    refs = {n["reference"] for n in walk_json(transaction_bundles(report)[0]) if isinstance(n, dict) and "?" in str(n.get("reference", ""))}
    assert refs == {f"{t}?{e['request']['ifNoneExist']}" for t, e in by_type.items()}
    patient = by_type["Patient"]["resource"]
    assert patient["identifier"] == [{"value": manifest["patient"]["PatientID"]}]
    assert set(patient) == {"resourceType", "id", "active", "identifier"}  # no name, no birth date
    assert by_type["ServiceRequest"]["resource"]["identifier"][0]["value"] == manifest["accession"]
    study = by_type["ImagingStudy"]["resource"]
    assert study["identifier"][0]["value"] == f"urn:oid:{manifest['study']}"
    assert study["subject"]["reference"] == by_type["Patient"]["fullUrl"]



def test_an_sr_without_a_patient_id_still_seeds_its_study_and_order() -> None:
    """Issue 27.4: --seed created nothing for an SR without a Patient ID, so the push then failed on the missing ImagingStudy."""
    from tests.helpers import document

    notes: list[str] = []
    seed = seed_bundle(document(header={"PatientID": "", "AccessionNumber": "ACC-9"}), notes)
    assert seed is not None
    by_type = {e["resource"]["resourceType"]: e["resource"] for e in seed["entry"]}
    assert set(by_type) == {"ImagingStudy", "ServiceRequest"}
    # subject is 1..1 in both: the report's own display-only subject, never a made-up Patient.
    assert all(set(r["subject"]) == {"display"} for r in by_type.values())
    assert by_type["ImagingStudy"]["identifier"][0]["value"] == "urn:oid:2.25.3"
    assert notes == ["seed: the SR has no Patient ID (0010,0020), so no Patient is seeded; the report's subject is display-only"]


def test_an_sr_without_a_study_uid_seeds_no_study() -> None:
    from dataclasses import replace

    from tests.helpers import document

    notes: list[str] = []
    seed = seed_bundle(replace(document(), study_instance_uid=None), notes)
    assert seed is not None and [e["resource"]["resourceType"] for e in seed["entry"]] == ["Patient"]
    assert len(notes) == 1 and "no Study Instance UID (0020,000D)" in notes[0]
    assert seed_bundle(replace(document(header={"PatientID": ""}), study_instance_uid=None)) is None
