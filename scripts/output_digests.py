"""Write tests/fixtures/output-digests.json: the SHA-256 of sr2fhir's output for every input it is
tested on (../shared/data, the IG example, the fixtures, the demo report).

tests/test_output_digests.py checks that the output still has these digests, so that a
refactoring that should change nothing changes nothing. Run this only for a deliberate change of
the mapping, and say in the commit what changed and why.

    .venv/bin/python scripts/output_digests.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sr2fhir.batch import convert_path, render  # noqa: E402

SHARED = ROOT.parent / "shared"
OUT = ROOT / "tests" / "fixtures" / "output-digests.json"


def inputs() -> dict[str, Path]:
    """Every input, by a name that does not depend on where the checkout is."""
    found = {f"shared/data/{p.parent.name}/{p.name}": p for p in sorted((SHARED / "data").glob("tid1500*/*.dcm"))}
    found["shared/ig/input/dicom/Example-MeasurementReport.json"] = SHARED / "ig" / "input" / "dicom" / "Example-MeasurementReport.json"
    found.update({f"tests/fixtures/{p.name}": p for p in sorted((ROOT / "tests" / "fixtures").glob("*.dcm"))})
    found["examples/measurement-report.dcm"] = ROOT / "examples" / "measurement-report.dcm"
    return found


def digests(path: Path) -> dict[str, str]:
    """SHA-256 of the transaction Bundle and of the NDJSON output."""
    out = {}
    for form in ("transaction", "ndjson"):
        r = convert_path(str(path))
        if r.error is not None:
            raise SystemExit(f"{path}: {r.error}")
        out[form] = hashlib.sha256(render(r.conversions, form).encode("utf-8")).hexdigest()
    return out


def main() -> None:
    table = {name: digests(path) for name, path in inputs().items()}
    OUT.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"{len(table)} inputs: digests written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
