"""Write the test fixtures: TID 1500 reports made by an independent writer (highdicom).

Each fixture exercises one template family and the ImagingSelection profiles it calls for. The
manifest (tests/fixtures/manifest.json) records what each report was built with; the tests
compare sr2fhir's output with these build parameters, never with sr2fhir's own output.

Run: python scripts/make_fixtures.py [OUTDIR]   (default: tests/fixtures)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

ROOT = "1.2.826.0.1.3680043.10.1581"  # UID root for sr2fhir test data (fixed, so output is reproducible)
STUDY = f"{ROOT}.1"
CT_SERIES = f"{ROOT}.1.1"
CT_IMAGES = [f"{ROOT}.1.1.{i}" for i in (1, 2, 3)]
SEG_SERIES = f"{ROOT}.1.2"
SEG = f"{ROOT}.1.2.1"
RWVM = f"{ROOT}.1.3.1"
RTSTRUCT = f"{ROOT}.1.4.1"
SC_IMAGE = f"{ROOT}.1.5.1"
FRAME_OF_REFERENCE = f"{ROOT}.1.9"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
RWVM_STORAGE = "1.2.840.10008.5.1.4.1.1.67"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"

PATIENT = {"PatientID": "FIXTURE-PID-4711", "PatientName": "Fixture^Patricia^Q", "PatientBirthDate": "19610203"}
ACCESSION = "FIXTURE-ACC-17"


def evidence(sop_class: str, uid: str, series: str, modality: str = "CT") -> Dataset:
    """A minimal header of a referenced object: what highdicom needs as evidence."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series
    ds.FrameOfReferenceUID = FRAME_OF_REFERENCE
    ds.Modality = modality
    ds.PatientID = PATIENT["PatientID"]
    ds.PatientName = PATIENT["PatientName"]
    ds.PatientBirthDate = PATIENT["PatientBirthDate"]
    ds.PatientSex = "F"
    ds.StudyDate = "20240301"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = ACCESSION
    ds.ReferringPhysicianName = ""
    return ds


EVIDENCE = [evidence(CT_IMAGE_STORAGE, u, CT_SERIES) for u in CT_IMAGES] + [
    evidence(SEG_STORAGE, SEG, SEG_SERIES, "SEG"),
    evidence(RWVM_STORAGE, RWVM, f"{ROOT}.1.3", "OT"),
    evidence(RTSTRUCT_STORAGE, RTSTRUCT, f"{ROOT}.1.4", "RTSTRUCT"),
    evidence(SC_STORAGE, SC_IMAGE, f"{ROOT}.1.5", "OT"),
]
ALGORITHM = {"name": "LesionFinder", "version": "2.1.0", "parameters": ["threshold=0.5"]}
PERSON = "Reader^Rita"


def algorithm() -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(name=ALGORITHM["name"], version=ALGORITHM["version"], parameters=ALGORITHM["parameters"])


def observation_context() -> hd.sr.ObservationContext:
    return hd.sr.ObservationContext(
        observer_person_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=PERSON),
        )
    )


def src_region(i: int = 0) -> hd.sr.SourceImageForRegion:
    return hd.sr.SourceImageForRegion(CT_IMAGE_STORAGE, CT_IMAGES[i])


def src_seg(i: int = 0) -> hd.sr.SourceImageForSegmentation:
    return hd.sr.SourceImageForSegmentation(CT_IMAGE_STORAGE, CT_IMAGES[i])


def diameter(value: float, **kw: Any) -> hd.sr.Measurement:
    return hd.sr.Measurement(name=codes.SCT.Diameter, value=value, unit=codes.UCUM.Millimeter, **kw)


def volume(value: float, **kw: Any) -> hd.sr.Measurement:
    return hd.sr.Measurement(name=codes.SCT.Volume, value=value, unit=codes.UCUM.CubicMillimeter, **kw)


