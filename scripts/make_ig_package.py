"""Generate src/sr2fhir/ig/: the IG's profiles (with snapshots) that `sr2fhir validate` ships with.

The IG (hl7.fhir.uv.dicom-sr 1.0.0) is CC0. Input: the compiled package (default
../shared/ig-package: SUSHI output plus snapshots). Output: one compact JSON file per
StructureDefinition, without narrative, differential and documentation-only element keys (the
validator reads ids, paths, cardinalities, fixed/pattern values, slicing, types, bindings and
constraints), plus the IG's CodeSystems. tests/validation/test_package.py checks that the shipped
files equal a fresh run of this script.

    .venv/bin/python scripts/make_ig_package.py [IG_PACKAGE_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "sr2fhir" / "ig"
DOC_KEYS = frozenset({"short", "definition", "comment", "requirements", "alias", "mapping", "meaningWhenMissing", "isModifierReason", "example"})
TOP_DROP = frozenset({"text", "differential", "mapping"})


def compact(sd: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in sd.items() if k not in TOP_DROP}
    if "snapshot" in out:
        out["snapshot"] = {"element": [{k: v for k, v in e.items() if k not in DOC_KEYS} for e in sd["snapshot"]["element"]]}
    return out


def generate(ig: Path) -> dict[str, str]:
    """File name -> text, for every StructureDefinition with a snapshot and every CodeSystem."""
    files: dict[str, str] = {}
    for f in sorted((ig / "snapshots").glob("StructureDefinition-*.json")):
        sd = json.loads(f.read_text(encoding="utf-8"))
        files[f.name] = json.dumps(compact(sd), ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"
    for f in sorted((ig / "resources").glob("CodeSystem-*.json")):
        cs = json.loads(f.read_text(encoding="utf-8"))
        files[f.name] = json.dumps({k: v for k, v in cs.items() if k != "text"}, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"
    if not any(n.startswith("StructureDefinition-") for n in files):
        raise SystemExit(f"no StructureDefinitions with snapshots under {ig}/snapshots")
    return files


def main() -> None:
    ig = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "ig-package"
    files = generate(ig)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (OUT / name).write_text(text, encoding="utf-8")
    print(f"{len(files)} file(s) written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
