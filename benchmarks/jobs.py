"""How `convert -j N` scales: whole-process wall time of a batch of large reports (issue 11.2).

The batch: 4 copies of the 1,561-feature pyradiomics report (1.2 MB, 4,603 items each), converted
to a folder with -j 1 and -j 2, alternating, medians of 3. On 2 cores the target is close to 2x.

Run: .venv/bin/python benchmarks/jobs.py [COPIES] [REPEAT]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT.parent / "shared" / "data" / "tid1500" / "tid1500-fhir__rsna2018-ds3__pyradiomics-1561-features.dcm"


def main(copies: int = 4, repeat: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        batch = Path(tmp) / "batch"
        batch.mkdir()
        for i in range(copies):
            shutil.copy(REPORT, batch / f"r{i}.dcm")
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(repeat):
            for jobs in (1, 2):
                out = Path(tmp) / f"out{jobs}"
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "sr2fhir", "convert", "-q", "-j", str(jobs), str(batch), "-o", str(out)], check=True)
                times[jobs].append(time.perf_counter() - start)
        one, two = statistics.median(times[1]), statistics.median(times[2])
        print(f"{copies} x {REPORT.name}: -j 1 {one:.2f} s, -j 2 {two:.2f} s, speed-up {one / two:.2f}x")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
