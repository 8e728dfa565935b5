"""Whole-process CPU time of short commands (issue 16: `--version` and `--help` <= 0.15 s CPU).

Medians of 5 of user + system CPU time, from os.wait4, for: sr2fhir --version, sr2fhir --help,
and converting a small fixture (tests/fixtures/tid1410_planar_regions.dcm) end to end.

Run: .venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).parent / "sr2fhir"


def cpu(args: list[str]) -> float:
    p = subprocess.Popen([str(EXE), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(p.pid, 0)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    small = ROOT / "tests" / "fixtures" / "tid1410_planar_regions.dcm"
    for label, args in (("--version", ["--version"]), ("--help", ["--help"]), ("convert (12 items)", ["convert", str(small), "-o", os.devnull])):
        times = [cpu(args) for _ in range(5)]
        print(f"{label:22} {statistics.median(times):.3f} s CPU (median of 5)")


if __name__ == "__main__":
    main()
