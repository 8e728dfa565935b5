"""`--engine spark`: the same export in PySpark executors (`mapInArrow` over the input listing).

Runs as `local[N]` from the command line, and unchanged under `spark-submit` on a cluster (the
master then comes from spark-submit). Each executor runs `work.export_one`, the function the
local engine runs, and returns every row of every table (and every NDJSON line) as Arrow
batches of one union schema; the driver then writes each table with Spark's Parquet writer and
streams the NDJSON lines, deduplicated and in input order, into the same files as the local
engine (docs/export.md). PySpark is optional: `pip install sr2fhir[spark]`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa

from ..dicom.limits import Limits
from ..settings import Checks, Options
from .output import PER_REPORT, UNKEYED, finish
from .tables import COLUMNS, TABLES
from .work import export_one

CONTROL = [("_table", pa.string()), ("_ordinal", pa.int64()), ("_seq", pa.int64()), ("_rtype", pa.string()), ("_rid", pa.string()), ("_line", pa.string())]
"""Which table a row belongs to (`_ndjson`, `_error` for NDJSON lines), and its place in input order."""


def union_schema() -> pa.Schema:
    """Every table's columns in one schema (a column name means one type in every table)."""
    fields: dict[str, pa.DataType] = dict(CONTROL)
    for cols in COLUMNS.values():
        for name, kind, _ in cols:
            if fields.setdefault(name, kind) != kind:
                raise TypeError(f"column {name} has two types across the tables")
    return pa.schema(list(fields.items()))


def _rows(ordinal: int, path: str, options: Options, limits: Limits, checks: Checks, fhir_version: str) -> Iterator[dict[str, Any]]:
    piece = export_one(path, options, limits, checks, fhir_version)
    for table, rows in piece.tables.items():
        for seq, row in enumerate(rows):
            yield {**row, "_table": table, "_ordinal": ordinal, "_seq": seq}
    for seq, (uid, rtype, rid, line) in enumerate(piece.resources):
        yield {"_table": "_ndjson", "_ordinal": ordinal, "_seq": seq, "sop_instance_uid": uid, "_rtype": rtype, "_rid": rid, "_line": line}
    if piece.outcome is not None:
        yield {"_table": "_error", "_ordinal": ordinal, "_seq": 0, "_rtype": "OperationOutcome", "_line": piece.outcome}


