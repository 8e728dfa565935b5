"""The research tables (export/tables.py) against what the collection Bundle says (issue 15).

The expected values are read here straight off the Bundle's resources, with a reading of its
own (category codes, valueQuantity, components, derivedFrom, imageRegion2D), and the report
keys straight off the SR with pydicom.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pydicom
import pytest

from sr2fhir import Options
from sr2fhir.batch import convert_path
from sr2fhir.export.tables import SCHEMAS, TABLES, rows
from tests.helpers import FIXTURES, IG_EXAMPLE, shared_files

INPUTS = [IG_EXAMPLE, *sorted(FIXTURES.glob("*.dcm")), *shared_files("tid1500")]


def category(o: dict[str, Any]) -> str | None:
    return next((c["code"] for cat in o.get("category", []) for c in cat.get("coding", [])), None)


def first(cc: dict[str, Any] | None) -> tuple[Any, ...] | None:
    c = (cc or {}).get("coding", [None])[0]
    return (c.get("code"), c.get("system"), c.get("display")) if c else None


def triple(d: dict[str, Any] | None) -> tuple[Any, ...] | None:
    return (d["code"], d["system"], d["display"]) if d else None


def ref_id(ref: dict[str, Any]) -> str:
    return ref["reference"].removeprefix("urn:uuid:")


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_table_rows_say_what_the_bundle_says(path: Path) -> None:
    r = convert_path(str(path), Options(conditional_references=False))
    assert r.error is None
    [c] = r.conversions
    resources = c.resources.resources()
    tables = rows(c.document, resources)
    for name in TABLES:  # every row fits its table's schema
        pa.Table.from_pylist(tables[name], schema=SCHEMAS[name])

    if path.suffix == ".dcm":
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        keys = {(str(ds.SOPInstanceUID), str(ds.StudyInstanceUID), str(ds.get("PatientID", "")) or None)}
    else:
        keys = {(c.document.sop_instance_uid, c.document.study_instance_uid, c.document.header.patient_id)}
    for name in TABLES:
        for row in tables[name]:
            if name not in ("failures",):
                assert (row["sop_instance_uid"], row["study_instance_uid"], row["patient_id"]) in keys, name
                assert row["source"] == str(path), name  # every row names its input (issue 27.6)

    obs = [o for o in resources if o["resourceType"] == "Observation"]
    by_id = {x["id"]: x for x in resources}
    groups = [o for o in obs if category(o) == "125007"]
    assert [g["fhir_id"] for g in tables["measurement_groups"]] == [g["id"] for g in groups]
    assert [g["member_fhir_ids"] for g in tables["measurement_groups"]] == [[ref_id(m) for m in g.get("hasMember", [])] for g in groups]

    numeric = [o for o in obs if category(o) in (None, "126011")]
    got = {row["fhir_id"]: row for t in ("measurements", "derived_measurements") for row in tables[t]}
    assert set(got) == {o["id"] for o in numeric}
    for o in numeric:
        row = got[o["id"]]
        q = o.get("valueQuantity")
        assert row["value"] == (float(q["value"]) if q else None) and row["value_exact"] == (str(q["value"]) if q else None)
        assert triple(row["unit"]) == ((q["code"], q["system"], q["unit"]) if q else None)
        assert triple(row["concept"]) == first(o["code"]) and triple(row["method"]) == first(o.get("method"))
        # code.text where modifiers made one (D-33), else the concept's meaning: never empty (issue 27.6)
        assert row["concept_text"] == o["code"].get("text", o["code"]["coding"][0]["display"]) and row["concept_text"]
        assert [triple(m["concept"]) for m in row["modifiers"]] == [first(m["code"]) for m in o.get("component", [])]
        sels = [ref_id(d) for d in o.get("derivedFrom", []) if d["type"] == "ImagingSelection"]
        assert row["selection_fhir_ids"] == sels
        assert row["referenced_sop_instance_uids"] == [i["uid"] for s in sels for i in by_id[s].get("instance", [])]
        member_of = [g["id"] for g in groups if o["id"] in [ref_id(m) for m in g.get("hasMember", [])]]
        assert row["group_fhir_id"] == (member_of[0] if member_of else None)
        if member_of:
            group = by_id[member_of[0]]
            assert triple(row["finding"]) == first(group.get("valueCodeableConcept"))

    qualitative = [o for o in obs if category(o) == "C0034375"]
    assert [(q["fhir_id"], triple(q["concept"]), triple(q["value_code"])) for q in tables["qualitative_evaluations"]] == [
        (o["id"], first(o["code"]), first(o.get("valueCodeableConcept"))) for o in qualitative]

    # Every planar region's coordinates, as the ImagingSelection has them (IDC's views drop these).
    regions = {(row["fhir_id"], row["referenced_sop_instance_uid"], row["region_type"], tuple(row["coordinates"])) for row in tables["regions"]}
    expected = {(s["id"], i.get("uid"), reg["regionType"], tuple(float(x) for x in reg["coordinate"]))
                for s in resources if s["resourceType"] == "ImagingSelection" for i in s.get("instance", []) for reg in i.get("imageRegion2D", [])}
    assert expected <= regions
    assert {row["fhir_id"] for row in tables["regions"]} == {s["id"] for s in resources if s["resourceType"] == "ImagingSelection"}
    assert {row["fhir_id"] for row in tables["devices"]} == {d["id"] for d in resources if d["resourceType"] == "Device"}


@pytest.mark.parametrize(("fixture", "key"), [("tid1410_region3d_segframe", "region_3d"), ("tid1411_volumetric", "volume_surface")])
def test_3d_regions_have_their_built_coordinates(manifest: dict[str, Any], fixture: str, key: str) -> None:
    """SCOORD3D regions (D-51): one row with 3 dimensions, the graphic type and data make_fixtures.py wrote, in their frame."""
    [c] = convert_path(str(FIXTURES / f"{fixture}.dcm")).conversions
    built = manifest["fixtures"][fixture][key]
    rows3 = [r for r in rows(c.document, c.resources.resources())["regions"] if r["dimensions"] == 3]
    assert [(r["frame_of_reference_uid"], r["region_type"], r["coordinates"], r["referenced_sop_instance_uid"]) for r in rows3] == [
        (built["frame_of_reference"], built["graphic_type"].lower(), built["graphic_data"], None)]


def test_planar_fixture_has_its_built_coordinates(manifest: dict[str, Any]) -> None:
    """tid1410_planar_regions: the regions make_fixtures.py drew, in the regions table."""
    r = convert_path(str(FIXTURES / "tid1410_planar_regions.dcm"))
    [c] = r.conversions
    tables = rows(c.document, c.resources.resources())
    built = manifest["fixtures"]["tid1410_planar_regions"]["groups"]
    assert len(tables["measurement_groups"]) == len(built)
    drawn = {(row["referenced_sop_instance_uid"], row["region_type"], tuple(row["coordinates"])) for row in tables["regions"]}
    assert drawn == {(g["image"], g["graphic_type"].lower(), tuple(x for p in g["points"] for x in p)) for g in built}
    by_lesion = {m["tracking_identifier"]: m for m in tables["measurements"]}
    for g in built:
        m = by_lesion[g.get("tracking_identifier")]
        assert m["value"] == g["measurement"]["value"] and m["unit"]["code"] == g["measurement"]["unit"] and m["concept"]["code"] == g["measurement"]["code"]
        site = g["site"] or {}
        assert m["tracking_unique_identifier"] == (g["tracking_uid"] if g.get("tracking_uid") else None)  # bare, as every UID column
        assert (m["finding_site"] or {}).get("code") == site.get("site") and (m["laterality"] or {}).get("code") == site.get("laterality")
        assert [q["code"] for q in m["site_qualifiers"]] == ([site["modifier"]] if "modifier" in site else [])
        assert m["referenced_sop_instance_uids"] == [g["image"]]


def test_group_numbers_and_tracking_ids_join_as_idc_documents_them() -> None:
    """Issue 25, item 6, on a hand-built report: NUMs beside the groups (D-13), so the groups are
    the 2nd and 4th children of Imaging Measurements: IDC's measurementGroup_number, `WITH OFFSET`
    over that container, is 1 and 3 (not the groups' ordinals, 1 and 2). The second group's measurement has a Tracking
    UID of its own and no Finding Site of its own: its row shows its own id, not its group's."""
    from sr2fhir.dicom.content import Code, MeasuredValue
    from tests.helpers import convert_doc, document, group, item

    diameter, mm = Code("81827009", "SCT", "Diameter"), Code("mm", "UCUM", "mm")
    site = item("HAS CONCEPT MOD", "CODE", Code("363698007", "SCT", "Finding Site"), Code("39607008", "SCT", "Lung"),
                [item("HAS CONCEPT MOD", "CODE", Code("272741003", "SCT", "Laterality"), Code("7771000", "SCT", "Left"))])
    tracking_uid = Code("112040", "DCM", "Tracking Unique Identifier")
    lone = item("CONTAINS", "NUM", diameter, MeasuredValue("1", unit=mm))
    lone2 = item("CONTAINS", "NUM", diameter, MeasuredValue("4", unit=mm))
    first = group(item("CONTAINS", "NUM", diameter, MeasuredValue("2", unit=mm)))
    own = item("CONTAINS", "NUM", diameter, MeasuredValue("3", unit=mm), [item("HAS OBS CONTEXT", "UIDREF", tracking_uid, "2.25.300")])
    second = group(item("HAS OBS CONTEXT", "UIDREF", tracking_uid, "2.25.200"), site, own)
    c = convert_doc(document(lone, first, lone2, second)).conversion
    tables = rows(c.document, c.resources.resources(), c.sources)
    assert sorted(g["group_number"] for g in tables["measurement_groups"]) == [1, 3]
    by_value = {m["value"]: m for m in tables["measurements"]}
    assert (by_value[2.0]["group_number"], by_value[3.0]["group_number"], by_value[1.0]["group_number"]) == (1, 3, None)
    assert by_value[3.0]["tracking_unique_identifier"] == "2.25.300"  # its own, bare
    assert (by_value[3.0]["finding_site"]["code"], by_value[3.0]["laterality"]["code"]) == ("39607008", "7771000")  # the group's site
    (g2,) = [g for g in tables["measurement_groups"] if g["group_number"] == 3]
    assert g2["tracking_unique_identifier"] == "2.25.200"
