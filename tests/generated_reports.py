"""Random but valid TID 1500 reports written with highdicom's public API, each with its own record
of what it wrote, and the comparison of that record with sr2fhir's R5 Bundle, its R4 output and the
export's rows (issue 25, "How to prove it"). Used by tests/test_generated_reports.py (a seeded few
hundred) and scripts/generated_campaign.py (a larger campaign, figures in the README).

The expected output comes from the record and the IG's rules as docs/decisions.md states them
(D-31 UCUM annotations, D-33 Derivation, D-34 tracking ids, D-46 decimals, D-48
finding sites, D-51 3D regions), never from sr2fhir's code."""

from __future__ import annotations

import io
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from tests.helpers import SHARED

C = hd.sr.CodedConcept
SYSTEMS = {"SCT": "http://snomed.info/sct", "DCM": "http://dicom.nema.org/resources/ontology/DCM", "UCUM": "http://unitsofmeasure.org"}
NAMES = [C("81827009", "SCT", "Diameter"), C("118565006", "SCT", "Volume"), C("42798000", "SCT", "Area"), C("410668003", "SCT", "Length"),
         C("131190003", "SCT", "Radius"), C("126401", "DCM", "SUVbw")]
UNITS = [C("mm", "UCUM", "millimeter"), C("mm2", "UCUM", "square millimeter"), C("ml", "UCUM", "milliliter"), C("1", "UCUM", "no units"),
         C("%", "UCUM", "percent"), C("{SUVbw}g/ml", "UCUM", "Standardized Uptake Value body weight"), C("[hnsf'U]", "UCUM", "Hounsfield unit"), C("s", "UCUM", "second")]
DERIVATIONS = [C("373098007", "SCT", "Mean"), C("56851009", "SCT", "Maximum"), C("255605001", "SCT", "Minimum")]
METHODS = [C("258104002", "SCT", "Measured"), C("414135002", "SCT", "Estimated")]
SITES = [C("64033007", "SCT", "Kidney"), C("10200004", "SCT", "Liver"), C("39607008", "SCT", "Lung"), C("76752008", "SCT", "Breast")]
LATERALITIES = [None, C("24028007", "SCT", "Right"), C("7771000", "SCT", "Left"), C("51440002", "SCT", "Right and left")]
EVALUATIONS = [C("116676008", "SCT", "Associated morphology"), C("246116008", "SCT", "Lesion size")]
EVALUATION_VALUES = [C("4147007", "SCT", "Mass"), C("263654008", "SCT", "Abnormal"), C("17621005", "SCT", "Normal")]
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
# Graphic types and point counts (min, max) highdicom writes for a group's Image Region (TID 1410
# admits neither MULTIPOINT nor ELLIPSOID there).
KINDS_2D = {"POINT": (1, 1), "POLYLINE": (2, 6), "CIRCLE": (2, 2), "ELLIPSE": (4, 4)}
KINDS_3D = {"POINT": (1, 1), "POLYLINE": (2, 6), "POLYGON": (4, 6), "ELLIPSE": (4, 4)}


def key(c: Any) -> tuple[str, str]:
    """(FHIR system, code) of a highdicom CodedConcept."""
    return SYSTEMS[c.scheme_designator], c.value


@dataclass
class Site:
    site: tuple[str, str]
    laterality: tuple[str, str] | None


@dataclass
class Measured:
    name: tuple[str, str]
    unit: str
    derivation: tuple[str, str] | None
    method: tuple[str, str] | None
    sites: list[Site]
    tracking: tuple[str, str] | None  # (identifier, uid)
    value_text: str = ""  # the DS as the file holds it (filled from the written file)


@dataclass
class Region:
    dims: int  # 2, 3, or 0 for a segmentation frame
    graphic_type: str = ""
    data: list[float] = field(default_factory=list)
    ref: str = ""  # the image (2D), the frame of reference (3D), the Segmentation (0)
    segment: int = 0


@dataclass
class Group:
    tracking: tuple[str, str]
    sites: list[Site]
    region: Region | None
    measurements: list[Measured]
    evaluations: list[tuple[tuple[str, str], tuple[str, str]]]


@dataclass
class Record:
    sop_instance_uid: str
    groups: list[Group]


