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

