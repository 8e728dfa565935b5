"""ImagingSelection profiles: every profile from the highdicom fixtures, plus hand-built edge cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sr2fhir.dicom.content import Code, SopReference, SpatialCoordinates
from sr2fhir.fhir.ids import full_url
from sr2fhir.validation import validate_resources
from tests.helpers import SHARED, Converted, codings, convert_doc, document, group, highdicom_report, item, validate_r5

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SECT_B5 = "https://dicom.nema.org/medical/dicom/current/output/chtml/part04/sect_B.5"
REGION = Code("111030", "DCM", "Image Region")
CT = "1.2.840.10008.5.1.4.1.1.2"


def selections_of(c: Converted, obs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for ref in obs.get("derivedFrom", []):
        r = c.by_url.get(ref.get("reference", ""))
        if r and r["resourceType"] == "ImagingSelection":
            out[r.get("meta", {}).get("profile", ["none"])[0].rsplit("/", 1)[-1]] = r
    return out


def test_image_region_2d_per_graphic_type(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1410_planar_regions"]
    expected = manifest["fixtures"]["tid1410_planar_regions"]["groups"]
    groups = c.profile("imaging-measurement-group")
    assert len(groups) == len(expected)
    for g, exp in zip(groups, expected):
        sel = selections_of(c, g)["image-region-2d"]
        assert sel["code"]["coding"] == [{"system": DCM, "code": "111030", "display": "Image Region"}]
        (inst,) = sel["instance"]
        assert inst["uid"] == exp["image"]
        assert inst["sopClass"] == {"system": SECT_B5, "code": CT, "display": "CT Image Storage"}
        (region,) = inst["imageRegion2D"]
        assert region["regionType"] == exp["graphic_type"].lower()
        assert [float(x) for x in region["coordinate"]] == [v for pt in exp["points"] for v in pt]
        assert sel["status"] == "available" and sel["subject"] == g["subject"]
        assert sel["studyUid"] == manifest["study"]


def test_image_region_3d(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1410_region3d_segframe"]
    exp = manifest["fixtures"]["tid1410_region3d_segframe"]["region_3d"]
    sel = c.one("image-region-3d")
    assert sel["frameOfReferenceUid"] == exp["frame_of_reference"]
    assert "instance" not in sel  # a 3D region names no image
    assert regions_3d(sel) == [(exp["graphic_type"].lower(), exp["graphic_data"])]  # sr2fhir's extension (D-51)
    assert "scoord3d-coordinates" not in c.rules()


def regions_3d(sel: dict[str, Any]) -> list[tuple[str, list[float]]]:
    """(regionType, coordinates) of each image-region-3d extension (fhir/extensions.py)."""
    out = []
    for e in sel.get("extension", []):
        assert e["url"] == "http://sr2fhir.org/fhir/StructureDefinition/image-region-3d"
        parts = e["extension"]
        assert parts[0]["url"] == "regionType" and all(p["url"] == "coordinate" for p in parts[1:])
        out.append((parts[0]["valueCode"], [float(p["valueDecimal"]) for p in parts[1:]]))
    return out


def test_volume_surface_keeps_its_point(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    exp = manifest["fixtures"]["tid1411_volumetric"]["volume_surface"]
    sel = fixture_conversions["tid1411_volumetric"].one("volume-surface")
    assert sel["frameOfReferenceUid"] == exp["frame_of_reference"]
    assert regions_3d(sel) == [(exp["graphic_type"].lower(), exp["graphic_data"])]


def region_3d(gtype: str, data: list[float], frame: str | None = "1.2.3.9") -> Any:
    return item("CONTAINS", "SCOORD3D", REGION, SpatialCoordinates(gtype, data, frame))


@pytest.mark.parametrize(("gtype", "data", "region_type"), [
    ("POINT", [1.0, 2.0, 3.0], "point"),
    ("MULTIPOINT", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "multipoint"),
    ("POLYLINE", [0.0, 0.0, 0.0, 1.5, -2.25, 1e-3], "polyline"),
    ("ELLIPSE", [float(i) for i in range(12)], "ellipse"),
    ("ELLIPSOID", [float(i) for i in range(18)], "ellipsoid"),
])
def test_each_3d_graphic_type_keeps_its_coordinates(gtype: str, data: list[float], region_type: str) -> None:
    """PS3.3 C.18.9.1.2's six 3D graphic types, coordinates copied unchanged; the output validates."""
    c = convert_doc(document(group(region_3d(gtype, data))))
    sel = c.one("image-region-3d")
    assert regions_3d(sel) == [(region_type, data)]
    assert "bad-graphic-data" not in c.rules()
    report = validate_resources(c.resources, {full_url(r["id"]): r for r in c.resources}, ig=str(SHARED / "ig-package"))
    assert report.ok and not [f for f in report.findings if f.layer in ("extension", "structure")], [f.text() for f in report.findings]


