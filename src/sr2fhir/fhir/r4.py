"""FHIR R5 -> R4: the resources sr2fhir emits, down-converted element by element (issue 14).

The IG's mapping stays one R5 mapping; this step rewrites its output for the R4 servers most sites
run. `ROWS` is the one table of what happens to each R5 element (docs/r4.md is generated from
it). Where R4 has no element, the HL7 cross-version extensions carry the R5 content
(`hl7.fhir.uv.xver-r5.r4` 0.1.0: `http://hl7.org/fhir/5.0/StructureDefinition/extension-<path>`;
an ImagingSelection becomes a `Basic` profiled `profile-ImagingSelection`). An element the table
does not know is reported as an error, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..diagnostics import Diagnostics
from .bundle import Entry, ResourceSet
from .ids import full_url

FHIR_VERSIONS = ("R5", "R4")
XVER = "http://hl7.org/fhir/5.0/StructureDefinition/"
"""Canonical base of the R5-for-R4 cross-version extensions and profiles (package 0.1.0)."""
SELECTION_PROFILE = XVER + "profile-ImagingSelection"
SELECTION_STATUS = XVER + "extension-ImagingSelection.status"


@dataclass(frozen=True, slots=True)
class Row:
    """What one R5 element becomes in R4."""

    r5: str
    """The R5 element path; a choice element by its JSON name (`Device.property.valueString`)."""
    how: str
    """same | renamed | elements (the element is kept; its children have rows) | extension |
    modifierExtension | complex (a complex extension; its children have rows) | lost | special"""
    r4: str = ""
    """The R4 element (same, renamed), the extension's URL (absolute at the top of an extension
    tree, the element's name inside a complex one), or what a special rule does."""
    value: str = ""
    """The extension's value[x] type (extension rows); empty for a choice element, whose JSON
    name gives it."""
    note: str = ""
    """What R4 loses, or why."""


def _x(path: str) -> str:
    return XVER + "extension-" + path


