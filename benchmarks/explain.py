"""The explain page on the largest real report (issue 17): its size, the time to make it, and
headless Chromium's time to load and run it (medians of 3). Not a test.

The report: the 1,561-feature pyradiomics SR (4,603 content items, 1,566 resources). Chromium
loads the page from disk with a selection in its address, runs it, and prints the DOM
(`--dump-dom`); that time includes Chromium's own start (measured alone on an empty page,
and subtracted).

Needs Debian's chromium. Run: .venv/bin/python benchmarks/explain.py
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


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
    return time.perf_counter() - start, r.stdout


def main() -> None:
    chromium = shutil.which("chromium") or sys.exit("needs chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        empty = Path(tmp) / "empty.html"
        empty.write_text("<!DOCTYPE html><html><body data-ready='1'></body></html>")
        make = statistics.median(timed([sys.executable, "-m", "sr2fhir", "explain", str(REPORT), "-o", str(page)])[0] for _ in range(3))
        flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom"]
        base = statistics.median(timed([*flags, f"file://{empty}"])[0] for _ in range(3))
        loads = []
        for _ in range(3):
            seconds, dom = timed([*flags, f"file://{page}#item=1.4"])
            assert 'data-ready="1"' in dom
            loads.append(seconds)
        load = statistics.median(loads)
        print(f"| {REPORT.name} | {page.stat().st_size / 2**20:.1f} MiB | {make:.2f} s | {load - base:.2f} s (Chromium start {base:.2f} s aside) |")


if __name__ == "__main__":
    main()