@pytest.mark.parametrize(("gtype", "data"), [("POINT", [1.0, 2.0]), ("ELLIPSE", [0.0] * 9), ("POLYGON", [0.0] * 10), ("CIRCLE", [0.0] * 6), ("POINT", [1.0, float("nan"), 2.0])])
def test_a_3d_region_that_is_not_one_keeps_only_its_frame(gtype: str, data: list[float]) -> None:
    c = convert_doc(document(group(region_3d(gtype, data))))
    sel = c.one("image-region-3d")
    assert sel["frameOfReferenceUid"] == "1.2.3.9" and "extension" not in sel
    assert "bad-graphic-data" in c.rules()


def test_3d_regions_in_another_frame_are_not_carried_in_the_first() -> None:
    """Coordinates mean something only in their frame of reference: a second region in another
    frame is left out (and said), never written under the first one's frameOfReferenceUid."""
    c = convert_doc(document(group(region_3d("POINT", [1.0, 2.0, 3.0], "1.2.3.9"), region_3d("POINT", [4.0, 5.0, 6.0], "1.2.3.10"),
                                   region_3d("POINT", [7.0, 8.0, 9.0], "1.2.3.9"))))
    sel = c.one("image-region-3d")
    assert sel["frameOfReferenceUid"] == "1.2.3.9"
    assert regions_3d(sel) == [("point", [1.0, 2.0, 3.0]), ("point", [7.0, 8.0, 9.0])]
    assert c.rules().count("scoord3d-frames-differ") == 1


def test_a_3d_region_without_a_frame_is_not_mapped() -> None:
    c = convert_doc(document(group(region_3d("POINT", [1.0, 2.0, 3.0], None), item("CONTAINS", "NUM", Code("G-D7FE", "SRT", "Diameter")))))
    assert "scoord3d-without-frame" in c.rules()
    assert not c.profile("image-region-3d")


