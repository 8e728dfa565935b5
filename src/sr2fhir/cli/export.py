"""`sr2fhir export`: an archive to FHIR Bulk NDJSON and Parquet research tables (registered on
cli.app; docs/export.md)."""

from __future__ import annotations

import importlib.util
import shlex
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .app import app
from .options import CONVERSION, with_options, conversion_options, Include
from .output import BatchProgress, batch_inputs, say, where_explained
from ..errors import Exit


class Engine(str, Enum):
    local = "local"
    spark = "spark"


def _formats(value: str) -> tuple[str, ...]:
    from ..export.output import FORMATS

    chosen = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    bad = [v for v in chosen if v not in FORMATS]
    if bad or not chosen:
        raise typer.BadParameter(f"--format {value!r}: a comma-separated list of {', '.join(FORMATS)}")
    return chosen


@app.command()
@with_options(CONVERSION)
def export(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...", help="DICOM SR files (Part 10 or DICOM JSON) or directories (searched recursively).", show_default=False)],
    output: Annotated[str, typer.Option("-o", "--output", metavar="DIR", help="The export folder: NDJSON per resource type, manifest.json, a Parquet folder per table.")],
    format: Annotated[str, typer.Option("--format", metavar="ndjson,parquet", help="What to write: FHIR Bulk NDJSON, Parquet research tables, or both.")] = "ndjson,parquet",
    engine: Annotated[Engine, typer.Option("--engine", help="local (processes on this machine) or spark (PySpark; pip install sr2fhir[spark]; runs unchanged under spark-submit).")] = Engine.local,
    spark_master: Annotated[Optional[str], typer.Option("--spark-master", metavar="URL", help="Spark master (default local[N] with N = --jobs; under spark-submit, spark-submit's).")] = None,
    include: Include = [],
    *,
    shared: dict[str, Any],
) -> None:
    """Export SR Measurement Reports as FHIR Bulk NDJSON and Parquet research tables (docs/export.md)."""
    formats = _formats(format)
    cs = conversion_options(shared, conditional_references=False)
    if "-" in inputs:
        raise typer.BadParameter("export reads files and folders, not standard input")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"-o {output}: not a folder")
    # Absolute: the tables and messages name each input the same way whatever the engine and its
    # executors' working folder.
    batch = batch_inputs(inputs, include)
    files = [str(Path(f).resolve()) for f in batch.files]
    request = "sr2fhir export " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    if engine == Engine.spark and importlib.util.find_spec("pyspark") is None:
        say("error: --engine spark needs PySpark: pip install 'sr2fhir[spark]'", style="bold red")
        raise typer.Exit(Exit.USAGE)
    start = time.monotonic()
    failed: list[str] = []
    try:
        if engine == Engine.local:
            from ..export import local

            with BatchProgress(len(files), "exported", cs.quiet) as progress:
                def shown(piece: Any) -> None:
                    _show(piece, cs.verbose, cs.quiet, failed)
                    progress.advance(piece.status == "failed")

                manifest = local.run(files, out, formats, cs.options, cs.limits, cs.checks, cs.jobs, request, shown, cs.fhir_version)
        else:
            from ..export import spark

            manifest = spark.run(files, out, formats, cs.options, cs.limits, cs.checks, cs.jobs, request, spark_master, cs.fhir_version)
            if "parquet" in formats:
                failed += _failures(out)
                _diagnostic_counts(out, cs.quiet)
    except OSError as exc:
        # Nothing half-written is left in place: the staged files never replaced the old ones.
        say(f"error: {output}: the export could not be written ({exc.strerror or exc}); it has no new manifest.json, so nothing half-written "
             "passes for an export (an earlier one stays whole unless the failure came while moving files into place)", style="bold red")
        raise typer.Exit(Exit.MIXED)
    seconds = time.monotonic() - start
    n_failed = sum(e["count"] for e in manifest["error"]) if "ndjson" in formats else len(failed)
    outputs = ", ".join(f"{o['count']} {o['type']}" for o in manifest["output"]) or "no resources"
    tables = ", ".join(f"{t['rows']} {t['table']}" for t in manifest["extension"]["urn:sr2fhir:tables"])
    say(f"export: {len(files)} file(s) in {seconds:.1f} s ({len(files) / max(seconds, 1e-9):.1f}/s), {n_failed} failed; "
         f"{outputs}" + (f"; tables: {tables}" if tables else "") + f"; manifest {out / 'manifest.json'}"
         + (f"; {batch.skipped} file(s) in folders skipped, not DICOM" if batch.skipped else ""))
    if manifest["extension"]["urn:sr2fhir:duplicate-reports"]:
        say(f"note: {manifest['extension']['urn:sr2fhir:duplicate-reports']} report(s) seen twice (same SOP Instance UID): exported once")
    if engine == Engine.spark:
        for reason in failed:  # Spark's executors do not print: said here, once
            say(f"error: {reason}", style="bold red")
    where_explained()
    raise typer.Exit(Exit.MIXED if n_failed else 0)


def _show(piece: Any, verbose: bool, quiet: bool, failed: list[str]) -> None:
    """One input's diagnostics on stderr, as `convert` shows them."""
    floor = {"information": 0, "warning": 1, "error": 2, "fatal": 3}
    least = 0 if verbose else (2 if quiet else 1)
    for d in piece.tables["diagnostics"]:
        if floor.get(d["severity"], 3) >= least:
            say(d["message"], style="red" if floor.get(d["severity"], 3) >= 2 else "yellow")
    for f in piece.tables["failures"]:
        failed.append(f["reason"])
        say(f"error: {f['reason']}", style="bold red")


def _diagnostic_counts(out: Path, quiet: bool) -> None:
    """Spark's executors do not print: the diagnostics table's counts, by severity and rule."""
    import pyarrow.parquet as pq

    from collections import Counter

    rows = pq.read_table(out / "diagnostics", columns=["severity", "rule"]).to_pylist()
    least = ("error", "fatal") if quiet else ("warning", "error", "fatal")
    for (severity, rule), n in sorted(Counter((r["severity"], r["rule"]) for r in rows if r["severity"] in least).items()):
        say(f"{severity}: {n} x [{rule}] (every one in {out / 'diagnostics'})", style="yellow" if severity == "warning" else "red")


def _failures(out: Path) -> list[str]:
    import pyarrow.parquet as pq

    return [str(r) for r in pq.read_table(out / "failures").column("reason").to_pylist()]