_CT: Dataset | None = None


def _value(rng: random.Random) -> float:
    """1e-300 .. 1e300, either sign, 1 to 7 significant digits."""
    digits = rng.randint(1, 7)
    mantissa = rng.randint(10 ** (digits - 1), 10**digits - 1)
    return rng.choice((1, -1)) * mantissa * 10.0 ** rng.randint(-300, 300 - digits)


def _sites(rng: random.Random, most: int) -> tuple[list[Any], list[Site]]:
    made, rec = [], []
    for _ in range(rng.randint(0, most)):
        site, lat = rng.choice(SITES), rng.choice(LATERALITIES)
        made.append(hd.sr.FindingSite(site, laterality=lat))
        rec.append(Site(key(site), key(lat) if lat else None))
    return made, rec


def _points(rng: random.Random, n: int, dims: int) -> list[list[float]]:
    return [[round(rng.uniform(0, 500), rng.randint(0, 3)) for _ in range(dims)] for _ in range(n)]


def _seg_evidence(ct: Dataset, uid: str) -> Dataset:
    """A minimal header of a Segmentation of the CT's study: what highdicom needs as evidence."""
    ds = Dataset()
    for keyword in ("StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "StudyID", "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID"):
        setattr(ds, keyword, ct.get(keyword, ""))
    ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.Modality = SEG_STORAGE, uid, generate_uid(), "SEG"
    return ds


def _make_region(rng: random.Random, ct: Dataset) -> tuple[dict[str, Any], Region | None]:
    kind = rng.choice(("none", "2d", "3d", "seg"))
    if kind == "2d":
        gtype = rng.choice(list(KINDS_2D))
        pts = _points(rng, rng.randint(*KINDS_2D[gtype]), 2)
        src = hd.sr.SourceImageForRegion(ct.SOPClassUID, ct.SOPInstanceUID)
        return {"referenced_region": hd.sr.ImageRegion(gtype, np.array(pts), src)}, Region(2, gtype, [c for p in pts for c in p], ct.SOPInstanceUID)
    if kind == "3d":
        gtype = rng.choice(list(KINDS_3D))
        pts = _points(rng, rng.randint(*KINDS_3D[gtype]), 3)
        if gtype == "ELLIPSE":  # major then minor axis end points, in one plane
            (cx, cy, z), a, b = pts[0], rng.randint(1, 40), rng.randint(1, 40)
            pts = [[round(x, 3) for x in p] for p in ([cx - a, cy, z], [cx + a, cy, z], [cx, cy - b, z], [cx, cy + b, z])]
        if gtype == "POLYGON":  # co-planar (one z) and closed
            pts = [[x, y, pts[0][2]] for x, y, _ in pts]
            pts[-1] = list(pts[0])
        frame = ct.FrameOfReferenceUID
        return {"referenced_region": hd.sr.ImageRegion3D(gtype, np.array(pts), frame)}, Region(3, gtype, [c for p in pts for c in p], frame)
    if kind == "seg":
        seg, segment = generate_uid(), rng.randint(1, 9)
        src = hd.sr.SourceImageForSegmentation(ct.SOPClassUID, ct.SOPInstanceUID)
        ref = hd.sr.ReferencedSegmentationFrame(SEG_STORAGE, seg, frame_number=rng.randint(1, 20), segment_number=segment, source_image=src)
        return {"referenced_segment": ref}, Region(0, ref=seg, segment=segment)
    return {}, None


def generate(rng: random.Random, max_measurements: int = 8) -> tuple[bytes, Record]:
    """One report (Part 10 bytes) and the record of what it holds."""
    global _CT
    ct = _CT = _CT or pydicom.dcmread(SHARED / "data" / "referenced" / "highdicom__ct_image.dcm")
    groups, records, evidence = [], [], [ct]
    for g in range(rng.randint(1, 3)):
        measurements, mrec = [], []
        for _ in range(rng.randint(0, max_measurements)):
            name, unit = rng.choice(NAMES), rng.choice(UNITS)
            derivation = rng.choice(DERIVATIONS) if rng.random() < 0.3 else None
            method = rng.choice(METHODS) if rng.random() < 0.3 else None
            sites, site_rec = _sites(rng, 2) if rng.random() < 0.3 else ([], [])
            tracking = (f"M{g}.{len(mrec)}", generate_uid()) if rng.random() < 0.3 else None
            measurements.append(hd.sr.Measurement(
                name=name, value=_value(rng), unit=unit, derivation=derivation, method=method, finding_sites=sites or None,
                tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking[1], identifier=tracking[0]) if tracking else None))
            mrec.append(Measured(key(name), unit.value, key(derivation) if derivation else None, key(method) if method else None, site_rec, tracking))
        evaluations = [(rng.choice(EVALUATIONS), rng.choice(EVALUATION_VALUES)) for _ in range(rng.randint(0, 2))]
        sites, site_rec = _sites(rng, 2)
        region_args, region = _make_region(rng, ct)
        tracking = (f"G{g}", generate_uid())
        cls = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations if region_args else hd.sr.MeasurementsAndQualitativeEvaluations
        groups.append(cls(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking[1], identifier=tracking[0]), finding_sites=sites or None,
            measurements=measurements or None, qualitative_evaluations=[hd.sr.QualitativeEvaluation(n, v) for n, v in evaluations] or None,
            **region_args))
        records.append(Group(tracking, site_rec, region, mrec, [(key(n), key(v)) for n, v in evaluations]))
        if region is not None and region.dims == 0:
            evidence.append(_seg_evidence(ct, region.ref))
    context = hd.sr.ObservationContext(observer_person_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Person, observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Doe^Radiologist")))
    report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=groups)
    uid = generate_uid()
    sr = hd.sr.Comprehensive3DSR(evidence=evidence, content=report, series_instance_uid=generate_uid(), series_number=9, sop_instance_uid=uid,
                                 instance_number=1, manufacturer="sr2fhir generator")
    buf = io.BytesIO()
    sr.save_as(buf)
    data = buf.getvalue()
    _values_as_written(data, records)
    return data, Record(uid, records)