def test_referenced_segmentation_frame(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1410_region3d_segframe"]
    exp = manifest["fixtures"]["tid1410_region3d_segframe"]["segmentation_frame"]
    sel = c.one("referenced-segmentation-frame")
    (inst,) = sel["instance"]
    assert (inst["uid"], inst["subset"], inst["sopClass"]["display"]) == (exp["seg"], [exp["segment"]], "Segmentation Storage")
    (focus,) = [c.resolve(f) for f in sel["focus"]]
    assert focus["meta"]["profile"][0].endswith("source-image-for-segmentation")
    assert [i["uid"] for i in focus["instance"]] == [exp["source_image"]]
    assert codings(focus["code"]) == [(DCM, "121233")] and focus["code"]["coding"][0]["display"] == "Source image for segmentation"


def test_referenced_segment_with_source_images_and_series(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1411_volumetric"]
    exp = manifest["fixtures"]["tid1411_volumetric"]
    with_images, series_only = c.profile("referenced-segment")
    assert with_images["instance"][0]["uid"] == exp["segment"]["seg"] and with_images["instance"][0]["subset"] == [exp["segment"]["segment"]]
    src = c.resolve(with_images["focus"][0])
    assert [i["uid"] for i in src["instance"]] == exp["segment"]["source_images"]
    # Series only: the instances of that series come from the evidence sequences (D-6).
    src2 = c.resolve(series_only["focus"][0])
    assert src2["seriesUid"] == exp["segment_series_only"]["source_series"]
    assert sorted(i["uid"] for i in src2["instance"]) == sorted(exp["segment_series_only"]["evidence_images"])
    # The SEG's own series comes from the evidence, not from 121232 (I-10, D-12).
    assert with_images["seriesUid"] != exp["segment_series_only"]["source_series"]


def test_volume_surface_and_rwvm(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1411_volumetric"]
    exp = manifest["fixtures"]["tid1411_volumetric"]
    vs = c.one("volume-surface")
    assert vs["frameOfReferenceUid"] == exp["volume_surface"]["frame_of_reference"]
    assert [i["uid"] for i in c.resolve(vs["focus"][0])["instance"]] == [exp["volume_surface"]["source_image"]]
    rwvm = c.one("real-world-value-map")
    assert rwvm["instance"][0]["uid"] == exp["rwvm"]
    assert rwvm["instance"][0]["sopClass"]["code"] == "1.2.840.10008.5.1.4.1.1.67"


def test_illustration_visual_explanation_region_in_space(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1501_containers"]
    exp = manifest["fixtures"]["tid1501_containers"]
    assert c.one("illustration-of-roi")["instance"][0]["uid"] == exp["illustration"]
    ve = c.one("visual-explanation")
    assert ve["instance"][0]["uid"] == exp["visual_explanation"]
    assert ve["code"]["coding"][0]["display"] == "Visual Explanation"  # the profile's display (I-18)
    # Region in space: correct RT Structure Set UID kept, so the profile (typo I-9) is not claimed (D-25).
    ris = [r for r in c.of_type("ImagingSelection") if codings(r["code"]) == [(DCM, "130488")]]
    (r,) = ris
    assert "profile" not in r.get("meta", {})
    assert r["instance"][0]["uid"] == exp["region_in_space"]["rtstruct"]
    assert r["instance"][0]["subset"] == [exp["region_in_space"]["roi"]]
    assert r["instance"][0]["sopClass"]["code"] == "1.2.840.10008.5.1.4.1.1.481.3"
    g = c.profile("imaging-measurement-group")[0]
    assert {"illustration-of-roi", "visual-explanation", "none"} <= set(selections_of(c, g))


def test_source_sr_content_item(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1501_containers"]
    exp = manifest["fixtures"]["tid1501_containers"]
    subsets = sorted(r["instance"][0]["subset"][0] for r in c.profile("source-sr-content-item"))
    assert subsets == sorted([exp["group_observation_uid"], exp["num_observation_uid"]])
    for r in c.profile("source-sr-content-item"):
        assert r["instance"][0]["uid"] == exp["sr_instance"]
        assert r["instance"][0]["sopClass"]["display"] == "Comprehensive 3D SR Storage"
        assert r["code"]["coding"] == [{"system": DCM, "code": "111040", "display": "Original Source"}]


def _scoord(gtype: str, data: list[float], frames: list[int] | None = None) -> Any:
    image = item("SELECTED FROM", "IMAGE", None, SopReference(CT, "2.25.77", frames or []))
    return item("CONTAINS", "SCOORD", REGION, SpatialCoordinates(gtype, data), [image])


def test_multipoint_becomes_one_point_region_per_pair() -> None:
    c = convert_doc(document(group(_scoord("MULTIPOINT", [1, 2, 3, 4, 5, 6], frames=[3]))))
    (sel,) = c.profile("image-region-2d")
    assert [i["imageRegion2D"][0] for i in sel["instance"]] == [
        {"regionType": "point", "coordinate": [1, 2]},
        {"regionType": "point", "coordinate": [3, 4]},
        {"regionType": "point", "coordinate": [5, 6]},
    ]
    assert all(i["subset"] == ["3"] for i in sel["instance"])  # frame numbers -> subset (D-2)


@pytest.mark.parametrize(("gtype", "data"), [("CIRCLE", [1, 2, 3]), ("POINT", [1, 2, 3, 4]), ("POLYLINE", [1, 2]), ("SPLINE", [1, 2, 3, 4])])
def test_bad_graphic_data_is_reported_not_emitted(gtype: str, data: list[float]) -> None:
    c = convert_doc(document(group(_scoord(gtype, data))))
    assert not c.profile("image-region-2d")
    assert "bad-graphic-data" in c.rules()
    assert "1.1.1.1" in [d.path for d in c.diagnostics.items if d.rule == "bad-graphic-data"]


def test_scoord_without_image_is_reported() -> None:
    sc = item("CONTAINS", "SCOORD", REGION, SpatialCoordinates("POINT", [1, 2]))
    c = convert_doc(document(group(sc)))
    assert "scoord-without-image" in c.rules() and not c.of_type("ImagingSelection")


def test_several_regions_of_one_kind_share_one_selection() -> None:
    """derivedFrom slices are max 1 per kind: one ImagingSelection, several instances (D-8)."""
    c = convert_doc(document(group(_scoord("POINT", [1, 2]), _scoord("CIRCLE", [5, 5, 6, 5]))))
    (sel,) = c.profile("image-region-2d")
    assert [i["imageRegion2D"][0]["regionType"] for i in sel["instance"]] == ["point", "circle"]
    assert len(c.one("imaging-measurement-group")["derivedFrom"]) == 1


def test_nan_or_infinite_graphic_data_is_reported_not_emitted() -> None:
    """Issue 10.10: NaN / Infinity in SCOORD Graphic Data was written as bare NaN (invalid JSON)."""
    from sr2fhir.fhir.bundle import dumps, transaction

    image = item("SELECTED FROM", "IMAGE", None, SopReference("1.2.840.10008.5.1.4.1.1.2", "2.25.7"))
    bad = [item("CONTAINS", "SCOORD", Code("111030", "DCM", "Image Region"), SpatialCoordinates("POLYLINE", [0.0, 0.0, v, 1.0, 0.0, 0.0]), [image]) for v in (float("nan"), float("inf"))]
    for region in bad:
        c = convert_doc(document(group(region)))
        assert not c.of_type("ImagingSelection")
        (d,) = [d for d in c.diagnostics.items if d.rule == "bad-graphic-data"]
        assert "NaN or infinity" in d.message
        json.loads(dumps(transaction(c.conversion.resources, "k")))  # strict JSON


SEG = "1.2.840.10008.5.1.4.1.1.66.4"
SEG_FRAME = Code("121214", "DCM", "Referenced Segmentation Frame")


@pytest.mark.parametrize(("frames", "segments", "subset", "rules"), [
    ([2], [1], ["1"], {"segmentation-frame-not-carried"}),
    ([7], [], None, {"segmentation-frame-not-carried", "no-segment-number"}),  # a frame is never written as a segment
    ([], [3], ["3"], set()),
])
def test_a_segmentation_frames_number_is_never_a_segment_number(frames: list[int], segments: list[int], subset: list[str] | None, rules: set[str]) -> None:
    """Issue 25, item 3: the IG maps instance.subset from Referenced Segment Number (0062,000B)
    alone; a Referenced Frame Number (0008,1160) once became the subset when no segment number
    was given (frame 7 read as segment 7), and was dropped silently when one was."""
    ref = SopReference(SEG, "1.2.3.4.5", frames=frames, segments=segments)
    c = convert_doc(document(group(item("CONTAINS", "IMAGE", SEG_FRAME, ref))))
    (sel,) = c.of_type("ImagingSelection")
    (inst,) = sel["instance"]
    assert inst.get("subset") == subset
    assert {"segmentation-frame-not-carried", "no-segment-number"} & set(c.rules()) == rules
    if frames:
        (d,) = [d for d in c.diagnostics.items if d.rule == "segmentation-frame-not-carried"]
        assert str(frames[0]) in d.message


def test_the_source_of_a_measurement_is_an_imaging_selection_without_a_claim(tmp_path: Path) -> None:
    """Issue 25, item 5: Source of Measurement (DCM 121112, TID 300 INFERRED FROM IMAGE), as
    highdicom writes it from `referenced_images`, was reported and dropped; the image it names may
    be found nowhere else. Now an ImagingSelection without a profile claim, in the open
    derivedFrom slicing of the measurement (D-49)."""
    import highdicom as hd
    import pydicom

    from sr2fhir.batch import convert_path

    ct = pydicom.dcmread(SHARED / "data" / "referenced" / "highdicom__ct_image.dcm", stop_before_pixels=True)
    source = hd.sr.SourceImageForMeasurement(referenced_sop_class_uid=ct.SOPClassUID, referenced_sop_instance_uid=ct.SOPInstanceUID)
    path = highdicom_report(tmp_path / "source.dcm", measurement={"referenced_images": [source]})
    r = convert_path(str(path))
    assert r.error is None, r.error
    c = Converted(r.conversions[0])
    (m,) = [o for o in c.of_type("Observation") if "valueQuantity" in o]
    selections = [c.resolve(d) for d in m["derivedFrom"] if d.get("type") == "ImagingSelection"]
    (sel,) = [s for s in selections if codings(s["code"]) == [(DCM, "121112")]]
    assert "profile" not in sel.get("meta", {})  # no claim: no IG profile fits (D-49)
    assert sel["code"]["coding"][0]["display"] == "Source of Measurement"
    assert [(i["uid"], i["sopClass"]["code"]) for i in sel["instance"]] == [(str(ct.SOPInstanceUID), str(ct.SOPClassUID))]
    assert not [d for d in r.diagnostics.items if d.concept and "121112" in str(d.concept)]  # nothing reported unmapped
    validate_r5(sel)
