"""sr2fhir's own FHIR extensions: content that neither the IG's profiles nor FHIR R5 have an
element for (D-51). `EXTENSIONS` is the one table; `structure_definition` writes each as a
StructureDefinition, and scripts/make_extensions_package.py ships them as two small FHIR
packages (`sr2fhir.extensions.r5`, `.r4`) under src/sr2fhir/fhir/package/, which the official
validator loads and `sr2fhir validate` checks against (tests/fhir/test_extensions.py keeps the
shipped files equal to a fresh run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CANONICAL = "http://sr2fhir.org/fhir"
"""The packages' canonical base (not a web page: a name that only this project gives out)."""
VERSION = "0.1.0"
PACKAGES = {"R5": ("sr2fhir.extensions.r5", "5.0.0"), "R4": ("sr2fhir.extensions.r4", "4.0.1")}


@dataclass(frozen=True, slots=True)
class Part:
    """One sub-extension of a complex extension."""

    name: str
    type: str  # the FHIR type of its value[x]
    min: int
    max: str
    short: str
    binding: str | None = None  # a required ValueSet (R5 only: R4 core lacks the value sets R5 names)
    codes: tuple[str, ...] = ()  # the codes that binding holds, for `sr2fhir validate`


@dataclass(frozen=True, slots=True)
class Extension:
    id: str
    title: str
    description: str
    context: dict[str, str]  # FHIR version -> the element it may sit on
    parts: tuple[Part, ...]
    invariants: tuple[tuple[str, str, str], ...] = ()  # (key, human, FHIRPath expression)

    @property
    def url(self) -> str:
        return f"{CANONICAL}/StructureDefinition/{self.id}"


REGION_TYPES_3D = ("point", "multipoint", "polyline", "polygon", "ellipse", "ellipsoid")
"""R5 ValueSet imagingselection-3dgraphictype (= DICOM's 3D Graphic Type, PS3.3 C.18.9.1.2)."""

IMAGE_REGION_3D = Extension(
    id="image-region-3d",
    title="ImagingSelection image region in 3D (R6 ImagingSelection.imageRegion3D, for R5 and R4)",
    description=(
        "A 3D region in the selection's frame of reference (frameOfReferenceUid): DICOM SR SCOORD3D, "
        "Graphic Type (0070,0023) and Graphic Data (0070,0022), as (x, y, z) triplets in mm. Modelled on "
        "the top-level ImagingSelection.imageRegion3D of FHIR R6 (FHIR-41429), which R5 has only under "
        "instance, where a region without an instance cannot sit; the IG's image-region-3d and "
        "volume-surface profiles comment it out until then. In R4 it sits on the Basic that stands for "
        "an ImagingSelection."
    ),
    context={"R5": "ImagingSelection", "R4": "Basic"},
    parts=(
        Part("regionType", "code", 1, "1", "point | multipoint | polyline | polygon | ellipse | ellipsoid",
             "http://hl7.org/fhir/ValueSet/imagingselection-3dgraphictype|5.0.0", REGION_TYPES_3D),
        Part("coordinate", "decimal", 1, "*", "x, y, z of each point, in the frame of reference (mm)"),
    ),
    invariants=(("ir3d-1", "coordinates come in (x, y, z) triplets", "extension.where(url = 'coordinate').count() mod 3 = 0"),),
)

EXTENSIONS: tuple[Extension, ...] = (IMAGE_REGION_3D,)


def image_region_3d(region_type: str, coordinates: list[float]) -> dict[str, Any]:
    """The extension for one 3D region."""
    return {"url": IMAGE_REGION_3D.url, "extension": [
        {"url": "regionType", "valueCode": region_type},
        *({"url": "coordinate", "valueDecimal": c} for c in coordinates),
    ]}


def regions_3d(resource: dict[str, Any]) -> list[tuple[str | None, list[Any]]]:
    """(regionType, coordinates as written) of each image-region-3d extension of a resource: the
    reading of what `image_region_3d` writes."""
    out: list[tuple[str | None, list[Any]]] = []
    for e in resource.get("extension", []):
        if e.get("url") == IMAGE_REGION_3D.url:
            parts = e.get("extension", [])
            kind = next((x.get("valueCode") for x in parts if x.get("url") == "regionType"), None)
            out.append((kind, [x.get("valueDecimal") for x in parts if x.get("url") == "coordinate"]))
    return out


def structure_definition(ext: Extension, fhir_version: str) -> dict[str, Any]:
    """The StructureDefinition of `ext` for R5 or R4 (a differential: the validator makes the snapshot)."""
    elements: list[dict[str, Any]] = [
        {"id": "Extension", "path": "Extension", "short": ext.title, "definition": ext.description,
         **({"constraint": [{"key": k, "severity": "error", "human": h, "expression": e, "source": ext.url} for k, h, e in ext.invariants]}
            if ext.invariants else {})},
        {"id": "Extension.extension", "path": "Extension.extension", "min": sum(p.min for p in ext.parts),
         "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "closed"}},
    ]
    for p in ext.parts:
        sid = f"Extension.extension:{p.name}"
        elements += [
            {"id": sid, "path": "Extension.extension", "sliceName": p.name, "short": p.short, "definition": p.short, "min": p.min, "max": p.max},
            {"id": f"{sid}.extension", "path": "Extension.extension.extension", "max": "0"},
            {"id": f"{sid}.url", "path": "Extension.extension.url", "fixedUri": p.name},
            {"id": f"{sid}.value[x]", "path": "Extension.extension.value[x]", "min": 1, "type": [{"code": p.type}],
             **({"binding": {"strength": "required", "valueSet": p.binding}} if p.binding and fhir_version == "R5" else {})},
        ]
    elements += [
        {"id": "Extension.url", "path": "Extension.url", "fixedUri": ext.url},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"},
    ]
    return {
        "resourceType": "StructureDefinition", "id": ext.id, "url": ext.url, "version": VERSION,
        "name": "".join(w.capitalize() for w in ext.id.split("-")), "title": ext.title, "status": "active",
        "publisher": "sr2fhir", "description": ext.description, "fhirVersion": PACKAGES[fhir_version][1],
        "kind": "complex-type", "abstract": False, "context": [{"type": "element", "expression": ext.context[fhir_version]}],
        "type": "Extension", "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension", "derivation": "constraint",
        "differential": {"element": elements},
    }


def package_manifest(fhir_version: str) -> dict[str, Any]:
    name, fhir = PACKAGES[fhir_version]
    core = "hl7.fhir.r5.core" if fhir_version == "R5" else "hl7.fhir.r4.core"
    return {"name": name, "version": VERSION, "type": "IG", "canonical": CANONICAL, "fhirVersions": [fhir],
            "dependencies": {core: fhir}, "license": "Apache-2.0", "description": "sr2fhir's own extensions (docs/decisions.md D-51)"}