def report(groups: list[Any], uid_suffix: str, cls: type = hd.sr.Comprehensive3DSR, **kw: Any) -> Dataset:
    content = hd.sr.MeasurementReport(
        observation_context=observation_context(),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
    )
    sr = cls(
        evidence=EVIDENCE,
        content=content[0],
        series_instance_uid=f"{ROOT}.2.{uid_suffix}",
        series_number=99,
        sop_instance_uid=f"{ROOT}.2.{uid_suffix}.1",
        instance_number=1,
        manufacturer="sr2fhir fixtures",
        is_complete=True,
        is_final=kw.pop("is_final", True),
        **kw,
    )
    for item in sr.get("ContributingEquipmentSequence", []):
        item.ContributionDateTime = "20240301101530"  # highdicom stamps "now"; fixtures must be reproducible
    sr.ContentDate = "20240301"
    sr.ContentTime = "101530"
    sr.InstanceCreationDate = "20240301"
    sr.InstanceCreationTime = "101530"
    sr.SeriesDate = "20240301"
    sr.SeriesTime = "101530"
    sr.ManufacturerModelName = "Fixture Writer"
    sr.DeviceSerialNumber = "SN-1"
    return sr


def group_items(sr: Dataset, n: int = 1) -> Dataset:
    """The n-th Measurement Group item of the Imaging Measurements container."""
    im = next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "126010")
    return im.ContentSequence[n - 1]


# --- the fixtures ---------------------------------------------------------------------------

REGIONS_2D = [
    ("POINT", [[10.5, 20.25]]),
    ("POLYLINE", [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75], [0.25, 0.25]]),
    ("CIRCLE", [[50.0, 50.0], [60.0, 50.0]]),
    ("ELLIPSE", [[10.0, 30.0], [50.0, 30.0], [30.0, 20.0], [30.0, 40.0]]),
]


def planar_regions(count: int = len(REGIONS_2D), correction: float = 0.0, uid_suffix: str = "1") -> tuple[Dataset, dict[str, Any]]:
    """TID 1410 groups, one per SCOORD graphic type, with finding sites of every shape.

    `count` and `correction` (added to the first diameter) make the corrected version.
    """
    groups, expected = [], []
    lung, liver, kidney, left = codes.SCT.Lung, codes.SCT.Liver, codes.SCT.Kidney, codes.SCT.Left
    peripheral = Code("14414005", "SCT", "Peripheral")
    sites: list[tuple[str | None, Any, dict[str, str] | None]] = [
        ("plain", hd.sr.FindingSite(lung), {"site": lung.value}),
        ("laterality", hd.sr.FindingSite(lung, laterality=left), {"site": lung.value, "laterality": left.value}),
        ("modifier", hd.sr.FindingSite(liver, topographical_modifier=peripheral), {"site": liver.value, "modifier": peripheral.value}),
        (None, None, None),
        ("plain", hd.sr.FindingSite(kidney), {"site": kidney.value}),
    ]
    for i, ((gtype, points), (site_kind, site, site_codes)) in enumerate(zip(REGIONS_2D[:count], sites)):
        tracking = hd.sr.TrackingIdentifier(uid=f"{ROOT}.3.{i + 1}", identifier=f"Lesion {i + 1}")
        value = 10.0 + i + (correction if i == 0 else 0.0)
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking,
                referenced_region=hd.sr.ImageRegion(gtype, np.array(points, dtype=float), src_region(i % 3)),
                finding_type=codes.SCT.Nodule,
                finding_category=Code("49755003", "SCT", "Morphologically Abnormal Structure"),
                method=Code("258104002", "SCT", "Measured"),
                algorithm_id=algorithm() if i == 0 else None,
                finding_sites=[site] if site else None,
                measurements=[diameter(value)],
                qualitative_evaluations=[hd.sr.QualitativeEvaluation(Code("RID36042", "RADLEX", "Malignancy"), Code("RID36043", "RADLEX", "Benign"))],
            )
        )
        expected.append(
            {
                "tracking_uid": f"{ROOT}.3.{i + 1}",
                "tracking_identifier": f"Lesion {i + 1}",
                "graphic_type": gtype,
                "points": points,
                "image": CT_IMAGES[i % 3],
                "site_kind": site_kind,
                "site": site_codes,
                "measurement": {"code": "81827009", "value": value, "unit": "mm"},
                "algorithm": ALGORITHM if i == 0 else None,
            }
        )
    sr = report(groups, uid_suffix)
    return sr, {"groups": expected, "person": PERSON, "status": "final"}