_R = Row
ROWS: tuple[Row, ...] = (
    # Every resource: meta.profile claims the IG's R5 profiles, which an R4 resource cannot meet.
    _R("*.meta", "elements", "meta"),
    _R("*.meta.profile", "lost", note="the IG's profiles are R5 StructureDefinitions; an R4 resource claims none (a Basic claims profile-ImagingSelection)"),
    _R("*.meta.source", "same", "meta.source"),
    _R("*.meta.tag", "same", "meta.tag"),
    _R("*.text", "same", "text"),
    _R("*.identifier", "same", "identifier"),
    # Observation (imaging-measurement-group, -measurement, -qualitative-evaluation, derived-imaging-measurement)
    *(_R(f"Observation.{e}", "same", e) for e in (
        "status", "category", "code", "subject", "effectiveDateTime", "issued", "performer", "basedOn", "partOf",
        "valueQuantity", "valueCodeableConcept", "valueString", "dataAbsentReason", "bodySite", "method", "device",
        "hasMember", "component")),
    _R("Observation.bodyStructure", "special", f"extension {_x('Observation.bodyStructure')} (valueReference); also `bodySite` = the BodyStructure's location when it is one structure without laterality or qualifier (D-38)"),
    _R("Observation.derivedFrom", "special", f"`derivedFrom` for Observation and ImagingStudy targets; an ImagingSelection (now a Basic) through extension {_x('Observation.derivedFrom')} (valueReference), as R4's derivedFrom cannot point at Basic"),
    # BodyStructure (dicom-sr-finding-site)
    _R("BodyStructure.patient", "same", "patient"),
    _R("BodyStructure.includedStructure", "special", f"the first: `location` = structure, `locationQualifier` = laterality then qualifiers; any further one: extension {_x('BodyStructure.includedStructure')} (complex: structure, laterality, qualifier)"),
    # Device (dicom-general-equipment, dicom-participant-device, algorithm-identification)
    *(_R(f"Device.{e}", "same", e) for e in ("manufacturer", "serialNumber", "parent")),
    _R("Device.name", "elements", "deviceName"),
    _R("Device.name.value", "renamed", "name"),
    _R("Device.name.type", "same", "type", note="R5 registered-name has no R4 code; sr2fhir emits user-friendly-name only"),
    _R("Device.displayName", "special", "`deviceName` with type user-friendly-name, unless a `name` already holds the same text (D-38)", note="which R4 deviceName was R5's displayName"),
    _R("Device.version", "elements", "version"),
    _R("Device.version.value", "same", "value"),
    _R("Device.property", "elements", "property"),
    _R("Device.property.type", "same", "type"),
    _R("Device.property.valueString", "extension", _x("Device.property.value"), note="R4 Device.property has valueQuantity and valueCode only"),
    # DiagnosticReport (--diagnostic-report)
    *(_R(f"DiagnosticReport.{e}", "same", e) for e in (
        "status", "code", "subject", "effectiveDateTime", "issued", "performer", "basedOn", "result")),
    _R("DiagnosticReport.study", "renamed", "imagingStudy"),
    # Practitioner (dicom-participant-person)
    _R("Practitioner.name", "same", "name"),
    # ImagingSelection (the eleven profiles) -> Basic, profile-ImagingSelection
    _R("ImagingSelection", "special", f"`Basic`, meta.profile {SELECTION_PROFILE}", note="the IG profile it claimed (kept in Basic.code: the selection's purpose code)"),
    _R("ImagingSelection.code", "same", "code"),
    _R("ImagingSelection.subject", "same", "subject"),
    _R("ImagingSelection.status", "modifierExtension", SELECTION_STATUS, "Code"),
    *(_R(f"ImagingSelection.{e}", "extension", _x(f"ImagingSelection.{e}"), t) for e, t in (
        ("basedOn", "Reference"), ("derivedFrom", "Reference"), ("studyUid", "Id"), ("seriesUid", "Id"),
        ("frameOfReferenceUid", "Id"), ("focus", "Reference"))),
    _R("ImagingSelection.bodySite", "extension", _x("ImagingSelection.bodySite"), "CodeableReference",
       note="R4 has no CodeableReference: its `reference` becomes valueReference, its `concept` valueCodeableConcept"),
    _R("ImagingSelection.instance", "complex", _x("ImagingSelection.instance")),
    *(_R(f"ImagingSelection.instance.{e}", "extension", e, t) for e, t in (
        ("uid", "Id"), ("number", "UnsignedInt"), ("sopClass", "Coding"), ("subset", "String"))),
    _R("ImagingSelection.instance.imageRegion2D", "complex", "imageRegion2D"),
    _R("ImagingSelection.instance.imageRegion3D", "complex", "imageRegion3D"),
    *(_R(f"ImagingSelection.instance.{r}.{e}", "extension", e, t) for r in ("imageRegion2D", "imageRegion3D")
      for e, t in (("regionType", "Code"), ("coordinate", "Decimal"))),
    _R("ImagingSelection.extension", "special", "kept on the Basic: sr2fhir's own extensions (D-51) have an R4 definition whose context is Basic"),
)
RULES: dict[str, Row] = {r.r5: r for r in ROWS}


def _rule(path: str) -> Row | None:
    """The row of an element: its own, else the one every resource type shares (`*.meta`)."""
    return RULES.get(path) or RULES.get("*." + path.split(".", 1)[-1])


