"""Truncation campaign: cut every corpus report and fixture at every element boundary (issue 10.3).

Each cut must be refused (truncated, exit 12), or yield every Observation the whole file yields,
or carry a warning that the report is incomplete. Prints the outcome counts per file.

Run: .venv/bin/python scripts/truncate.py [MAX_CUTS_PER_FILE]   (default: every boundary)
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sr2fhir.batch import convert_path  # noqa: E402
from scripts.mutations import check_truncation, element_boundaries  # noqa: E402

FILES = sorted((ROOT.parent / "shared" / "data" / "tid1500").glob("*.dcm")) + sorted((ROOT / "tests" / "fixtures").glob("*.dcm"))


def main(max_cuts: int = 0) -> int:
    failures = 0
    total: collections.Counter[str] = collections.Counter()
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for path in FILES:
            data = path.read_bytes()
            whole = convert_path(str(path))
            n = sum(1 for c in whole.conversions for r in c.resources.resources() if r["resourceType"] == "Observation")
            cuts = element_boundaries(data)
            if max_cuts and len(cuts) > max_cuts:
                step = len(cuts) / max_cuts
                cuts = [cuts[int(i * step)] for i in range(max_cuts)]
            outcomes: collections.Counter[str] = collections.Counter()
            for cut in cuts:
                try:
                    outcomes[check_truncation(data, cut, n, Path(tmp))] += 1
                except AssertionError as exc:
                    failures += 1
                    outcomes["ACCEPTED-INCOMPLETE"] += 1
                    print(f"FAIL {path.name}: {exc}")
            total.update(outcomes)
            print(f"{path.name}: {len(cuts)} cuts: {dict(sorted(outcomes.items()))}", flush=True)
    print(f"all: {sum(total.values())} cuts in {time.time() - start:.0f} s: {dict(sorted(total.items()))}; accepted incomplete: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:2])))