def corrected_planar_regions() -> tuple[Dataset, dict[str, Any]]:
    """A corrected version of planar_regions: Lesion 1 re-measured (+0.5 mm), Lesions 3 and 4
    withdrawn; its Predecessor Documents Sequence (0040,A360) names the original (PS3.3 C.17.2.3)."""
    original, _ = planar_regions()
    sr, expected = planar_regions(count=2, correction=0.5, uid_suffix="11")
    sop = Dataset()
    sop.ReferencedSOPClassUID = original.SOPClassUID
    sop.ReferencedSOPInstanceUID = original.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = original.SeriesInstanceUID
    series.ReferencedSOPSequence = [sop]
    study = Dataset()
    study.StudyInstanceUID = original.StudyInstanceUID
    study.ReferencedSeriesSequence = [series]
    sr.PredecessorDocumentsSequence = [study]
    withdrawn = [f"{ROOT}.3.{i + 1}" for i in range(2, len(REGIONS_2D))]
    return sr, {**expected, "predecessor": str(original.SOPInstanceUID), "withdrawn_tracking_uids": withdrawn}


POLYGON_3D = [[1.0, 2.0, 3.0], [4.0, 5.0, 3.0], [4.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
SURFACE_POINT = [[10.0, 20.0, 30.0]]


def region_3d_and_segmentation_frame() -> tuple[Dataset, dict[str, Any]]:
    """TID 1410 with SCOORD3D, and TID 1410 with a Referenced Segmentation Frame."""
    g1 = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=f"{ROOT}.4.1", identifier="Region 3D"),
        referenced_region=hd.sr.ImageRegion3D("POLYGON", np.array(POLYGON_3D), FRAME_OF_REFERENCE),
        measurements=[diameter(7.5)],
    )
    g2 = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=f"{ROOT}.4.2", identifier="Seg frame"),
        referenced_segment=hd.sr.ReferencedSegmentationFrame(SEG_STORAGE, SEG, frame_number=2, segment_number=3, source_image=src_seg(1)),
        measurements=[diameter(8.5)],
    )
    sr = report([g1, g2], "2")
    return sr, {
        "region_3d": {"frame_of_reference": FRAME_OF_REFERENCE, "graphic_type": "POLYGON", "graphic_data": [c for p in POLYGON_3D for c in p]},
        "segmentation_frame": {"seg": SEG, "segment": "3", "source_image": CT_IMAGES[1]},
    }


