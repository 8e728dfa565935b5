"""Research tables from one report's FHIR resources (issue 15; docs/export.md).

The rows are read off the R5 resources the IG's mapping made, not off the SR, so that a table
says what the FHIR says: the IG's semantics, every template family, planar (TID 1410) groups and
their coordinates included. Columns are modelled on NCI IDC's `measurement_groups`,
`quantitative_measurements` and `qualitative_measurements`. `COLUMNS` is the one definition of
every table (the Arrow schemas and docs/export.md come from it).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterator

import pyarrow as pa

from ..dicom.content import SRDocument
from ..fhir import extensions
from ..fhir.ids import full_url

CODE = pa.struct([("code", pa.string()), ("system", pa.string()), ("display", pa.string())])
"""A coded concept: the first Coding of a CodeableConcept (code, FHIR system URI, display)."""
MODIFIER = pa.struct([
    ("concept", CODE), ("value_code", CODE), ("value", pa.float64()), ("value_exact", pa.string()), ("unit", CODE), ("value_text", pa.string()),
])
"""One Observation.component: a modifier of the measurement (D-33) such as Derivation or Time Point."""
PROPERTY = pa.struct([("type", CODE), ("value", pa.string())])
SITE = pa.struct([("site", CODE), ("laterality", CODE), ("qualifiers", pa.list_(CODE))])
"""One finding site: a BodyStructure's includedStructure, or Observation.bodySite."""
STRINGS = pa.list_(pa.string())

_KEYS = [
    ("source", pa.string(), "the input file (its absolute path; `path[i]` for the i-th report of a DICOM JSON array)"),
    ("sop_instance_uid", pa.string(), "the SR's SOP Instance UID"),
    ("study_instance_uid", pa.string(), "the SR's Study Instance UID"),
    ("patient_id", pa.string(), "Patient ID (0010,0020)"),
    ("fhir_id", pa.string(), "the id of the FHIR resource the row reads (Observation, ImagingSelection, Device), as in the NDJSON"),
]
_CONTEXT = [
    ("group_fhir_id", pa.string(), "the measurement group Observation that has this one as member"),
    ("group_number", pa.int32(), "as IDC's measurementGroup_number: the 0-based position of the group among all the children of the Imaging Measurements container (other items counted)"),
    ("concept", CODE, "Observation.code (the concept name)"),
    ("concept_text", pa.string(), "Observation.code.text (concept name with its modifiers, D-33), else the concept's meaning (its display)"),
    ("status", pa.string(), "Observation.status"),
    ("issued", pa.string(), "Observation.issued"),
    ("method", CODE, "Observation.method (Measurement Method)"),
    ("derivation", CODE, "the Derivation (121401) modifier"),
    ("modifiers", pa.list_(MODIFIER), "every Observation.component"),
    ("finding", CODE, "the group's Finding (its valueCodeableConcept)"),
    ("finding_site", CODE, "the finding site: the BodyStructure's structure, or Observation.bodySite"),
    ("laterality", CODE, "the finding site's laterality"),
    ("site_qualifiers", pa.list_(CODE), "the finding site's qualifiers"),
    ("finding_sites", pa.list_(SITE), "every finding site, each with its laterality and qualifiers (two for a bilateral finding); the three columns before it repeat the first"),
    ("tracking_identifier", pa.string(), "Tracking Identifier (112039)"),
    ("tracking_unique_identifier", pa.string(), "Tracking Unique Identifier (112040), a bare UID"),
    ("device_fhir_id", pa.string(), "Observation.device"),
    ("selection_fhir_ids", STRINGS, "the ImagingSelections the Observation is derived from (regions, segments, images)"),
    ("referenced_sop_instance_uids", STRINGS, "the images / segmentations those selections name"),
    ("referenced_series_uids", STRINGS, "their Series Instance UIDs"),
    ("referenced_subsets", STRINGS, "frames or segment numbers within them (ImagingSelection.instance.subset)"),
]
_VALUE = [
    ("value", pa.float64(), "valueQuantity.value"),
    ("value_exact", pa.string(), "the same value with the SR's exact digits (DS text)"),
    ("unit", CODE, "valueQuantity unit (UCUM)"),
    ("data_absent_reason", pa.string(), "Observation.dataAbsentReason code, when there is no value"),
]

