"""sr2fhir against DCMTK's dsr2xml (native C++ SR -> XML) and pydicom, whole process (issue 16).

For every report in ../shared/data/tid1500 and a generated 20-item report, each command run
REPEAT times in alternation, medians of CPU time (user + system, os.wait4) and peak resident
memory (ru_maxrss):
  dsr2xml FILE                        DCMTK reading the SR and writing it as XML
  python -c 'dcmread + iterall' FILE  pydicom reading the file and decoding every element
  sr2fhir convert -q FILE -o /dev/null
The ratios sr2fhir / dsr2xml are the issue's figures (target: CPU <= 1x on the 1,561-feature
report). `--markdown` prints the README's table.

Needs DCMTK: `apt-get install dcmtk` (Debian). Run: .venv/bin/python benchmarks/vs_dcmtk.py [REPEAT] [--markdown]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import generated_report  # noqa: E402
from process import PYTHON, ROOT, SR2FHIR, compiled_env, run  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "tid1500"
PYDICOM = "import sys, pydicom; sum(1 for _ in pydicom.dcmread(sys.argv[1]).iterall())"


def main(repeat: int = 5, markdown: bool = False) -> None:
    dsr2xml = shutil.which("dsr2xml")
    if dsr2xml is None:
        raise SystemExit("dsr2xml not found: apt-get install dcmtk")
    env = compiled_env()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = sorted(SHARED.glob("*.dcm")) + [generated_report(20, Path(tmp))]
        for f in files:
            runs: dict[str, list[tuple[float, int]]] = {"dsr2xml": [], "pydicom": [], "sr2fhir": []}
            for _ in range(repeat):
                runs["dsr2xml"].append(run([dsr2xml, str(f)]))
                runs["pydicom"].append(run([PYTHON, "-c", PYDICOM, str(f)], env))
                runs["sr2fhir"].append(run([SR2FHIR, "convert", "-q", str(f), "-o", os.devnull], env))
            cpu = {k: statistics.median(x[0] for x in v) for k, v in runs.items()}
            mem = {k: statistics.median(x[1] for x in v) / 1024 for k, v in runs.items()}
            rows.append((f.name, f.stat().st_size, cpu, mem))
    if markdown:
        print("| report | bytes | dsr2xml CPU s | pydicom CPU s | sr2fhir CPU s | / dsr2xml | / pydicom | dsr2xml MB | sr2fhir MB | / dsr2xml |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, size, cpu, mem in rows:
            print(f"| {name} | {size:,} | {cpu['dsr2xml']:.3f} | {cpu['pydicom']:.3f} | {cpu['sr2fhir']:.3f} | **{cpu['sr2fhir'] / cpu['dsr2xml']:.2f}** "
                  f"| {cpu['sr2fhir'] / cpu['pydicom']:.2f} | {mem['dsr2xml']:.1f} | {mem['sr2fhir']:.1f} | {mem['sr2fhir'] / mem['dsr2xml']:.2f} |")
        return
    print(f"{'file':58} {'bytes':>9} {'dsr2xml s':>9} {'pydicom s':>9} {'sr2fhir s':>9} {'/dsr2xml':>8} {'/pydicom':>8} {'dsr2xml MB':>10} {'sr2fhir MB':>10} {'mem x':>6}")
    for name, size, cpu, mem in rows:
        print(f"{name:58} {size:>9} {cpu['dsr2xml']:>9.3f} {cpu['pydicom']:>9.3f} {cpu['sr2fhir']:>9.3f} {cpu['sr2fhir'] / cpu['dsr2xml']:>8.2f} "
              f"{cpu['sr2fhir'] / cpu['pydicom']:>8.2f} {mem['dsr2xml']:>10.1f} {mem['sr2fhir']:>10.1f} {mem['sr2fhir'] / mem['dsr2xml']:>6.2f}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(*(int(a) for a in args[:1]), markdown="--markdown" in sys.argv)
