"""Finding site: bodySite vs BodyStructure (ConceptMaps 03/04, D-19)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sr2fhir.dicom.content import Code, MeasuredValue
from tests.helpers import SHARED, Converted, codings, convert_doc, document, group, highdicom_report, item

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


def bilateral_report(tmp_path: Path, *, on_group: bool) -> Path:
    """One group whose measurement (or the group itself) has two Finding Sites, Kidney on the right and Kidney on the left."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    kidney = hd.sr.CodedConcept("64033007", "SCT", "Kidney")
    sites = [hd.sr.FindingSite(kidney, laterality=codes.SCT.Right), hd.sr.FindingSite(kidney, laterality=codes.SCT.Left)]
    return highdicom_report(tmp_path / "bilateral.dcm", measurement={"finding_sites": None if on_group else sites},
                            group={"finding_sites": sites if on_group else None})


@pytest.mark.parametrize("on_group", [False, True], ids=["measurement", "group"])
def test_every_finding_site_is_kept_with_its_own_laterality(tmp_path: Path, on_group: bool) -> None:
    """Issue 25, item 1: a bilateral finding once read as right-sided: the second Finding Site was
    dropped, in the Bundle, the export and the explain page, without a word (D-48)."""
    from sr2fhir.batch import convert_path
    from sr2fhir.export.tables import rows

    path = bilateral_report(tmp_path, on_group=on_group)
    r = convert_path(str(path))
    assert r.error is None, r.error
    (c,) = r.conversions
    resources = {x["id"]: x for x in c.resources.resources()}
    obs = [x for x in resources.values() if x["resourceType"] == "Observation" and "valueQuantity" in x]
    holder = obs[0] if not on_group else next(x for x in resources.values() if x["resourceType"] == "Observation" and "hasMember" in x)
    (bs,) = [x for x in resources.values() if x["resourceType"] == "BodyStructure"]
    assert holder["bodyStructure"]["reference"].endswith(bs["id"]) and "bodySite" not in holder
    assert [(codings(i["structure"]), codings(i.get("laterality"))) for i in bs["includedStructure"]] == [
        ([(SCT, "64033007")], [(SCT, "24028007")]), ([(SCT, "64033007")], [(SCT, "7771000")])]  # right, left
    measurement_rows = rows(c.document, c.resources.resources())["measurements"]
    assert [[(s["site"]["code"], s["laterality"]["code"]) for s in row["finding_sites"]] for row in measurement_rows] == [
        [("64033007", "24028007"), ("64033007", "7771000")]]
