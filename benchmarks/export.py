"""`sr2fhir export` at archive scale: reports per second for `local -j 1`, `local -j 2` and
`spark local[2]`, the scaling ratio, and peak memory per worker (issue 15). Not a test.

The archive: N generated reports of mixed sizes plus the corpus (../shared/data/tid1500) and the
fixtures. Each generated report is a corpus or fixture report with a new SOP Instance UID (and new
Observation UIDs), so none is a duplicate: 90% small (the fixtures, dcmjs, highdicom, dcmqi's
result: 10 to 60 content items), 9% medium (dcmqi's PET report, 150 items) and 1% large (the
1,561-feature pyradiomics report, 4,603 items). Memory is sampled from /proc every 0.2 s for the
command and every process below it: the largest RSS of any one worker (the Python processes
that convert), the driver (the command itself), and Spark's JVM.

Run: .venv/bin/python benchmarks/export.py [N] [ENGINES]   (default 10000 and local1,local2,spark;
     the spark engine needs the spark extra)
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

ROOT = Path(__file__).resolve().parents[1]
TID1500 = ROOT.parent / "shared" / "data" / "tid1500"
SMALL = [*sorted((ROOT / "tests" / "fixtures").glob("*.dcm")), TID1500 / "dcmjs__test__sample-sr.dcm", TID1500 / "highdicom__sr_document.dcm",
         TID1500 / "highdicom__sr_document_with_multiple_groups.dcm", TID1500 / "tid1500-fhir__dcmqi__result.dcm"]
MEDIUM = [TID1500 / "dcmqi__sr-example__sr.dcm"]
LARGE = [TID1500 / "tid1500-fhir__rsna2018-ds3__pyradiomics-1561-features.dcm"]


def generate(dest: Path, n: int) -> list[Path]:
    rng = random.Random(15)
    templates = {p: pydicom.dcmread(p) for p in SMALL + MEDIUM + LARGE}
    out = []
    for i in range(n):
        x = rng.random()
        pool = LARGE if x < 0.01 else MEDIUM if x < 0.10 else SMALL
        template = pool[i % len(pool)]
        ds = templates[template].copy()
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["bench", str(i)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        stack = list(ds.get("ContentSequence", []))
        while stack:
            item = stack.pop()
            if "ObservationUID" in item:
                item.ObservationUID = generate_uid(entropy_srcs=["bench", str(i), str(item.ObservationUID)])
            stack.extend(item.get("ContentSequence", []))
        path = dest / f"{i // 1000:02d}" / f"r{i:05d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def _tree() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, RSS in KiB, command name) for every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            status = Path(f"/proc/{d}/status").read_text()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            out[int(d)] = (int(fields["PPid"]), int(fields.get("VmRSS", "0 kB").split()[0]), fields["Name"].strip())
        except (OSError, KeyError, ValueError):
            continue
    return out


def run(command: list[str]) -> tuple[float, dict[str, float]]:
    """Wall time, and peak RSS in MiB: driver, largest worker, JVM."""
    peaks = {"driver": 0.0, "worker": 0.0, "jvm": 0.0}
    start = time.perf_counter()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            tree = _tree()
            below = {proc.pid}
            grew = True
            while grew:
                grew = False
                for pid, (ppid, _, _) in tree.items():
                    if ppid in below and pid not in below:
                        below.add(pid)
                        grew = True
            for pid in below:
                if pid not in tree:
                    continue
                _, rss, name = tree[pid]
                kind = "driver" if pid == proc.pid else "jvm" if name == "java" else "worker" if name.startswith("python") else None
                if kind:
                    peaks[kind] = max(peaks[kind], rss / 1024)
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    proc.wait()
    done.set()
    t.join()
    if proc.returncode not in (0, 1):
        log.seek(0)
        raise SystemExit(f"{' '.join(command)}: exit {proc.returncode}\n{log.read().decode(errors='replace')[-3000:]}")
    return time.perf_counter() - start, peaks


ENGINES = {"local1": ("local -j 1", ["-j", "1"]), "local2": ("local -j 2", ["-j", "2"]), "spark": ("spark local[2]", ["--engine", "spark", "-j", "2"])}


def main(n: int = 10_000, engines: str = "local1,local2,spark") -> None:
    sr2fhir = [sys.executable, "-m", "sr2fhir"]
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive"
        archive.mkdir()
        t0 = time.perf_counter()
        generate(archive, n)
        corpus = sorted(TID1500.glob("*.dcm")) + SMALL[: len(SMALL) - 4]
        inputs = [str(archive), *map(str, corpus)]
        total = n + len(corpus)
        size = sum(p.stat().st_size for p in archive.rglob("*.dcm")) / 2**20
        print(f"archive: {n} generated + {len(corpus)} corpus/fixture reports, {size:.0f} MiB, made in {time.perf_counter() - t0:.0f} s")
        results = {}
        for label, extra in (ENGINES[e] for e in engines.split(",")):
            out = Path(tmp) / label.replace(" ", "_").replace("[", "").replace("]", "")
            seconds, peaks = run([*sr2fhir, "export", *inputs, "-o", str(out), "-q", *extra])
            results[label] = seconds
            rows = sum(1 for _ in (out / "Observation.ndjson").open())
            print(f"| {label} | {seconds:.0f} s | {total / seconds:.1f} | {peaks['worker'] or peaks['driver']:.0f} MiB | {peaks['driver']:.0f} MiB | "
                  f"{peaks['jvm']:.0f} MiB | {rows} Observations |", flush=True)
        if "local -j 1" in results:
            for other in ("local -j 2", "spark local[2]"):
                if other in results:
                    print(f"scaling {other} / local -j 1: {results['local -j 1'] / results[other]:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, *sys.argv[2:3])