def volumetric() -> tuple[Dataset, dict[str, Any]]:
    """TID 1411: referenced segment with source images, with a source series only, volume surface, RWVM."""
    g1 = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=f"{ROOT}.5.1", identifier="Tumour A"),
        referenced_segment=hd.sr.ReferencedSegment(SEG_STORAGE, SEG, segment_number=1, source_images=[src_seg(0), src_seg(1)]),
        referenced_real_world_value_map=hd.sr.RealWorldValueMap(RWVM),
        finding_sites=[hd.sr.FindingSite(codes.SCT.Liver)],
        measurements=[volume(1234.5)],
    )
    g2 = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=f"{ROOT}.5.2", identifier="Tumour B"),
        referenced_segment=hd.sr.ReferencedSegment(SEG_STORAGE, SEG, segment_number=2, source_series=hd.sr.SourceSeriesForSegmentation(CT_SERIES)),
        measurements=[volume(99.0)],
    )
    g3 = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=f"{ROOT}.5.3", identifier="Surface"),
        referenced_volume_surface=hd.sr.VolumeSurface("POINT", np.array(SURFACE_POINT), FRAME_OF_REFERENCE, source_images=[src_seg(2)]),
        measurements=[volume(5.0)],
    )
    sr = report([g1, g2, g3], "3")
    # hd.sr's RealWorldValueMap names no SOP class in older versions; the fixture says which it used.
    return sr, {
        "segment": {"seg": SEG, "segment": "1", "source_images": CT_IMAGES[:2], "site": "10200004"},
        "segment_series_only": {"seg": SEG, "segment": "2", "source_series": CT_SERIES, "evidence_images": CT_IMAGES},
        "volume_surface": {"frame_of_reference": FRAME_OF_REFERENCE, "source_image": CT_IMAGES[2], "graphic_type": "POINT",
                           "graphic_data": [c for p in SURFACE_POINT for c in p]},
        "rwvm": RWVM,
    }


