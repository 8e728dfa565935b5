"""Whole-process measurements shared by the benchmarks: CPU time and peak memory of a command.

sr2fhir runs from its compiled bytecode, as a `pip install` leaves it: the package is compiled
first and the children run without PYTHONDONTWRITEBYTECODE (a checkout run with that variable set
would otherwise compile every module on every start, which no installed copy does).
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SR2FHIR = str(Path(sys.executable).parent / "sr2fhir")


def compiled_env() -> dict[str, str]:
    """Compile sr2fhir's modules and return the environment its processes run in."""
    compileall.compile_dir(str(ROOT / "src" / "sr2fhir"), quiet=1)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(CPU seconds, user + system, and peak RSS in kB) of one whole process; it must succeed.

    Through GNU time (Debian package `time`) where it is installed: Linux counts into a child's
    peak RSS the memory of the process it was forked from, so the child is forked from `time`
    (1-2 MB), not from this Python; without it, os.wait4's peak RSS includes this process's size
    when it started the child. CPU time is os.wait4's either way."""
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        _check(cmd, os.waitstatus_to_exitcode(status))
        return usage.ru_utime + usage.ru_stime, usage.ru_maxrss
    with tempfile.NamedTemporaryFile("r") as out:
        p = subprocess.Popen([gnu_time, "-q", "-o", out.name, "-f", "%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(p.pid, 0)  # CPU to the microsecond (time's own is ~1 ms)
        _check(cmd, os.waitstatus_to_exitcode(status))
        rss = int(out.read().split()[-1])
    return usage.ru_utime + usage.ru_stime, rss


def _check(cmd: list[str], code: int) -> None:
    if code != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed (exit {code})")