def _values_as_written(data: bytes, groups: list[Group]) -> None:
    """Fill each measurement's DS text from the written file, group by group, NUM by NUM."""
    ds = pydicom.dcmread(io.BytesIO(data))
    imaging = next(i for i in ds.ContentSequence if i.ValueType == "CONTAINER" and i.ConceptNameCodeSequence[0].CodeValue == "126010")
    for item, rec in zip([i for i in imaging.ContentSequence if i.ValueType == "CONTAINER"], groups, strict=True):
        nums = [i for i in item.ContentSequence if i.ValueType == "NUM"]
        for num, m in zip(nums, rec.measurements, strict=True):
            m.value_text = str(num.MeasuredValueSequence[0].NumericValue)  # a DSfloat read from the file prints as written


# --- the comparison ------------------------------------------------------------------------

UCUM_REPAIRED = re.compile(r"^(\{[^}]*\})(?=[^./])")  # D-31: a leading annotation gets a "."


def _codes(cc: dict[str, Any] | None) -> tuple[str, str] | None:
    c = (cc or {}).get("coding", [None])[0]
    return (c["system"], c["code"]) if c else None


def _category(o: dict[str, Any]) -> str | None:
    return next((c["code"] for cat in o.get("category", []) for c in cat.get("coding", [])), None)


def _sites_of(o: dict[str, Any], by_url: dict[str, dict[str, Any]]) -> list[Site]:
    if o.get("bodySite"):
        return [Site(_codes(o["bodySite"]) or ("", ""), None)]
    body = by_url.get((o.get("bodyStructure") or {}).get("reference", ""))
    return [Site(_codes(s["structure"]) or ("", ""), _codes(s.get("laterality"))) for s in (body or {}).get("includedStructure", [])]


def _tracking_of(o: dict[str, Any], by_url: dict[str, dict[str, Any]]) -> tuple[str, str] | None:
    idents = list(o.get("identifier", []))
    body = by_url.get((o.get("bodyStructure") or {}).get("reference", ""))
    idents += (body or {}).get("identifier", [])
    text = next((i["value"] for i in idents if _codes(i.get("type")) == (SYSTEMS["DCM"], "112039")), None)
    uid = next((i["value"].removeprefix("urn:oid:") for i in idents if _codes(i.get("type")) == (SYSTEMS["DCM"], "112040")), None)
    return (text, uid) if text and uid else None


