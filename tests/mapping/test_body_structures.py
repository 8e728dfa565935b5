"""Finding site: bodySite vs BodyStructure (ConceptMaps 03/04, D-19)."""

from __future__ import annotations

from typing import Any

from sr2fhir.dicom.content import Code, MeasuredValue
from tests.helpers import SHARED, Converted, codings, convert_doc, document, group, item

SCT = "http://snomed.info/sct"


def test_sites(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1410_planar_regions"]
    expected = manifest["fixtures"]["tid1410_planar_regions"]["groups"]
    for g, exp in zip(c.profile("imaging-measurement-group"), expected):
        assert not ("bodySite" in g and "bodyStructure" in g)  # obs-8
        if exp["site"] is None:
            assert "bodySite" not in g and "bodyStructure" not in g
            continue
        # Every fixture group has tracking ids, so a site always makes a BodyStructure (D-19).
        bs = c.resolve(g["bodyStructure"])
        inc = bs["includedStructure"][0]
        assert codings(inc["structure"]) == [(SCT, exp["site"]["site"])]
        assert codings(inc.get("laterality")) == ([(SCT, exp["site"]["laterality"])] if "laterality" in exp["site"] else [])
        assert [codings(q)[0] for q in inc.get("qualifier", [])] == ([(SCT, exp["site"]["modifier"])] if "modifier" in exp["site"] else [])
        ids = {i["type"]["coding"][0]["code"]: i for i in bs["identifier"] if "type" in i}
        assert ids["112039"]["value"] == exp["tracking_identifier"]
        assert ids["112040"] == {"type": ids["112040"]["type"], "system": "urn:dicom:uid", "value": "urn:oid:" + exp["tracking_uid"]}
        assert bs["patient"] == g["subject"]
        sel = c.resolve(g["derivedFrom"][0])
        assert sel["bodySite"] == {"reference": g["bodyStructure"]}


def test_plain_site_without_tracking_goes_to_bodysite() -> None:
    from sr2fhir.dicom.content import Code
    from tests.helpers import convert_doc, document, group, item

    site = item("HAS CONCEPT MOD", "CODE", Code("363698007", "SCT", "Finding Site"), Code("39607008", "SCT", "Lung"))
    c = convert_doc(document(group(site)))
    g = c.one("imaging-measurement-group")
    assert codings(g["bodySite"]) == [(SCT, "39607008")] and "bodyStructure" not in g and not c.of_type("BodyStructure")


TRACKING_ID = Code("112039", "DCM", "Tracking Identifier")
TRACKING_UID = Code("112040", "DCM", "Tracking Unique Identifier")


def test_tracking_ids_without_a_site_go_to_the_observation() -> None:
    """Issue 9.3 / D-34: group and NUM tracking ids without a Finding Site are kept, typed, on the Observation."""
    num = item("CONTAINS", "NUM", Code("81827009", "SCT", "Diameter"), MeasuredValue("4", unit=Code("mm", "UCUM", "mm")),
               [item("HAS OBS CONTEXT", "UIDREF", TRACKING_UID, "2.25.500")])
    doc = document(group(item("HAS OBS CONTEXT", "TEXT", TRACKING_ID, "Lesion 7"), item("HAS OBS CONTEXT", "UIDREF", TRACKING_UID, "2.25.400"), num))
    c = convert_doc(doc)
    g = c.one("imaging-measurement-group")
    m = c.one("imaging-measurement")
    dcm = "http://dicom.nema.org/resources/ontology/DCM"
    assert g["identifier"][1:] == [
        {"type": {"coding": [{"system": dcm, "code": "112039", "display": "Tracking Identifier"}]}, "value": "Lesion 7"},
        {"type": {"coding": [{"system": dcm, "code": "112040", "display": "Tracking Unique Identifier"}]}, "system": "urn:dicom:uid", "value": "urn:oid:2.25.400"},
    ]
    assert m["identifier"][1:] == [{"type": {"coding": [{"system": dcm, "code": "112040", "display": "Tracking Unique Identifier"}]}, "system": "urn:dicom:uid", "value": "urn:oid:2.25.500"}]
    assert not c.of_type("BodyStructure")
    # Still conformant: the identifier slicing is open and discriminated by type.
    from sr2fhir.fhir.ids import full_url
    from sr2fhir.validation import validate_resources

    report = validate_resources(c.resources, {full_url(r["id"]): r for r in c.resources}, ig=str(SHARED / "ig-package"))
    assert report.ok and not report.findings, [f.text() for f in report.findings]
