"""Wrong outputs no golden digest catches (issue 25, "Tests that catch wrong output"): each test
plants one edge case in a hand-built report and asserts the output and the *set* of diagnostic
rules it raises, so that a mutant of the mapping (a `continue` turned `break`, a dropped branch,
a value mis-typed) fails here."""

from __future__ import annotations

import json
from typing import Any

from sr2fhir.batch import render
from sr2fhir.dicom.content import Code, MeasuredValue, SopReference, SpatialCoordinates
from tests.helpers import Converted, convert_doc, document, group, item

MM = Code("mm", "UCUM", "millimeter")
SUV = Code("126401", "DCM", "SUVbw")
DERIVATION = Code("121401", "DCM", "Derivation")
MAXIMUM = Code("56851009", "SCT", "Maximum")
LATERALITY = Code("272741003", "SCT", "Laterality")
RIGHT = Code("24028007", "SCT", "Right")
FINDING_SITE = Code("363698007", "SCT", "Finding Site")
KIDNEY = Code("64033007", "SCT", "Kidney")
TRACKING_UID = Code("112040", "DCM", "Tracking Unique Identifier")
CT = "1.2.840.10008.5.1.4.1.1.2"
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def num(concept: Code = SUV, *children: Any, value: str = "4.2") -> Any:
    return item("CONTAINS", "NUM", concept, MeasuredValue(value, unit=Code("{SUVbw}g/ml", "UCUM", "SUV")), list(children))


def one_measurement(c: Converted) -> dict[str, Any]:
    (obs,) = c.profile("imaging-measurement")
    return obs


def warned(c: Converted) -> set[str]:
    return {d.rule for d in c.diagnostics.items if d.severity.name == "WARNING"}


def test_a_modifier_after_a_child_that_cannot_be_a_component_is_kept() -> None:
    """SUVmax stays SUVmax: the Derivation after an IMAGE child (no component form) is a component."""
    image = item("HAS CONCEPT MOD", "IMAGE", Code("260753009", "SCT", "Source"), SopReference(CT, "1.2.3.4"))
    c = convert_doc(document(group(num(SUV, image, item("HAS CONCEPT MOD", "CODE", DERIVATION, MAXIMUM)))))
    obs = one_measurement(c)
    assert [(comp["code"]["coding"][0]["code"], comp["valueCodeableConcept"]["coding"][0]["code"]) for comp in obs["component"]] == [("121401", "56851009")]
    assert obs["code"]["text"] == "SUVbw (Maximum)"
    assert warned(c) == {"not-mapped"}


def test_a_lone_laterality_on_a_measurement_is_kept() -> None:
    c = convert_doc(document(group(num(SUV, item("HAS CONCEPT MOD", "CODE", LATERALITY, RIGHT)))))
    obs = one_measurement(c)
    assert [(comp["code"]["coding"][0]["code"], comp["valueCodeableConcept"]["coding"][0]["code"]) for comp in obs.get("component", [])] == [("272741003", "24028007")]
    assert warned(c) == set()


def test_a_measurement_site_with_a_tracking_uid_makes_its_body_structure() -> None:
    site = item("HAS CONCEPT MOD", "CODE", FINDING_SITE, KIDNEY)
    c = convert_doc(document(group(num(SUV, site, item("HAS OBS CONTEXT", "UIDREF", TRACKING_UID, "2.25.77")))))
    obs = one_measurement(c)
    body = c.resolve(obs["bodyStructure"])
    assert body["includedStructure"] == [{"structure": {"coding": [{"system": "http://snomed.info/sct", "code": "64033007", "display": "Kidney"}]}}]
    assert [i["value"] for i in body["identifier"] if i.get("system") == "urn:dicom:uid"] == ["urn:oid:2.25.77"]
    assert "bodySite" not in obs


def test_the_selection_takes_its_study_from_the_evidence() -> None:
    """An image of a prior study, listed in Pertinent Other Evidence, keeps that study's UID (not the SR's)."""
    image = item("SELECTED FROM", "IMAGE", None, SopReference(CT, "1.2.3.99"))
    region = item("CONTAINS", "SCOORD", Code("111030", "DCM", "Image Region"), SpatialCoordinates("POINT", [1.0, 2.0]), [image])
    prior = {"StudyInstanceUID": "2.25.900", "ReferencedSeriesSequence": [
        {"SeriesInstanceUID": "2.25.901", "ReferencedSOPSequence": [{"ReferencedSOPClassUID": CT, "ReferencedSOPInstanceUID": "1.2.3.99"}]}]}
    c = convert_doc(document(group(region, num()), header={"StudyInstanceUID": "2.25.3", "PertinentOtherEvidenceSequence": [prior]}))
    sel = c.one("image-region-2d")
    assert (sel["studyUid"], sel["seriesUid"]) == ("2.25.900", "2.25.901")