def _same_decimal(fhir: Any, ds: str) -> bool:
    """The same number with the same significant digits (D-46)."""
    a, b = Decimal(str(fhir)), Decimal(ds.strip())
    return a == b and len(a.as_tuple().digits) == len(b.as_tuple().digits)


def compare(record: Record, resources: list[dict[str, Any]]) -> list[str]:
    """Every difference between what the generator wrote and the R5 resources (empty: none)."""
    by_url = {f"urn:uuid:{r['id']}": r for r in resources}
    groups = [o for o in resources if o["resourceType"] == "Observation" and _category(o) == "125007"]
    out: list[str] = []
    if len(groups) != len(record.groups):
        return [f"{len(groups)} group Observations for {len(record.groups)} groups"]
    for g, obs in zip(record.groups, groups):
        where = f"group {g.tracking[0]}"
        if _tracking_of(obs, by_url) != g.tracking:
            out.append(f"{where}: tracking {_tracking_of(obs, by_url)}")
        if [(s.site, s.laterality) for s in _sites_of(obs, by_url)] != [(s.site, s.laterality) for s in g.sites]:
            out.append(f"{where}: sites {_sites_of(obs, by_url)} != {g.sites}")
        members = [by_url.get(m["reference"]) for m in obs.get("hasMember", [])]
        if None in members:
            out.append(f"{where}: a hasMember names no resource of the output")
        members = [m for m in members if m is not None]
        nums = [m for m in members if _category(m) is None]
        evals = [m for m in members if _category(m) == "C0034375"]
        if [(_codes(e["code"]), _codes(e.get("valueCodeableConcept"))) for e in evals] != g.evaluations:
            out.append(f"{where}: evaluations differ")
        if len(nums) != len(g.measurements):
            out.append(f"{where}: {len(nums)} measurements for {len(g.measurements)}")
            continue
        for i, (m, o) in enumerate(zip(g.measurements, nums)):
            out += [f"{where} measurement {i}: {d}" for d in _measurement(m, o, g, by_url)]
        out += [f"{where}: {d}" for d in _region(g.region, obs, by_url)]
    return out


