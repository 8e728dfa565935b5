"""sr2fhir against DCMTK's dsr2xml (native C++ SR -> XML), whole process, alternating (issue 16).

For every report in ../shared/data/tid1500: the CPU time (user + system, os.wait4) and the peak
resident memory (ru_maxrss) of `sr2fhir convert FILE -o /dev/null` and of `dsr2xml FILE`, each
run REPEAT times in alternation, medians. The ratios are the figures: target CPU <= 1x dsr2xml.

Needs DCMTK: `apt-get install dcmtk` (Debian). Run: .venv/bin/python benchmarks/vs_dcmtk.py [REPEAT]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "tid1500"
SR2FHIR = Path(sys.executable).parent / "sr2fhir"


def run(cmd: list[str]) -> tuple[float, int]:
    """(CPU seconds, peak RSS in kB) of one whole process."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0,):
        raise SystemExit(f"{cmd[0]} failed on {cmd[-1]}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main(repeat: int = 5) -> None:
    dsr2xml = shutil.which("dsr2xml")
    if dsr2xml is None:
        raise SystemExit("dsr2xml not found: apt-get install dcmtk")
    print(f"{'file':60} {'bytes':>9} {'dsr2xml s':>9} {'sr2fhir s':>9} {'CPU x':>6} {'dsr2xml MB':>10} {'sr2fhir MB':>10} {'mem x':>6}")
    for f in sorted(SHARED.glob("*.dcm")):
        a: list[tuple[float, int]] = []
        b: list[tuple[float, int]] = []
        for _ in range(repeat):
            a.append(run([dsr2xml, str(f)]))
            b.append(run([str(SR2FHIR), "convert", "-q", str(f), "-o", os.devnull]))
        ta, tb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
        ma, mb = statistics.median(x[1] for x in a) / 1024, statistics.median(x[1] for x in b) / 1024
        print(f"{f.name:60} {f.stat().st_size:>9} {ta:>9.3f} {tb:>9.3f} {tb / ta:>6.1f} {ma:>10.1f} {mb:>10.1f} {mb / ma:>6.1f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