def tid1501_and_containers() -> tuple[Dataset, dict[str, Any]]:
    """TID 1501 group with illustration / visual explanation / region in space items, a NUM
    without a value, Observation UIDs, a Derived Imaging Measurements container (TID 1420) and
    a Qualitative Evaluations container, a participant device, a PRELIMINARY flag and a zone."""
    g = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=f"{ROOT}.6.1", identifier="Group 1501"),
        finding_type=codes.SCT.Nodule,
        algorithm_id=algorithm(),
        measurements=[diameter(3.25)],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(Code("RID36042", "RADLEX", "Malignancy"), Code("RID36043", "RADLEX", "Benign"))],
    )
    sr = report([g], "4", cls=hd.sr.Comprehensive3DSR, is_final=False)
    group = group_items(sr)
    extra = hd.sr.ContentSequence(
        [
            hd.sr.ImageContentItem(Code("121200", "DCM", "Illustration of ROI"), SC_STORAGE, SC_IMAGE, relationship_type="CONTAINS"),
            hd.sr.ImageContentItem(Code("130401", "DCM", "Visual explanation"), SC_STORAGE, SC_IMAGE, relationship_type="CONTAINS"),
            hd.sr.CompositeContentItem(Code("130488", "DCM", "Region in Space"), RTSTRUCT_STORAGE, RTSTRUCT, relationship_type="CONTAINS"),
            hd.sr.NumContentItem(Code("410668003", "SCT", "Length"), value=0, unit=codes.UCUM.Millimeter, relationship_type="CONTAINS"),
        ]
    )
    # A NUM without a value (PS3.3 C.18.1): empty Measured Value Sequence + Numeric Value Qualifier.
    extra[3].MeasuredValueSequence = []
    extra[3].NumericValueQualifierCodeSequence = [hd.sr.CodedConcept.from_code(codes.DCM.NotANumber)]
    rois = hd.sr.ContentSequence([hd.sr.TextContentItem(Code("130489", "DCM", "Referenced Region of Interest Identifier"), "7", relationship_type="HAS PROPERTIES")])
    extra[2].ContentSequence = rois
    for item in extra:
        group.ContentSequence.append(item)
    # Observation UIDs on the group and its diameter (source-sr-content-item).
    group.ObservationUID = f"{ROOT}.7.1"
    num = next(i for i in group.ContentSequence if i.ValueType == "NUM" and "MeasuredValueSequence" in i)
    num.ObservationUID = f"{ROOT}.7.2"
    num.ObservationDateTime = "20240301111111+0100"

    # TID 1420 under the root: one derived NUM with a nested TID 1410 group.
    nested = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=f"{ROOT}.6.2", identifier="Nested"),
        referenced_region=hd.sr.ImageRegion("POINT", np.array([[5.0, 5.0]]), src_region(0)),
        measurements=[diameter(1.5)],
    )
    nested_item = nested[0]
    nested_item.RelationshipType = "INFERRED FROM"
    derived_num = hd.sr.NumContentItem(Code("126031", "DCM", "Peak Value Within ROI"), value=123.45, unit=Code("[hnsf'U]", "UCUM", "Hounsfield unit"), relationship_type="CONTAINS")
    derived_num.ContentSequence = hd.sr.ContentSequence([nested_item])
    derived = hd.sr.ContainerContentItem(Code("126011", "DCM", "Derived Imaging Measurements"), relationship_type="CONTAINS")
    derived.ContentSequence = hd.sr.ContentSequence([derived_num])
    qe = hd.sr.ContainerContentItem(Code("C0034375", "UMLS", "Qualitative Evaluations"), relationship_type="CONTAINS")
    qe.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.CodeContentItem(Code("RID36042", "RADLEX", "Malignancy"), Code("RID36044", "RADLEX", "Malignant"), relationship_type="CONTAINS"),
            hd.sr.TextContentItem(Code("121106", "DCM", "Comment"), "Follow up in 6 months", relationship_type="CONTAINS"),
        ]
    )
    sr.ContentSequence.append(derived)
    sr.ContentSequence.append(qe)

    device = Dataset()
    device.ObserverType = "DEV"
    device.Manufacturer = "AI Vendor"
    device.ManufacturerModelName = "Nodule AI"
    device.DeviceUID = f"{ROOT}.8.1"
    device.ParticipationType = "SOURCE"
    device.ParticipationDateTime = "20240301101530"
    sr.ParticipantSequence = [device]
    sr.TimezoneOffsetFromUTC = "+0100"
    return sr, {
        "status": "preliminary",
        "zone": "+01:00",
        "issued": "2024-03-01T10:15:30+01:00",
        "num_issued": "2024-03-01T11:11:11+01:00",
        "group_observation_uid": f"{ROOT}.7.1",
        "num_observation_uid": f"{ROOT}.7.2",
        "sr_instance": f"{ROOT}.2.4.1",
        "illustration": SC_IMAGE,
        "visual_explanation": SC_IMAGE,
        "region_in_space": {"rtstruct": RTSTRUCT, "roi": "7"},
        "derived": {"code": "126031", "value": 123.45, "unit": "[hnsf'U]", "nested_diameter": 1.5},
        "qualitative_container": [{"code": "RID36042", "value_code": "RID36044"}, {"code": "121106", "text": "Follow up in 6 months"}],
        "participant_device": {"uid": f"{ROOT}.8.1", "model": "Nodule AI"},
        "algorithm": ALGORITHM,
        "absent_value": {"code": "410668003", "reason": "not-a-number"},
    }


FIXTURES = {
    "tid1410_planar_regions": planar_regions,
    "tid1410_region3d_segframe": region_3d_and_segmentation_frame,
    "tid1411_volumetric": volumetric,
    "tid1501_containers": tid1501_and_containers,
    "tid1410_planar_regions_corrected": corrected_planar_regions,
}


DEMO = "tid1501_containers"
"""The fixture that also ships as the README's demo report (examples/measurement-report.dcm)."""


def main(outdir: str = "tests/fixtures", demo: str = "examples/measurement-report.dcm") -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"patient": PATIENT, "accession": ACCESSION, "study": STUDY, "fixtures": {}}
    for name, build in FIXTURES.items():
        sr, expected = build()
        sr.save_as(out / f"{name}.dcm", enforce_file_format=True)
        manifest["fixtures"][name] = {"sop_instance_uid": str(sr.SOPInstanceUID), "sop_class_uid": str(sr.SOPClassUID), **expected}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    Path(demo).parent.mkdir(parents=True, exist_ok=True)
    Path(demo).write_bytes((out / f"{DEMO}.dcm").read_bytes())
    print(f"wrote {len(FIXTURES)} fixtures to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