class _Down:
    """One report's resources, down-converted."""

    def __init__(self, resources: dict[str, dict[str, Any]], diagnostics: Diagnostics) -> None:
        self.resources = resources  # by full URL, for what Observation.bodyStructure points at
        self.diags = diagnostics
        self.special: dict[str, Callable[[dict[str, Any], Any], None]] = {
            "Observation.bodyStructure": self._body_structure,
            "Observation.derivedFrom": self._derived_from,
            "BodyStructure.includedStructure": self._included_structure,
            "Device.displayName": self._display_name,
            "ImagingSelection.extension": self._own_extensions,
        }

    def resource(self, r5: dict[str, Any]) -> dict[str, Any]:
        rtype = r5["resourceType"]
        out: dict[str, Any] = {"resourceType": "Basic" if rtype == "ImagingSelection" else rtype, "id": r5["id"]}
        self._elements(rtype, {k: v for k, v in r5.items() if k not in ("resourceType", "id")}, out, r5["id"])
        if rtype == "ImagingSelection":
            out.setdefault("meta", {})["profile"] = [SELECTION_PROFILE]
        converted: dict[str, Any] = _retyped(_ordered(out))
        return converted

    def _elements(self, path: str, r5: dict[str, Any], out: dict[str, Any], rid: str) -> None:
        specials: list[tuple[Row, Any]] = []  # after the plain elements they may add to (deviceName)
        for key, value in r5.items():
            p = f"{path}.{key}"
            row = _rule(p)
            if row is None:
                self._unmapped(p, rid)
                continue
            if row.how == "special":
                specials.append((row, value))
            elif row.how in ("same", "renamed"):
                out[row.r4.rsplit(".", 1)[-1]] = value
            elif row.how == "elements":
                items = [c for v in _listed(value) if (c := self._child(p, v, rid))]
                if items:
                    out[row.r4] = items if isinstance(value, list) else items[0]
            elif row.how in ("extension", "modifierExtension", "complex"):
                holder = "modifierExtension" if row.how == "modifierExtension" else "extension"
                out.setdefault(holder, []).extend(self._extensions(p, row, value, rid))
            # "lost": documented in docs/r4.md; nothing to write
        for row, value in specials:
            self.special[row.r5](out, value)

    @staticmethod
    def _own_extensions(out: dict[str, Any], value: list[dict[str, Any]]) -> None:
        out.setdefault("extension", []).extend(value)

    def _unmapped(self, path: str, rid: str) -> None:
        self.diags.error(
            "r4-unmapped-element", f"R5 element {path} has no R4 rule (docs/r4.md)",
            location=f"output {rid}", action="left out of the R4 output: an sr2fhir bug, please report it",
        )

    def _child(self, path: str, r5: dict[str, Any], rid: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self._elements(path, r5, out, rid)
        return _ordered(out)

    def _extensions(self, path: str, row: Row, value: Any, rid: str) -> list[dict[str, Any]]:
        out = []
        for v in _listed(value):
            if row.how == "complex":
                parts: list[dict[str, Any]] = []
                for key, sub in v.items():
                    sp = f"{path}.{key}"
                    subrow = RULES.get(sp)
                    if subrow is None or subrow.how not in ("extension", "complex"):
                        self._unmapped(sp, rid)
                        continue
                    parts.extend(self._extensions(sp, subrow, sub, rid))
                out.append({"url": row.r4, "extension": parts})
            elif row.value == "CodeableReference":
                out += [{"url": row.r4, "value" + t: _retyped(v[k])} for k, t in (("concept", "CodeableConcept"), ("reference", "Reference")) if k in v]
            else:
                kind = row.value or path.rsplit(".", 1)[-1].removeprefix("value")
                out.append({"url": row.r4, "value" + kind: _retyped(v)})
        return out

    # special rules (ROWS says what each does)

    def _body_structure(self, out: dict[str, Any], ref: dict[str, Any]) -> None:
        out.setdefault("extension", []).append({"url": _x("Observation.bodyStructure"), "valueReference": ref})
        target = self.resources.get(ref.get("reference", ""))
        included = (target or {}).get("includedStructure", [])
        if "bodySite" not in out and len(included) == 1 and set(included[0]) == {"structure"}:
            out["bodySite"] = included[0]["structure"]

    def _derived_from(self, out: dict[str, Any], refs: list[dict[str, Any]]) -> None:
        for ref in refs:
            if ref.get("type") == "ImagingSelection":
                out.setdefault("extension", []).append({"url": _x("Observation.derivedFrom"), "valueReference": _retyped(ref)})
            else:
                out.setdefault("derivedFrom", []).append(ref)

    def _included_structure(self, out: dict[str, Any], included: list[dict[str, Any]]) -> None:
        first, *rest = included
        if "structure" in first:
            out["location"] = first["structure"]
        qualifiers = [*_listed(first.get("laterality", [])), *first.get("qualifier", [])]
        if qualifiers:
            out["locationQualifier"] = qualifiers
        for more in rest:
            parts = [{"url": k, "valueCodeableConcept": v} for k in ("structure", "laterality") if (v := more.get(k))]
            parts += [{"url": "qualifier", "valueCodeableConcept": q} for q in more.get("qualifier", [])]
            out.setdefault("extension", []).append({"url": _x("BodyStructure.includedStructure"), "extension": parts})

    def _display_name(self, out: dict[str, Any], name: str) -> None:
        names = out.setdefault("deviceName", [])
        if not any(n.get("name") == name for n in names):
            names.append({"name": name, "type": "user-friendly-name"})


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_FIRST = ("resourceType", "id", "meta", "text", "extension", "modifierExtension")


def _ordered(r: dict[str, Any]) -> dict[str, Any]:
    """Keys in FHIR's order where it matters to a reader: metadata and extensions first."""
    return {**{k: r[k] for k in _FIRST if k in r}, **{k: v for k, v in r.items() if k not in _FIRST}}


def _retyped(node: Any) -> Any:
    """Every Reference to an ImagingSelection now points at a Basic."""
    if isinstance(node, dict):
        out = {k: _retyped(v) for k, v in node.items()}
        if out.get("type") == "ImagingSelection" and "reference" in out:
            out["type"] = "Basic"
        return out
    if isinstance(node, list):
        return [_retyped(x) for x in node]
    return node


def down_convert(entries: Iterable[Entry], diagnostics: Diagnostics) -> ResourceSet:
    """The R4 form of one report's resources, in the same order, with the same ids and
    conditional-create identities (an ImagingSelection's identifier is the Basic's)."""
    entries = list(entries)
    by_url = {full_url(e.resource["id"]): e.resource for e in entries}
    down = _Down(by_url, diagnostics)
    out = ResourceSet()
    for e in entries:
        out.add(down.resource(e.resource), e.condition)
    return out


def markdown_table() -> str:
    """ROWS as the table of docs/r4.md (scripts/make_docs.py writes it there)."""
    how = {"same": "same element", "renamed": "renamed", "elements": "kept; its elements below", "extension": "extension",
           "modifierExtension": "modifier extension", "complex": "complex extension", "lost": "**lost**", "special": "see R4"}
    lines = ["| R5 element | how | R4 | value | lost or note |", "|---|---|---|---|---|"]
    for r in ROWS:
        lines.append(f"| `{r.r5}` | {how[r.how]} | {r.r4 or '-'} | {r.value or '-'} | {r.note or '-'} |")
    return "\n".join(lines) + "\n"


def status_of(resource: dict[str, Any]) -> str | None:
    """`status`, or for a Basic standing for an ImagingSelection its status extension."""
    if resource.get("resourceType") == "Basic":
        for ext in resource.get("modifierExtension", []):
            if ext.get("url") == SELECTION_STATUS:
                return str(ext.get("valueCode"))
        return None
    s = resource.get("status")
    return s if isinstance(s, str) else None


def with_status(resource: dict[str, Any], status: str) -> dict[str, Any]:
    """A copy with `status` set (for a Basic: its ImagingSelection status extension)."""
    if resource.get("resourceType") != "Basic":
        return {**resource, "status": status}
    mods = [m for m in resource.get("modifierExtension", []) if m.get("url") != SELECTION_STATUS]
    return {**resource, "modifierExtension": [{"url": SELECTION_STATUS, "valueCode": status}, *mods]}
