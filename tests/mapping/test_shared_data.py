"""Every real TID 1500 report in ../shared/data converts, and the Observations match an independent count.

The count is a plain pydicom walk written here from the templates (not from sr2fhir's tree),
cross-checked with highdicom's TID 1500 reader where highdicom can read the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
from tests.helpers import converted, validate_r5, walk_json

# Concept names that are not qualitative evaluations: the IG's list (architecture.md) plus the
# context rows of TID 1410/1411/1501 and TID 4019 (docs/decisions.md D-3).
NOT_QE = {
    ("DCM", "112039"), ("DCM", "121071"), ("DCM", "130400"), ("NCIt", "C67447"), ("SCT", "276214006"),
    ("SCT", "363698007"), ("SCT", "370129005"), ("SRT", "G-C0E3"), ("SRT", "G-C036"), ("SRT", "F-01000"),
    ("DCM", "111001"), ("DCM", "111003"), ("DCM", "111002"), ("DCM", "111000"), ("DCM", "122405"),
}


def concept(ds: Any) -> tuple[str, str]:
    c = ds.ConceptNameCodeSequence[0]
    return (c.CodingSchemeDesignator, c.get("CodeValue") or c.get("LongCodeValue") or c.get("URNCodeValue"))


def children(ds: Any) -> list[Any]:
    return list(ds.get("ContentSequence", []))


def independent_count(path: Path) -> dict[str, int]:
    """Count what TID 1500 says should become each Observation profile."""
    ds = pydicom.dcmread(path)
    out = {"imaging-measurement-group": 0, "imaging-measurement": 0, "imaging-qualitative-evaluation": 0, "no-value": 0}

    def count_group(g: Any) -> None:
        out["imaging-measurement-group"] += 1
        for ch in children(g):
            if ch.ValueType == "NUM":
                mvs = ch.get("MeasuredValueSequence")
                out["imaging-measurement" if mvs and "NumericValue" in mvs[0] else "no-value"] += 1
            elif ch.ValueType in ("CODE", "TEXT") and ch.RelationshipType == "CONTAINS" and concept(ch) not in NOT_QE:
                out["imaging-qualitative-evaluation"] += 1

    for top in children(ds):
        if top.ValueType == "CONTAINER" and concept(top) == ("DCM", "126010"):
            for g in children(top):
                if g.ValueType == "CONTAINER" and concept(g) == ("DCM", "125007"):
                    count_group(g)
    return out


def highdicom_count(path: Path) -> dict[str, int] | None:
    """Groups and measurements as highdicom reads them; None where highdicom cannot read the file."""
    import highdicom as hd

    try:
        sr = hd.sr.srread(path)
        report = hd.sr.MeasurementReport.from_sequence([sr], is_root=True)
        groups = report.get_planar_roi_measurement_groups() + report.get_volumetric_roi_measurement_groups() + report.get_image_measurement_groups()
    except Exception:
        return None
    return {"imaging-measurement-group": len(groups), "imaging-measurement": sum(len(g.get_measurements()) for g in groups)}


def test_converts_and_counts_match(tid1500_file: Path) -> None:
    c = converted(tid1500_file)
    counts = c.conversion.profile_counts()
    expected = independent_count(tid1500_file)
    for profile in ("imaging-measurement-group", "imaging-measurement", "imaging-qualitative-evaluation"):
        assert counts.get(profile, 0) == expected[profile], profile
    assert len([o for o in c.of_type("Observation") if "dataAbsentReason" in o]) == expected["no-value"]
    hd_counts = highdicom_count(tid1500_file)
    if hd_counts is not None:
        for profile, n in hd_counts.items():
            assert counts.get(profile, 0) == n, f"highdicom: {profile}"


def test_every_resource_is_valid_r5_and_references_resolve(tid1500_file: Path) -> None:
    c = converted(tid1500_file)
    assert c.resources
    for r in c.resources:
        validate_r5(r)
        assert r["text"]["status"] == "generated"
    for node in walk_json(c.resources):
        if isinstance(node, dict) and isinstance(node.get("reference"), str):
            ref = node["reference"]
            if ref.startswith("urn:uuid:"):
                assert ref in c.by_url, ref
            else:  # conditional reference to a pre-existing resource, with its logical twin (D-1)
                assert ref.split("?")[0] in ("Patient", "ImagingStudy", "ServiceRequest") and ref.startswith(node["type"] + "?identifier=")
                assert ref.endswith(node["identifier"]["value"])
    for obs in c.of_type("Observation"):
        assert obs["subject"]["type"] == "Patient" and obs["partOf"][0]["type"] == "ImagingStudy"
        assert obs["issued"][10] == "T" and obs["issued"][-6] in "+-"
        assert not ("bodySite" in obs and "bodyStructure" in obs)


def test_variants_convert(variant_file: Path) -> None:
    c = converted(variant_file)
    assert c.profile("imaging-measurement")


def test_our_validator_finds_no_profile_errors(tid1500_file: Path) -> None:
    from sr2fhir.fhir.ids import full_url
    from sr2fhir.validation import validate_resources
    from sr2fhir.validation.package import load_profiles
    from tests.helpers import SHARED

    resources = converted(tid1500_file).resources
    report = validate_resources(resources, {full_url(r["id"]): r for r in resources}, profiles=load_profiles(SHARED / "ig-package"))
    assert report.ok, [f.text() for f in report.findings if f.severity == "error"][:5]
