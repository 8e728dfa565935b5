"""Speed and memory of sr2fhir, as ratios against pydicom's bare dcmread in the same process.

For every SR in ../shared/data/tid1500 and for generated reports of 10 .. 100,000 content items:
  ratio    = end-to-end (read + map + serialize a transaction Bundle) / pydicom.dcmread, medians
  full     = end-to-end / (dcmread + decoding every element, pydicom's Dataset.iterall):
             dcmread parses a defined-length sequence only when it is first accessed, so on
             such files the bare read does almost nothing and `full` is the fair comparison
  memory   = peak traced allocation during end-to-end / file size (target <= 10), and / dcmread's
             own peak; measured cold: sr2fhir's caches of decoded text and codes emptied first
  linear   = end-to-end(100,000 items) / end-to-end(10,000 items)   (target <= 11; 100,000 <= 5 s)

Run: .venv/bin/python benchmarks/bench.py [--repeat N] [--sizes 10,1000,10000,100000]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Callable

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from sr2fhir.batch import convert_path, render_chunks
from sr2fhir.dicom.values import clear_caches

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "tid1500"


def end_to_end(path: Path) -> int:
    """Read, map and write a transaction Bundle (to /dev/null, piece by piece, as the CLI does)."""
    result = convert_path(str(path))
    if result.error:
        raise SystemExit(f"benchmark input failed: {result.error}")
    n = 0
    with open(os.devnull, "w", encoding="utf-8") as sink:
        for piece in render_chunks(result.conversions, "transaction"):
            n += sink.write(piece)
    return n


def bare_read(path: Path) -> Dataset:
    return pydicom.dcmread(path)


def full_read(path: Path) -> int:
    return sum(1 for _ in pydicom.dcmread(path).iterall())


def median_time(fn: Callable[[Path], object], path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn(path)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_memory(fn: Callable[[Path], object], path: Path) -> int:
    clear_caches()
    gc.collect()
    tracemalloc.start()
    fn(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def code(ds: Dataset, value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def generated_report(n_items: int, folder: Path) -> Path:
    """A TID 1500 report with about n_items content items: groups of 1 finding + 8 NUMs."""
    def item(rel: str, vt: str, name: Dataset) -> Dataset:
        d = Dataset()
        d.RelationshipType, d.ValueType = rel, vt
        d.ConceptNameCodeSequence = [name]
        return d

    groups = []
    made = 2
    g_i = 0
    while made < n_items:
        g = item("CONTAINS", "CONTAINER", code(Dataset(), "125007", "DCM", "Measurement Group"))
        g.ContinuityOfContent = "SEPARATE"
        finding = item("CONTAINS", "CODE", code(Dataset(), "121071", "DCM", "Finding"))
        finding.ConceptCodeSequence = [code(Dataset(), "27925004", "SCT", "Nodule")]
        kids = [finding]
        made += 2
        for k in range(8):
            if made >= n_items:
                break
            num = item("CONTAINS", "NUM", code(Dataset(), f"{1000 + k}", "99BENCH", f"Feature {k}"))
            mv = Dataset()
            mv.NumericValue = f"{g_i}.{k}5"
            mv.MeasurementUnitsCodeSequence = [code(Dataset(), "mm", "UCUM", "millimeter")]
            num.MeasuredValueSequence = [mv]
            kids.append(num)
            made += 1
        g.ContentSequence = kids
        groups.append(g)
        g_i += 1
    im = item("CONTAINS", "CONTAINER", code(Dataset(), "126010", "DCM", "Imaging Measurements"))
    im.ContinuityOfContent = "SEPARATE"
    im.ContentSequence = groups
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(n_items)])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series"])
    ds.PatientID = "BENCH"
    ds.Modality, ds.CompletionFlag, ds.VerificationFlag = "SR", "COMPLETE", "UNVERIFIED"  # PS3.3 C.17.2, as dsr2xml checks
    ds.ContentDate, ds.ContentTime = "20240101", "120000"
    ds.Manufacturer = "bench"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = [code(Dataset(), "126000", "DCM", "Imaging Measurement Report")]
    tpl = Dataset()
    tpl.MappingResource, tpl.TemplateIdentifier = "DCMR", "1500"
    ds.ContentTemplateSequence = [tpl]
    ds.ContentSequence = [im]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = folder / f"generated-{n_items}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sizes", default="10,1000,10000,100000")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = sorted(SHARED.glob("*.dcm")) if SHARED.is_dir() else []
        sizes = [int(s) for s in args.sizes.split(",") if s]
        files += [generated_report(n, Path(tmp)) for n in sizes]
        for f in files:
            repeat = args.repeat if f.stat().st_size < 20_000_000 else max(1, args.repeat // 2)
            base = median_time(bare_read, f, repeat)
            decoded = median_time(full_read, f, repeat)
            ours = median_time(end_to_end, f, repeat)
            mem = peak_memory(end_to_end, f)
            base_mem = peak_memory(bare_read, f)
            size = f.stat().st_size
            rows.append((f.name, size, base, decoded, ours, ours / base, ours / decoded, mem / size, mem / base_mem))
    print(f"{'file':58} {'bytes':>9} {'dcmread':>8} {'+decode':>8} {'sr2fhir':>8} {'ratio':>7} {'full':>5} {'mem/size':>8} {'mem/read':>8}")
    for name, size, base, decoded, ours, ratio, full, mem, mem_read in rows:
        print(f"{name:58} {size:>9} {base:>8.4f} {decoded:>8.4f} {ours:>8.4f} {ratio:>7.2f} {full:>5.2f} {mem:>8.2f} {mem_read:>8.2f}")
    by = {r[0]: r for r in rows}
    if "generated-10000.dcm" in by and "generated-100000.dcm" in by:
        print(f"linearity: 100,000 items / 10,000 items = {by['generated-100000.dcm'][4] / by['generated-10000.dcm'][4]:.2f}x (target <= 11); "
              f"100,000 items: {by['generated-100000.dcm'][4]:.2f} s (target <= 5)")
    print(f"worst end-to-end / dcmread: {max(r[5] for r in rows):.2f}; worst end-to-end / (dcmread + decode): {max(r[6] for r in rows):.2f}")
    print(f"worst peak memory / file size: {max(r[7] for r in rows):.2f} (target <= 10); worst peak memory / dcmread's peak: {max(r[8] for r in rows):.2f}")


if __name__ == "__main__":
    sys.exit(main())