def _measurement(m: Measured, o: dict[str, Any], g: Group, by_url: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    q = o.get("valueQuantity", {})
    if _codes(o["code"]) != m.name:
        out.append(f"code {_codes(o['code'])} != {m.name}")
    if not _same_decimal(q.get("value"), m.value_text):
        out.append(f"value {q.get('value')} != DS {m.value_text!r}")
    if q.get("code") != UCUM_REPAIRED.sub(r"\1.", m.unit) or q.get("system") != SYSTEMS["UCUM"]:
        out.append(f"unit {q.get('code')} != {m.unit}")
    derivation = next((_codes(c.get("valueCodeableConcept")) for c in o.get("component", []) if _codes(c["code"]) == (SYSTEMS["DCM"], "121401")), None)
    if derivation != m.derivation:
        out.append(f"derivation {derivation} != {m.derivation}")
    if _codes(o.get("method")) != m.method:
        out.append(f"method {_codes(o.get('method'))} != {m.method}")
    want_sites = m.sites or g.sites
    if [(s.site, s.laterality) for s in _sites_of(o, by_url)] != [(s.site, s.laterality) for s in want_sites]:
        out.append(f"sites {_sites_of(o, by_url)} != {want_sites}")
    want_tracking = m.tracking or (g.tracking if not m.sites else None)
    if m.tracking and _tracking_of(o, by_url) != want_tracking:
        out.append(f"tracking {_tracking_of(o, by_url)} != {want_tracking}")
    return out


def _region(region: Region | None, obs: dict[str, Any], by_url: dict[str, dict[str, Any]]) -> list[str]:
    selections = [by_url.get(r["reference"], {}) for r in obs.get("derivedFrom", []) if r.get("type") == "ImagingSelection"]
    if region is None:
        return [] if not selections else [f"{len(selections)} selections without a region"]
    if region.dims == 2:
        got = [(i["uid"], reg["regionType"], [float(c) for c in reg["coordinate"]]) for s in selections for i in s.get("instance", []) for reg in i.get("imageRegion2D", [])]
        kind = region.graphic_type.lower()
        flat = [c for _, _, cs in got for c in cs]
        if {(u, k) for u, k, _ in got} != {(region.ref, kind)} or flat != region.data:
            return [f"2D region {got} != {region}"]
    elif region.dims == 3:
        got3 = [(s.get("frameOfReferenceUid"), [x["valueCode"] for x in e["extension"] if x["url"] == "regionType"][0],
                 [float(x["valueDecimal"]) for x in e["extension"] if x["url"] == "coordinate"]) for s in selections for e in s.get("extension", [])]
        if got3 != [(region.ref, region.graphic_type.lower(), region.data)]:
            return [f"3D region {got3} != {region}"]
    else:
        segs = [(i["uid"], i.get("subset")) for s in selections for i in s.get("instance", []) if i["uid"] == region.ref]
        if segs != [(region.ref, [str(region.segment)])]:
            return [f"segment {segs} != {region}"]
    return []


def write(path: Path, rng: random.Random, max_measurements: int = 8) -> Record:
    data, record = generate(rng, max_measurements)
    path.write_bytes(data)
    return record


def compare_r4(r5: list[dict[str, Any]], r4: list[dict[str, Any]]) -> list[str]:
    """The R4 output says what the R5 one says (D-38): the same Observations with the same values,
    codes, units, modifiers and methods; each ImagingSelection a Basic with the same 3D regions (D-51)."""
    down = {r["id"]: r for r in r4}
    out = []
    for r in r5:
        new = down.get(r["id"])
        if new is None:
            out.append(f"{r['resourceType']}/{r['id']} missing in R4")
        elif r["resourceType"] == "Observation":
            out += [f"Observation/{r['id']} {k}" for k in ("code", "valueQuantity", "valueCodeableConcept", "component", "method") if new.get(k) != r.get(k)]
        elif r["resourceType"] == "ImagingSelection":
            own = r.get("extension", [])
            if new["resourceType"] != "Basic" or [e for e in new.get("extension", []) if e in own] != own:
                out.append(f"ImagingSelection/{r['id']}: its 3D regions are not on the Basic")
    return out


def compare_rows(record: Record, tables: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The export's rows (as read back from Parquet) say what the record says: each measurement's
    concept, exact value (D-46) and unit, in order; each region's coordinates."""
    out = []
    rows = tables["measurements"]
    expected = [(g, m) for g in record.groups for m in g.measurements]
    if len(rows) != len(expected):
        return [f"{len(rows)} measurement rows for {len(expected)} measurements"]
    for row, (g, m) in zip(rows, expected):
        if ((row["concept"] or {}).get("system"), (row["concept"] or {}).get("code")) != m.name:
            out.append(f"row concept {row['concept']} != {m.name}")
        if not _same_decimal(row["value_exact"], m.value_text) or row["value"] != float(m.value_text):
            out.append(f"row value {row['value_exact']} / {row['value']} != DS {m.value_text!r}")
        if (row["unit"] or {}).get("code") != UCUM_REPAIRED.sub(r"\1.", m.unit):
            out.append(f"row unit {row['unit']} != {m.unit}")
        want = m.sites or g.sites
        got = [((s["site"] or {}).get("system"), (s["site"] or {}).get("code")) for s in row["finding_sites"]]
        if got != [s.site for s in want]:
            out.append(f"row sites {got} != {[s.site for s in want]}")
    regions = [r for r in tables["regions"] if r["dimensions"] == 3]
    want3 = [g.region for g in record.groups if g.region is not None and g.region.dims == 3]
    if [(r["frame_of_reference_uid"], r["region_type"], r["coordinates"]) for r in regions] != [(w.ref, w.graphic_type.lower(), w.data) for w in want3]:
        out.append("3D region rows differ")
    flat2 = [c for r in tables["regions"] if r["dimensions"] == 2 for c in r["coordinates"]]
    if flat2 != [c for g in record.groups if g.region is not None and g.region.dims == 2 for c in g.region.data]:
        out.append("2D region rows differ")
    return out