COLUMNS: dict[str, list[tuple[str, pa.DataType, str]]] = {
    "measurement_groups": [*_KEYS, *[c for c in _CONTEXT if c[0] not in ("group_fhir_id", "derivation")],
                           ("member_fhir_ids", STRINGS, "Observation.hasMember")],
    "measurements": [*_KEYS, *_CONTEXT, *_VALUE],
    "qualitative_evaluations": [*_KEYS, *_CONTEXT, ("value_code", CODE, "valueCodeableConcept"), ("value_text", pa.string(), "valueString")],
    "derived_measurements": [*_KEYS, *_CONTEXT, *_VALUE, ("derived_from_fhir_ids", STRINGS, "the measurement groups it is derived from")],
    "regions": [
        *_KEYS,
        ("profile", pa.string(), "the IG profile the ImagingSelection claims (e.g. image-region-2d), if any"),
        ("purpose", CODE, "ImagingSelection.code"),
        ("observation_fhir_ids", STRINGS, "the Observations derived from this selection"),
        ("series_uid", pa.string(), "ImagingSelection.seriesUid"),
        ("frame_of_reference_uid", pa.string(), "ImagingSelection.frameOfReferenceUid"),
        ("referenced_sop_instance_uid", pa.string(), "instance.uid"),
        ("referenced_sop_class_uid", pa.string(), "instance.sopClass"),
        ("subset", STRINGS, "instance.subset: frame or segment numbers"),
        ("dimensions", pa.int8(), "2 (imageRegion2D of an instance) or 3 (sr2fhir's image-region-3d extension, D-51); empty without a region"),
        ("region_type", pa.string(), "the regionType (2D: point, polyline, circle, ellipse; 3D: point, multipoint, polyline, polygon, ellipse, ellipsoid)"),
        ("coordinates", pa.list_(pa.float64()), "2D: column/row pairs in image pixels; 3D: x/y/z triplets in mm in frame_of_reference_uid; as the SR has them"),
    ],
    "devices": [
        *_KEYS,
        ("profile", pa.string(), "dicom-general-equipment, dicom-participant-device or algorithm-identification"),
        ("name", pa.string(), "Device.displayName, else name.value"),
        ("names", STRINGS, "every Device.name value"),
        ("manufacturer", pa.string(), "Device.manufacturer"),
        ("serial_number", pa.string(), "Device.serialNumber"),
        ("versions", STRINGS, "Device.version values"),
        ("device_uid", pa.string(), "the identifier value (a UID as urn:oid, or the resource's urn:uuid)"),
        ("parent_fhir_id", pa.string(), "Device.parent"),
        ("properties", pa.list_(PROPERTY), "Device.property (e.g. Algorithm Parameters)"),
    ],
    "diagnostics": [
        ("source", pa.string(), "the input file"),
        ("sop_instance_uid", pa.string(), "its SOP Instance UID, when it could be read"),
        ("severity", pa.string(), "information, warning, error or fatal"),
        ("rule", pa.string(), "the diagnostic's rule (docs/diagnostics.md)"),
        ("path", pa.string(), "the content item path (1.2.3), if any"),
        ("item_concept", pa.string(), "the content item's concept name"),
        ("message", pa.string(), "the diagnostic, as the command line shows it (no patient data)"),
    ],
    "failures": [
        ("source", pa.string(), "the input file"),
        ("sop_instance_uid", pa.string(), "its SOP Instance UID, when it could be read"),
        ("code", pa.string(), "the failure's code (docs/diagnostics.md)"),
        ("reason", pa.string(), "the failure, as the command line shows it"),
    ],
}
SCHEMAS = {name: pa.schema([(c, t) for c, t, _ in cols]) for name, cols in COLUMNS.items()}
TABLES = tuple(COLUMNS)

GROUP, QUALITATIVE, DERIVED = "125007", "C0034375", "126011"
"""Observation.category codes: DCM Measurement Group, UMLS Qualitative Evaluations, DCM Derived
Imaging Measurements (the IG's profiles fix them); an Observation with none is a measurement."""
TRACKING_ID, TRACKING_UID, DERIVATION = "112039", "112040", "121401"


def code(cc: Any) -> dict[str, str | None] | None:
    """The first Coding of a CodeableConcept (or a Coding) as a CODE struct."""
    if not isinstance(cc, dict):
        return None
    c = cc["coding"][0] if cc.get("coding") else cc if "code" in cc else None
    return {"code": c.get("code"), "system": c.get("system"), "display": c.get("display")} if c else None


def _number(v: Any) -> tuple[float | None, str | None]:
    if v is None:
        return None, None
    return float(v), str(v) if isinstance(v, Decimal) else repr(v) if isinstance(v, float) else str(v)


