"""A campaign of random TID 1500 reports written with highdicom (tests/generated_reports.py): every
item each report holds is compared with sr2fhir's R5 Bundle, its R4 output and the export's rows
read back from Parquet; a sample of the outputs goes to the official HL7 validator (R5 and R4).
Figures in the README. Not part of CI (the test suite runs a seeded 200).

    .venv/bin/python scripts/generated_campaign.py [--reports 1000] [--max-measurements 30] [--validate 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sr2fhir  # noqa: E402
from sr2fhir import Options  # noqa: E402
from sr2fhir.batch import render  # noqa: E402
from sr2fhir.export.tables import rows  # noqa: E402
from tests.generated_reports import compare, compare_r4, compare_rows, write  # noqa: E402
from tests.test_generated_reports import through_parquet  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=1000)
    ap.add_argument("--max-measurements", type=int, default=30)
    ap.add_argument("--validate", type=int, default=20, help="outputs (R5 and R4 each) for the official validator; 0: none")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="sr2fhir-generated-"))
    counts = {"reports": 0, "groups": 0, "measurements": 0, "regions_2d": 0, "regions_3d": 0, "segmentation_frames": 0, "evaluations": 0}
    failed: dict[str, list[str]] = {}
    start = time.monotonic()
    for n in range(args.reports):
        path = folder / f"{n}.dcm"
        record = write(path, random.Random(rng.getrandbits(64)), args.max_measurements)
        (doc,) = list(sr2fhir.read(str(path)))
        r5c = sr2fhir.convert(doc)
        r4c = sr2fhir.convert(doc, Options(fhir_version="R4"))
        r5, r4 = r5c.resources.resources(), r4c.resources.resources()
        diffs = compare(record, r5) + compare_r4(r5, r4) + compare_rows(record, through_parquet(rows(doc, r5)))
        if diffs:
            failed[path.name] = diffs[:5]
        counts["reports"] += 1
        counts["groups"] += len(record.groups)
        counts["measurements"] += sum(len(g.measurements) for g in record.groups)
        counts["evaluations"] += sum(len(g.evaluations) for g in record.groups)
        for g in record.groups:
            if g.region is not None:
                counts[{2: "regions_2d", 3: "regions_3d", 0: "segmentation_frames"}[g.region.dims]] += 1
        if n < args.validate:
            (folder / "r5").mkdir(exist_ok=True)
            (folder / "r4").mkdir(exist_ok=True)
            (folder / "r5" / f"{n}.json").write_text(render([r5c], "transaction"))
            (folder / "r4" / f"{n}.json").write_text(render([r4c], "transaction"))
    took = time.monotonic() - start
    print(json.dumps({**counts, "seconds": round(took, 1), "reports_with_differences": len(failed)}, indent=1))
    for name, diffs in list(failed.items())[:10]:
        print(f"  {folder / name}: {diffs}")
    status = 1 if failed else 0
    if args.validate:
        for version, sub in (("R5", "r5"), ("R4", "r4")):
            files = sorted(str(p) for p in (folder / sub).glob("*.json"))
            r = subprocess.run([str(ROOT / "scripts" / "official-validator.sh"), "--fhir-version", version, *files], cwd=ROOT, capture_output=True, text=True)
            print(f"official validator {version} on {len(files)} outputs:", *[line.split("official validator")[-1] for line in r.stdout.splitlines() if "official validator:" in line or line.startswith("errors not")])
            status |= r.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
