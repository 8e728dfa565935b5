"""Whole-process CPU time of short commands (issue 16: `--version` and `--help` <= 0.15 s CPU, a
20-item report converted end to end <= 0.3 s).

Medians of 5 of user + system CPU time (os.wait4), sr2fhir run from its compiled bytecode
(process.py): `sr2fhir --version`, `sr2fhir --help`, `sr2fhir convert` of a generated 20-item
report, and, for scale, `python -c pass`, `python -c 'import pydicom'` and the import of the
conversion alone (`sr2fhir.batch`: reader, mapping, writer; no command line), the floor of any
Python process that converts.

Run: .venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import generated_report  # noqa: E402
from process import PYTHON, SR2FHIR, compiled_env, run  # noqa: E402


def main() -> None:
    env = compiled_env()
    with tempfile.TemporaryDirectory() as tmp:
        small = generated_report(20, Path(tmp))
        cases = (
            ("python -c pass", [PYTHON, "-c", "pass"]),
            ("python -c 'import pydicom'", [PYTHON, "-c", "import pydicom"]),
            ("import sr2fhir.batch", [PYTHON, "-c", "import sr2fhir.batch"]),
            ("sr2fhir --version", [SR2FHIR, "--version"]),
            ("sr2fhir --help", [SR2FHIR, "--help"]),
            ("convert (20 items)", [SR2FHIR, "convert", str(small), "-o", os.devnull]),
        )
        for label, cmd in cases:
            times = [run(cmd, env)[0] for _ in range(5)]
            print(f"{label:28} {statistics.median(times):.3f} s CPU (median of 5)")


if __name__ == "__main__":
    main()
