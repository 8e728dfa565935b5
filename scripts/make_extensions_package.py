"""Generate src/sr2fhir/fhir/package/{r5,r4}/: sr2fhir's own extensions (fhir/extensions.py,
D-51) as two FHIR packages that the official validator loads. tests/fhir/test_extensions.py
checks that the shipped files equal a fresh run of this script.

    .venv/bin/python scripts/make_extensions_package.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sr2fhir.fhir.extensions import EXTENSIONS, PACKAGES, package_manifest, structure_definition

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "sr2fhir" / "fhir" / "package"


def files(version: str) -> dict[str, str]:
    """File name -> text, for one FHIR version's package."""
    out = {"package.json": json.dumps(package_manifest(version), indent=2) + "\n"}
    for ext in EXTENSIONS:
        out[f"StructureDefinition-{ext.id}.json"] = json.dumps(structure_definition(ext, version), indent=2) + "\n"
    return out


def main() -> None:
    for version in PACKAGES:
        folder = OUT / version.lower()
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, text in files(version).items():
            (folder / name).write_text(text, encoding="utf-8")
        print(f"{folder.relative_to(ROOT)}: {len(EXTENSIONS)} extension(s)")


if __name__ == "__main__":
    main()