class _Report:
    """One report's resources, indexed for the rows."""

    def __init__(self, doc: SRDocument, resources: list[dict[str, Any]], sources: dict[str, list[str]]) -> None:
        self.keys = {"source": doc.source, "sop_instance_uid": doc.sop_instance_uid, "study_instance_uid": doc.study_instance_uid, "patient_id": doc.header.patient_id}
        self.resources = resources
        self.by_url = {full_url(r["id"]): r for r in resources}
        self.observations = [r for r in resources if r["resourceType"] == "Observation"]
        self.groups = [o for o in self.observations if _category(o) == GROUP]
        self.number = {g["id"]: _offset(sources.get(g["id"])) for g in self.groups}
        self.group_of: dict[str, tuple[dict[str, Any], int | None]] = {}
        for g in self.groups:
            for m in g.get("hasMember", []):
                self.group_of[_rid(m) or ""] = (g, self.number[g["id"]])

    def target(self, ref: Any) -> dict[str, Any] | None:
        return self.by_url.get(ref.get("reference", "")) if isinstance(ref, dict) else None

    def context(self, o: dict[str, Any], group: dict[str, Any] | None, number: int | None) -> dict[str, Any]:
        """The columns every Observation row has (_CONTEXT)."""
        sites = self._sites(o) or (self._sites(group) if group else [])
        site = sites[0] if sites else {}
        selections = [s for s in (self.target(r) for r in o.get("derivedFrom", [])) if s and s["resourceType"] == "ImagingSelection"]
        instances = [i for s in selections for i in s.get("instance", [])]
        mods = o.get("component", [])
        tracking = self._tracking(o) or (self._tracking(group) if group else {})
        return {
            **self.keys, "fhir_id": o["id"],
            "group_fhir_id": group["id"] if group else None, "group_number": number,
            "concept": code(o.get("code")), "concept_text": (o.get("code") or {}).get("text") or (code(o.get("code")) or {}).get("display"),
            "status": o.get("status"), "issued": o.get("issued"), "method": code(o.get("method")),
            "derivation": next((code(m.get("valueCodeableConcept")) for m in mods if (code(m.get("code")) or {}).get("code") == DERIVATION), None),
            "modifiers": [_modifier(m) for m in mods],
            "finding": code(group.get("valueCodeableConcept")) if group else None,
            "finding_site": site.get("site"), "laterality": site.get("laterality"), "site_qualifiers": site.get("qualifiers", []),
            "finding_sites": sites,
            "tracking_identifier": tracking.get(TRACKING_ID), "tracking_unique_identifier": tracking.get(TRACKING_UID),
            "device_fhir_id": _rid(o.get("device")),
            "selection_fhir_ids": [s["id"] for s in selections],
            "referenced_sop_instance_uids": [i["uid"] for i in instances if i.get("uid")],
            "referenced_series_uids": sorted({s["seriesUid"] for s in selections if s.get("seriesUid")}),
            "referenced_subsets": [x for i in instances for x in i.get("subset", [])],
        }

    def _sites(self, o: dict[str, Any]) -> list[dict[str, Any]]:
        bs = self.target(o.get("bodyStructure"))
        if bs is not None:
            return [{"site": code(inc.get("structure")), "laterality": code(inc.get("laterality")), "qualifiers": [code(q) for q in inc.get("qualifier", [])]}
                    for inc in bs.get("includedStructure", [])]
        return [{"site": code(o["bodySite"]), "laterality": None, "qualifiers": []}] if o.get("bodySite") else []

    def _tracking(self, o: dict[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        bs = self.target(o.get("bodyStructure"))
        # The Observation's own tracking ids (D-34) come before those of a BodyStructure it shares with its group.
        for ident in [*o.get("identifier", []), *(bs or {}).get("identifier", [])]:
            kind = (code(ident.get("type")) or {}).get("code")
            if kind in (TRACKING_ID, TRACKING_UID) and kind not in out:
                value = str(ident.get("value", ""))
                out[kind] = value.removeprefix("urn:oid:") if kind == TRACKING_UID else value  # a bare UID, as every UID column
        return out


def _rid(ref: Any) -> str | None:
    r = ref.get("reference") if isinstance(ref, dict) else None
    return r.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if isinstance(r, str) else None


def _category(o: dict[str, Any]) -> str | None:
    return next((c.get("code") for cat in o.get("category", []) for c in cat.get("coding", [])), None)


def _profile(r: dict[str, Any]) -> str | None:
    p = r.get("meta", {}).get("profile")
    return p[0].rsplit("/", 1)[-1] if p else None


def _modifier(m: dict[str, Any]) -> dict[str, Any]:
    q = m.get("valueQuantity") or {}
    value, exact = _number(q.get("value"))
    text = m.get("valueString") or m.get("valueDateTime") or m.get("valueTime")
    return {"concept": code(m.get("code")), "value_code": code(m.get("valueCodeableConcept")), "value": value, "value_exact": exact,
            "unit": {"code": q.get("code"), "system": q.get("system"), "display": q.get("unit")} if q else None, "value_text": text}


def _value(o: dict[str, Any]) -> dict[str, Any]:
    q = o.get("valueQuantity") or {}
    value, exact = _number(q.get("value"))
    return {"value": value, "value_exact": exact, "unit": {"code": q.get("code"), "system": q.get("system"), "display": q.get("unit")} if q else None,
            "data_absent_reason": (code(o.get("dataAbsentReason")) or {}).get("code")}


def _offset(paths: list[str] | None) -> int | None:
    """IDC's measurementGroup_number: the 0-based position of the group's content item among all
    the children of its container (`WITH OFFSET` over the container's ContentSequence)."""
    last = paths[0].rsplit(".", 1)[-1] if paths else ""
    return int(last) - 1 if last.isdigit() else None


def rows(doc: SRDocument, resources: list[dict[str, Any]], sources: dict[str, list[str]] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows for one report (failures aside). `sources`: resource id -> the content
    item paths it was made from (Conversion.sources), for the group numbers."""
    rep = _Report(doc, resources, sources or {})
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    for g in rep.groups:
        n = rep.number[g["id"]]
        row = rep.context(g, None, n)
        row.update(group_number=n, finding=code(g.get("valueCodeableConcept")), member_fhir_ids=[_rid(m) for m in g.get("hasMember", [])])
        out["measurement_groups"].append(row)
    for o in rep.observations:
        kind = _category(o)
        if kind == GROUP:
            continue
        group, number = rep.group_of.get(o["id"], (None, None))
        row = rep.context(o, group, number)
        if kind == QUALITATIVE:
            row.update(value_code=code(o.get("valueCodeableConcept")), value_text=o.get("valueString"))
            out["qualitative_evaluations"].append(row)
        elif kind == DERIVED:
            row.update(_value(o), derived_from_fhir_ids=[_rid(r) for r in o.get("derivedFrom", []) if r.get("type") == "Observation"])
            out["derived_measurements"].append(row)
        else:
            row.update(_value(o))
            out["measurements"].append(row)
    users: dict[str, list[str]] = {}
    for o in rep.observations:
        for r in o.get("derivedFrom", []):
            if r.get("type") == "ImagingSelection":
                users.setdefault(_rid(r) or "", []).append(o["id"])
    for s in (r for r in resources if r["resourceType"] == "ImagingSelection"):
        out["regions"] += _regions(rep.keys, s, users.get(s["id"], []))
    for d in (r for r in resources if r["resourceType"] == "Device"):
        out["devices"].append(_device(rep.keys, d))
    return out


def _regions(keys: dict[str, Any], s: dict[str, Any], users: list[str]) -> Iterator[dict[str, Any]]:
    base = {**keys, "fhir_id": s["id"], "profile": _profile(s), "purpose": code(s.get("code")), "observation_fhir_ids": users,
            "series_uid": s.get("seriesUid"), "frame_of_reference_uid": s.get("frameOfReferenceUid")}
    regions_3d = extensions.regions_3d(s)
    for inst in s.get("instance", []) or ([] if regions_3d else [{}]):
        per = {**base, "referenced_sop_instance_uid": inst.get("uid"), "referenced_sop_class_uid": _sop_class(inst.get("sopClass")),
               "subset": inst.get("subset", [])}
        regions = inst.get("imageRegion2D", [])
        if not regions:
            yield {**per, "dimensions": None, "region_type": None, "coordinates": []}
        for reg in regions:
            yield {**per, "dimensions": 2, "region_type": reg.get("regionType"), "coordinates": [float(c) for c in reg.get("coordinate", [])]}
    for kind, xyz in regions_3d:
        yield {**base, "referenced_sop_instance_uid": None, "referenced_sop_class_uid": None, "subset": [], "dimensions": 3,
               "region_type": kind, "coordinates": [float(c) for c in xyz]}


def _sop_class(c: Any) -> str | None:
    v = c.get("code") if isinstance(c, dict) else None
    return v.removeprefix("urn:oid:") if isinstance(v, str) else None


def _device(keys: dict[str, Any], d: dict[str, Any]) -> dict[str, Any]:
    names = [n.get("value") for n in d.get("name", []) if n.get("value")]
    return {
        **keys, "fhir_id": d["id"], "profile": _profile(d), "name": d.get("displayName") or (names[0] if names else None), "names": names,
        "manufacturer": d.get("manufacturer"), "serial_number": d.get("serialNumber"),
        "versions": [v.get("value") for v in d.get("version", []) if v.get("value")],
        "device_uid": next((i.get("value") for i in d.get("identifier", [])), None), "parent_fhir_id": _rid(d.get("parent")),
        "properties": [{"type": code(p.get("type")), "value": p.get("valueString")} for p in d.get("property", [])],
    }


def markdown() -> str:
    """COLUMNS as the tables of docs/export.md (scripts/make_docs.py writes it there)."""
    out = []
    for name, cols in COLUMNS.items():
        out += [f"### `{name}`", "", "| column | type | what |", "|---|---|---|"]
        out += [f"| `{c}` | {str(t).replace('<', '&lt;').replace('>', '&gt;')} | {what} |" for c, t, what in cols]
        out.append("")
    return "\n".join(out)
