"""The export's files: FHIR Bulk NDJSON with its manifest, and the Parquet research tables.

Everything is written into `OUTDIR/.staging/` and moved into place at the end, the manifest
last, so an interrupted export never leaves a half-written table or NDJSON file behind.
Layout (both engines):

    OUTDIR/manifest.json               the Bulk Data $export response (output, error, counts)
    OUTDIR/<ResourceType>.ndjson       one resource a line, references as Type/id
    OUTDIR/OperationOutcome.ndjson     one per failed input (the manifest's `error`)
    OUTDIR/<table>/part-*.parquet      measurement_groups, measurements, ... failures
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..files import replace_file, usual_mode
from .tables import SCHEMAS, TABLES
from .work import Piece

FORMATS = ("ndjson", "parquet")
PER_REPORT = frozenset({"Observation", "ImagingSelection", "DiagnosticReport"})
"""Resource types made from one report's content items (ids from its SOP Instance UID): a report
exported twice is skipped by its SOP Instance UID. Every other type (Device, Practitioner,
BodyStructure) may be shared between reports and is written once by id."""
BATCH_ROWS = 20_000
UNKEYED = frozenset({"failures", "diagnostics"})
"""Tables whose rows are kept whatever the report (a failed input has no SOP Instance UID)."""


class Export:
    """The driver side of an export: receives each input's Piece, in input order."""

    def __init__(self, outdir: str | Path, formats: tuple[str, ...], request: str) -> None:
        self.outdir = Path(outdir)
        self.staging = self.outdir / ".staging"
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        self.formats = formats
        self.request = request
        self.started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.reports: set[str] = set()
        self.shared: set[str] = set()
        self.files: dict[str, IO[str]] = {}
        self.counts: dict[str, int] = {}
        self.buffers: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = {t: 0 for t in TABLES}
        self.duplicates = 0

    def add(self, piece: Piece) -> None:
        fresh = [u for u in piece.sop_instance_uids if u not in self.reports]
        self.duplicates += len(piece.sop_instance_uids) - len(fresh)
        self.reports.update(fresh)
        keep = set(fresh)
        if "ndjson" in self.formats:
            for uid, rtype, rid, line in piece.resources:
                if uid not in keep:
                    continue
                if rtype not in PER_REPORT and rid in self.shared:
                    continue
                if rtype not in PER_REPORT:
                    self.shared.add(rid)
                self._line(rtype, line)
            if piece.outcome is not None:
                self._line("OperationOutcome", piece.outcome)
        if "parquet" in self.formats:
            for table, rows in piece.tables.items():
                if table not in UNKEYED and len(keep) < len(piece.sop_instance_uids):
                    rows = [r for r in rows if r.get("sop_instance_uid") in keep]
                self.buffers[table] += rows
                if len(self.buffers[table]) >= BATCH_ROWS:
                    self._flush(table)

    def _line(self, rtype: str, line: str) -> None:
        f = self.files.get(rtype)
        if f is None:
            f = self.files[rtype] = open(self.staging / f"{rtype}.ndjson", "w", encoding="utf-8")
            self.counts[rtype] = 0
        f.write(line + "\n")
        self.counts[rtype] += 1

    def _flush(self, table: str) -> None:
        """Build Arrow from many inputs' rows at once: per input it would cost 6x as much."""
        rows, self.buffers[table] = self.buffers[table], []
        w = self.writers.get(table)
        if w is None:
            (self.staging / table).mkdir(exist_ok=True)
            w = self.writers[table] = pq.ParquetWriter(self.staging / table / "part-00000.parquet", SCHEMAS[table])
        if rows:
            w.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[table]))
            self.rows[table] += len(rows)

    def close(self) -> dict[str, Any]:
        """Finish every file, move them into OUTDIR, write the manifest; return it."""
        for f in self.files.values():
            f.flush()
            os.fsync(f.fileno())
            f.close()
        if "parquet" in self.formats:
            for table in TABLES:
                self._flush(table)  # an empty table is still written, with its schema
                self.writers[table].close()
        return finish(self.outdir, self.staging, self.started, self.request, self.counts, self.rows if "parquet" in self.formats else {}, self.duplicates)


def finish(outdir: Path, staging: Path, started: str, request: str, counts: dict[str, int], rows: dict[str, int], duplicates: int) -> dict[str, Any]:
    """Move the staged files into `outdir` (replacing an earlier export's) and write the manifest."""
    old = outdir / "manifest.json"
    if old.exists():
        old.unlink()  # the manifest goes first: a half-replaced export never looks complete
    for item in outdir.iterdir():  # an earlier export's files: a type or table may be gone now
        if item.name.endswith(".ndjson") or (item.is_dir() and item.name in TABLES):
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    for item in sorted(staging.iterdir()):
        target = outdir / item.name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        os.replace(item, target)
    shutil.rmtree(staging, ignore_errors=True)
    manifest = {
        "transactionTime": started,
        "request": request,
        "requiresAccessToken": False,
        "output": [{"type": t, "url": f"{t}.ndjson", "count": n} for t, n in sorted(counts.items()) if t != "OperationOutcome"],
        "error": [{"type": "OperationOutcome", "url": "OperationOutcome.ndjson", "count": counts["OperationOutcome"]}] if "OperationOutcome" in counts else [],
        "extension": {
            "urn:sr2fhir:tables": [{"table": t, "url": f"{t}/", "rows": n} for t, n in rows.items()],
            "urn:sr2fhir:duplicate-reports": duplicates,
        },
    }
    # Durably, and last: the manifest is what says the export is complete.
    replace_file(outdir / "manifest.json", [json.dumps(manifest, indent=2) + "\n"], text=True, mode=usual_mode(), sync_folder=True)
    return manifest
