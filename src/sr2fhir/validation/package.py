"""Loading the IG's StructureDefinitions (with snapshots) as a FHIR package.

From a folder given by `--ig` (a package folder, its `package/` subfolder, or a folder of
StructureDefinition JSON files such as ../shared/ig-package/snapshots), or from the standard
package cache (~/.fhir/packages/hl7.fhir.uv.dicom-sr#1.0.0/package).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IG_PACKAGE = "hl7.fhir.uv.dicom-sr#1.0.0"


@dataclass(slots=True)
class ElementDef:
    """One snapshot element, with its children and slices resolved."""

    id: str
    path: str
    raw: dict[str, Any]
    children: list["ElementDef"] = field(default_factory=list)
    slices: list["ElementDef"] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The last path segment, e.g. 'value[x]' or 'identifier'."""
        return self.path.rsplit(".", 1)[-1]

    @property
    def slice_name(self) -> str | None:
        return self.raw.get("sliceName")

    @property
    def min(self) -> int:
        return int(self.raw.get("min", 0))

    @property
    def max(self) -> int | None:
        m = self.raw.get("max", "*")
        return None if m == "*" else int(m)

    def fixed(self) -> tuple[str, Any] | None:
        for k, v in self.raw.items():
            if k.startswith("fixed") or k.startswith("pattern"):
                return k, v
        return None


@dataclass(slots=True)
class Profile:
    url: str
    name: str
    type: str
    root: ElementDef
    by_id: dict[str, ElementDef]


def _build(sd: dict[str, Any]) -> Profile:
    elements = sd["snapshot"]["element"]
    by_id: dict[str, ElementDef] = {}
    root = None
    for raw in elements:
        e = ElementDef(raw["id"], raw["path"], raw)
        by_id[e.id] = e
        if root is None:
            root = e
            continue
        parent_id, _, last = e.id.rpartition(".")
        if ":" in last:  # "name:slice": a slice of parent_id.name
            base = f"{parent_id}.{last.split(':', 1)[0]}"
            if base in by_id:
                by_id[base].slices.append(e)
                continue
        if parent_id in by_id:
            by_id[parent_id].children.append(e)
    assert root is not None
    return Profile(sd["url"], sd.get("name", sd["id"]), sd["type"], root, by_id)


def find_package(ig: str | Path | None) -> Path:
    """The folder holding the IG's StructureDefinitions."""
    candidates = [Path(ig)] if ig else [Path.home() / ".fhir" / "packages" / IG_PACKAGE / "package"]
    for c in candidates:
        for d in (c / "snapshots", c / "package", c):
            if d.is_dir() and any(d.glob("StructureDefinition-*.json")):
                return d
    raise FileNotFoundError(
        f"no StructureDefinitions found in {candidates[0]} (give the IG package folder with --ig, e.g. ../shared/ig-package)"
    )


def load_profiles(ig: str | Path | None = None) -> dict[str, Profile]:
    """Profiles by canonical URL; only StructureDefinitions that carry a snapshot."""
    folder = find_package(ig)
    out: dict[str, Profile] = {}
    for f in sorted(folder.glob("StructureDefinition-*.json")):
        sd = json.loads(f.read_text())
        if sd.get("snapshot"):
            out[sd["url"]] = _build(sd)
    if not out:
        raise FileNotFoundError(f"{folder}: StructureDefinitions have no snapshots")
    return out