def test_a_selection_without_an_instance_does_not_drop_the_next() -> None:
    broken = item("CONTAINS", "IMAGE", Code("121200", "DCM", "Illustration of ROI"), SopReference(CT, None))
    good = item("CONTAINS", "IMAGE", Code("130401", "DCM", "Visual explanation"), SopReference("1.2.840.10008.5.1.4.1.1.7", "1.2.3.5"))
    c = convert_doc(document(group(broken, good, num())))
    assert not c.profile("illustration-of-roi")
    assert [i["uid"] for i in c.one("visual-explanation")["instance"]] == ["1.2.3.5"]
    assert warned(c) == {"no-referenced-instance"}


def test_time_and_datetime_modifiers_keep_their_types() -> None:
    t = item("HAS CONCEPT MOD", "TIME", Code("111526", "DCM", "DateTime Started"), "101500")
    dt = item("HAS CONCEPT MOD", "DATETIME", Code("111527", "DCM", "DateTime Ended"), "20240301101500")
    c = convert_doc(document(group(num(SUV, t, dt))))
    comps = {comp["code"]["coding"][0]["code"]: comp for comp in one_measurement(c)["component"]}
    assert comps["111526"].get("valueTime") == "10:15:00" and "valueDateTime" not in comps["111526"]
    assert comps["111527"].get("valueDateTime", "").startswith("2024-03-01T10:15:00") and "valueTime" not in comps["111527"]


def test_a_segment_reference_without_a_segment_number_has_no_subset() -> None:
    seg = item("CONTAINS", "IMAGE", Code("121191", "DCM", "Referenced Segment"), SopReference(SEG, "1.2.3.6"))
    c = convert_doc(document(group(seg, num())))
    (sel,) = [r for r in c.resources if r["resourceType"] == "ImagingSelection"]
    assert [i.get("subset") for i in sel["instance"]] in ([None], [[]]) and "None" not in json.dumps(sel)
    assert "meta" not in sel or not sel["meta"].get("profile")  # referenced-segment needs one segment number: not claimed
    assert warned(c) == {"no-segment-number", "profile-not-claimed"}


def test_an_image_item_without_a_referenced_sop_is_reported() -> None:
    c = convert_doc(document(group(item("CONTAINS", "IMAGE", Code("121200", "DCM", "Illustration of ROI"), None), num())))
    assert not [r for r in c.resources if r["resourceType"] == "ImagingSelection"]
    assert warned(c) == {"no-referenced-sop"}


def test_a_source_series_with_no_instances_in_the_evidence_is_reported() -> None:
    seg = item("CONTAINS", "IMAGE", Code("121191", "DCM", "Referenced Segment"), SopReference(SEG, "1.2.3.6", segments=[1]))
    series = item("CONTAINS", "UIDREF", Code("121232", "DCM", "Source series for segmentation"), "2.25.555")
    c = convert_doc(document(group(seg, series, num())))
    assert not c.profile("source-image-for-segmentation")
    assert "focus" not in c.one("referenced-segment")
    assert warned(c) == {"source-series-only"}


def test_a_collection_bundle_names_each_entry_by_its_id() -> None:
    c = convert_doc(document(group(num())))
    bundle = json.loads(render([c.conversion], "collection"))
    assert bundle["type"] == "collection"
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"urn:uuid:{e['resource']['id']}" for e in bundle["entry"]]
    assert all(e["resource"]["id"] and e["resource"]["id"] != "None" for e in bundle["entry"])
    transaction = json.loads(render([c.conversion], "transaction"))
    assert transaction["type"] == "transaction" and all("request" in e for e in transaction["entry"])


def test_the_measurement_method_is_its_method() -> None:
    method = item("HAS CONCEPT MOD", "CODE", Code("370129005", "SCT", "Measurement Method"), Code("258104002", "SCT", "Measured"))
    c = convert_doc(document(group(num(SUV, method))))
    assert one_measurement(c)["method"] == {"coding": [{"system": "http://snomed.info/sct", "code": "258104002", "display": "Measured"}]}
