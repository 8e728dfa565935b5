"""`sr2fhir convert`: SR files to FHIR Bundles or NDJSON, one output per input (docs/convert.md)."""

from __future__ import annotations

import functools
import os
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import ConversionError
from ..fhir.bundle import dumps
from .app import app
from .options import CONVERSION, with_options, ConversionSettings, Include, Outcome, conversion_options
from .output import (
    BatchProgress, batch_exit_code, batch_inputs, outcome_path, remove_stale, say, say_summary, show_diagnostics, target_path, to_stdout, where_explained,
    write_output, write_parts,
)

if TYPE_CHECKING:
    from ..batch import FileResult, Processed


class BundleType(str, Enum):
    transaction = "transaction"
    collection = "collection"
    ndjson = "ndjson"


@app.command()
@with_options(CONVERSION)
def convert(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...", help="DICOM SR files (Part 10 or DICOM JSON), directories (searched recursively), or - for stdin.", show_default=False)],
    output: Annotated[Optional[str], typer.Option("-o", "--output", metavar="FILE|DIR", help="Output file; a directory (one file per input) when there are several inputs or documents. Default: stdout.")] = None,
    bundle: Annotated[BundleType, typer.Option("-b", "--bundle", help="transaction (POST with ifNoneExist), collection, or ndjson (one resource a line).")] = BundleType.transaction,
    pretty: Annotated[bool, typer.Option("--pretty", help="Indent the JSON.")] = False,
    outcome: Outcome = None,
    include: Include = [],
    *,
    shared: dict[str, Any],
) -> None:
    """Convert SR Measurement Reports into a FHIR Bundle (or NDJSON) per input."""
    from ..batch import process, run_all
    
    if output == "-":
        output = None  # standard output, as without -o (never a file named "-")
    cs = conversion_options(shared, conditional_references=bundle == BundleType.transaction)
    files, stems, skipped = batch_inputs(inputs, include)
    many = len(files) > 1 or any(i != "-" and Path(i).is_dir() for i in inputs)
    folder = output is not None and (many or Path(output).is_dir() or output.endswith(("/", os.sep)))
    if many and output is not None and not Path(output).is_dir() and output.lower().endswith((".json", ".ndjson")):
        raise typer.BadParameter(f"-o {output} names a file, but there are {len(files)} inputs: give a folder (one output per input)")
    jobs = cs.jobs if "-" not in files else 1
    work = functools.partial(process, options=cs.options, limits=cs.limits, bundle_type=bundle.value, pretty=pretty, checks=cs.checks, materialize=jobs > 1, fhir_version=cs.fhir_version)
    results: list[FileResult] = []
    stdout_broken: list[str] = []
    with BatchProgress(len(files), "converted", cs.quiet) as progress:
        for f, stem, done in zip(files, stems, run_all(work, files, jobs)):
            _convert_one(f, stem, done, output, outcome, bundle.value, many, folder, cs, results, stdout_broken)
            progress.advance(results[-1].error is not None)
    if many:
        say_summary(results, cs.quiet, skipped=skipped)
    where_explained()
    raise typer.Exit(batch_exit_code(results))


def _convert_one(f: str, stem: str, done: Processed, output: str | None, outcome: str | None, bundle: str, many: bool, folder: bool,
                 cs: "ConversionSettings", results: list[FileResult], stdout_broken: list[str]) -> None:
    """Write one input's output and outcome (the body of convert's loop)."""
    r = done.result
    results.append(r)
    show_diagnostics(r, cs.verbose, cs.quiet)
    target = target_path(output, stem, bundle, many) if output is not None else None
    if done.parts is not None:
        write_parts(r, f, target, folder, done.parts, cs)
    elif done.text is not None:
        if target is None:
            if not stdout_broken:
                reason = to_stdout(done.text)
                if reason:
                    stdout_broken.append(reason)
            if stdout_broken:
                r.error = ConversionError(f"{f}: cannot write to standard output ({stdout_broken[0]}); its output may be cut short there", code="output")
                say(f"error: {r.error}", style="bold red")
        else:
            write_output(r, f, target, done.text, cs.verbose, cs.quiet)
    elif target is not None and target.is_file():
        remove_stale(r, target, cs.verbose, cs.quiet)
    r.conversions = []  # written: let the resources go before the next file
    if outcome is not None:
        oo = r.diagnostics.operation_outcome(r.source, str(r.error) if r.error is not None else None)
        oo_target = outcome_path(outcome, stem, many)
        write_output(r, f, oo_target, dumps(oo, pretty=True) + "\n", cs.verbose, cs.quiet, what="OperationOutcome")
