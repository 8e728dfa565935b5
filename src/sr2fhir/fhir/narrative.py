"""Generated narratives (`Resource.text`, status `generated`): a short, readable summary.

The IG examples only paste DICOM JSON into their narratives; we describe the resource instead
(docs/decisions.md D-18). Narratives never contain patient identifiers.
"""

from __future__ import annotations

import re
from html import escape as _html_escape
from typing import Any, Callable

from . import extensions

XHTML = "http://www.w3.org/1999/xhtml"
_SPECIAL = re.compile("[&<>\"']")


def escape(s: str) -> str:
    """html.escape, skipped for text with nothing to escape (most of it: one scan, not five)."""
    return _html_escape(s) if _SPECIAL.search(s) else s


def display(cc: dict[str, Any] | None) -> str:
    """What a CodeableConcept says to a reader: its text, else its first coding's display or code."""
    if not cc:
        return ""
    if cc.get("text"):
        return str(cc["text"])
    for c in cc.get("coding", []):
        return str(c.get("display") or c.get("code", ""))
    return ""


def quantity(q: dict[str, Any]) -> str:
    """A Quantity as a reader says it: value and unit."""
    return f"{q.get('value', '')} {q.get('unit') or q.get('code', '')}".strip()


def _observation(r: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("Code", display(r.get("code")))]
    if "valueQuantity" in r:
        rows.append(("Value", quantity(r["valueQuantity"])))
    elif "valueCodeableConcept" in r:
        rows.append(("Value", display(r["valueCodeableConcept"])))
    elif "dataAbsentReason" in r:
        rows.append(("Value absent", display(r["dataAbsentReason"])))
    rows.append(("Status", r.get("status", "")))
    rows.append(("Issued", r.get("issued", "")))
    if r.get("bodySite"):
        rows.append(("Body site", display(r["bodySite"])))
    if r.get("hasMember"):
        rows.append(("Members", str(len(r["hasMember"]))))
    return rows


def _imaging_selection(r: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("Code", display(r.get("code")))]
    for inst in r.get("instance", []):
        sop = inst.get("sopClass", {}).get("display") or inst.get("sopClass", {}).get("code", "")
        extra = ""
        if inst.get("subset"):
            extra = f" subset {', '.join(inst['subset'])}"
        for reg in inst.get("imageRegion2D", []) + inst.get("imageRegion3D", []):
            extra += f" {reg['regionType']} ({len(reg.get('coordinate', []))} values)"
        rows.append(("Instance", f"{inst.get('uid', '')} {sop}{extra}".strip()))
    if r.get("frameOfReferenceUid"):
        rows.append(("Frame of reference", r["frameOfReferenceUid"]))
    for kind, xyz in extensions.regions_3d(r):
        rows.append(("3D region", f"{kind or ''} ({len(xyz)} values, mm)"))
    if r.get("seriesUid"):
        rows.append(("Series", r["seriesUid"]))
    return rows


def _device(r: dict[str, Any]) -> list[tuple[str, str]]:
    """What identifies the Device to a reader: every name, the manufacturer, serial number,
    versions and UID (an equipment Device may state nothing but a serial number)."""
    names = [r.get("displayName", ""), *(n.get("value", "") for n in r.get("name", []))]
    rows = [("Name", n) for i, n in enumerate(names) if n and n not in names[:i]]
    rows += [(k, r[key]) for k, key in (("Manufacturer", "manufacturer"), ("Serial number", "serialNumber")) if r.get(key)]
    rows += [("Version", v.get("value", "")) for v in r.get("version", [])]
    rows += [("UID", i["value"].removeprefix("urn:oid:")) for i in r.get("identifier", []) if i.get("system") == "urn:dicom:uid"]
    return rows


def _body_structure(r: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for s in r.get("includedStructure", []):
        text = display(s.get("structure"))
        if s.get("laterality"):
            text += f", {display(s['laterality'])}"
        for q in s.get("qualifier", []):
            text += f", {display(q)}"
        rows.append(("Structure", text))
    for i in r.get("identifier", []):
        rows.append((display(i.get("type")) or "Identifier", i.get("value", "")))
    return rows


def _practitioner(r: dict[str, Any]) -> list[tuple[str, str]]:
    return [("Role", "Person observer of the DICOM SR")]


_SUMMARIES: dict[str, Callable[[dict[str, Any]], list[tuple[str, str]]]] = {
    "Observation": _observation,
    "ImagingSelection": _imaging_selection,
    "Device": _device,
    "BodyStructure": _body_structure,
    "Practitioner": _practitioner,
}


def _no_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    return []


def add_narrative(r: dict[str, Any], title: str) -> None:
    """Set `r['text']` to a generated narrative."""
    rows = _SUMMARIES.get(r["resourceType"], _no_rows)(r)
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows if v)
    table = f"<table>{cells}</table>" if cells else ""  # never an empty table
    r["text"] = {
        "status": "generated",
        "div": f'<div xmlns="{XHTML}"><p><b>{escape(title)}</b></p>{table}</div>',
    }