def run(files: list[str], outdir: str | Path, formats: tuple[str, ...], options: Options, limits: Limits, checks: Checks,
        jobs: int, request: str, master: str | None = None, fhir_version: str = "R5") -> dict[str, Any]:
    """Export `files` into `outdir` with Spark (docs/export.md); the local and Spark engines write the same.

    Parameters
    ----------
    files : list of str
        DICOM SR files (absolute paths: the tables name each input by it).
    outdir : str or Path
        The export folder: NDJSON per resource type, a Parquet folder per table, ``manifest.json``;
        written into ``outdir/.staging`` and moved into place at the end, the manifest last.
    formats : tuple of str
        ``"ndjson"``, ``"parquet"``, or both.
    options, limits, checks : Options, Limits, Checks
        The conversion's choices, bounds and checks, as ``sr2fhir convert`` takes them.
    jobs : int
        Processes (local) or Spark's ``local[N]`` when no master is given.
    request : str
        The command line, recorded in the manifest.
    master : str, optional
        A Spark master URL; without it, ``local[jobs]`` (under ``spark-submit``, the cluster's).
    fhir_version : str, optional
        "R5" (the default) or "R4": the NDJSON's FHIR version; the tables are the same.

    Returns
    -------
    dict
        The manifest (Bulk Data ``$export`` style), also written as ``manifest.json``.
    """
    import datetime as dt
    import shutil

    from pyspark import StorageLevel
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this interpreter
    builder = SparkSession.builder.appName("sr2fhir export").config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit
        master = f"local[{jobs}]"
    if master:
        builder = builder.master(master)
    if master and master.startswith("local") and "PYSPARK_GATEWAY_PORT" not in os.environ:
        # local[N]: the executors live in the driver's JVM, whose default 1 GiB heap runs out on
        # an archive of 10,000 reports (benchmarks/export.py). SR2FHIR_SPARK_MEMORY overrides.
        builder = builder.config("spark.driver.memory", os.environ.get("SR2FHIR_SPARK_MEMORY", "4g"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    outdir = Path(outdir)
    staging = outdir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    schema = union_schema()
    listing = spark.createDataFrame(list(enumerate(files)), "ordinal long, path string")
    listing = listing.repartition(max(1, min(len(files), jobs * 4)))

    def convert(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for ordinal, path in zip(batch.column("ordinal").to_pylist(), batch.column("path").to_pylist()):
                rows = list(_rows(ordinal, path, options, limits, checks, fhir_version))
                for i in range(0, len(rows), 5000):
                    yield pa.RecordBatch.from_pylist(rows[i : i + 5000], schema=schema)

    every = listing.mapInArrow(convert, from_arrow_schema(schema)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        # A report exported twice (the same SOP Instance UID in two inputs) counts once: the first.
        first = every.where(F.col("sop_instance_uid").isNotNull() & ~F.col("_table").isin(*UNKEYED)).groupBy("sop_instance_uid").agg(F.min("_ordinal").alias("_first"))
        kept = every.join(first, "sop_instance_uid", "left").where(
            F.col("_table").isin(*UNKEYED) | F.col("_first").isNull() | (F.col("_first") == F.col("_ordinal")))
        duplicates = first.join(every.where(F.col("_table") == "_ndjson").select("sop_instance_uid", "_ordinal").distinct(), "sop_instance_uid").where(F.col("_first") != F.col("_ordinal")).count()
        rows: dict[str, int] = {}
        if "parquet" in formats:
            for table in TABLES:
                cols = [name for name, _, _ in COLUMNS[table]]
                part = kept.where(F.col("_table") == table).orderBy("_ordinal", "_seq").select(*cols)
                part.write.mode("overwrite").parquet(str(staging / table))
                rows[table] = part.count()
                for extra in (staging / table).glob("[._]*"):  # Spark's _SUCCESS and .crc files
                    extra.unlink()
                # The local engine's names (part-00000.parquet ...), not Spark's part-00000-<uuid>-c000.snappy.parquet.
                for n, written in enumerate(sorted((staging / table).glob("part-*.parquet"))):
                    written.rename(written.with_name(f"part-{n:05d}.parquet"))
        counts: dict[str, int] = {}
        if "ndjson" in formats:
            lines = kept.where(F.col("_table") == "_ndjson")
            per_report = lines.where(F.col("_rtype").isin(*PER_REPORT))
            order = Window.partitionBy("_rid").orderBy("_ordinal", "_seq")
            shared = lines.where(~F.col("_rtype").isin(*PER_REPORT)).withColumn("_n", F.row_number().over(order)).where(F.col("_n") == 1).drop("_n")
            ordered = per_report.unionByName(shared).unionByName(every.where(F.col("_table") == "_error").withColumn("_first", F.lit(None).cast("long")))
            files_open: dict[str, Any] = {}
            try:
                for r in ordered.orderBy("_ordinal", "_table", "_seq").select("_rtype", "_line").toLocalIterator():
                    f = files_open.get(r["_rtype"])
                    if f is None:
                        f = files_open[r["_rtype"]] = open(staging / f"{r['_rtype']}.ndjson", "w", encoding="utf-8")
                        counts[r["_rtype"]] = 0
                    f.write(r["_line"] + "\n")
                    counts[r["_rtype"]] += 1
            finally:
                for f in files_open.values():
                    f.close()
        return finish(outdir, staging, started, request, counts, rows, duplicates)
    finally:
        every.unpersist()
        spark.stop()
