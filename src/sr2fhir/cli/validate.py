"""`sr2fhir validate`: FHIR output checked against R5 (or R4), the IG's profiles and Bundle integrity."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..diagnostics import printable
from ..errors import Exit
from ..fhir.bundle import dumps
from .app import app
from .options import FhirVersion
from .output import load_ig_profiles, outcome_path, output_stems, say


def _not_fhir(path: str, exc: Exception) -> str:
    """Why a file given to `validate` cannot be read, saying so when it is DICOM (PS3.10 7.1: the
    DICM prefix after a 128-byte preamble)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        head = b""
    if head[128:132] == b"DICM":
        return "this is a DICOM file, not FHIR JSON: `sr2fhir convert` turns an SR into FHIR, `validate` checks FHIR"
    return f"cannot read FHIR JSON ({type(exc).__name__})"


@app.command("validate")
def validate_cmd(
    files: Annotated[list[str], typer.Argument(metavar="FILE...", help="FHIR JSON files: Bundles, single resources, or NDJSON.", show_default=False)],
    ig: Annotated[Optional[str], typer.Option("--ig", metavar="DIR", help="The IG package folder (default: ~/.fhir/packages/hl7.fhir.uv.dicom-sr#1.0.0 if present, else the copy sr2fhir ships).")] = None,
    outcome: Annotated[Optional[str], typer.Option("--outcome", metavar="FILE|DIR", help="Write the findings as a FHIR OperationOutcome (a file; a folder for several inputs).")] = None,
    fail_on_ig_defects: Annotated[bool, typer.Option(
        "--fail-on-ig-defects", help="Count findings that known defects of the IG itself cause (docs/conformance.md) as errors; by default they are warnings.")] = False,
    fhir_version: Annotated[FhirVersion, typer.Option("--fhir-version", case_sensitive=False, metavar="R5|R4", help="R5 (the IG's profiles) or R4 output of sr2fhir (structure, cross-version extensions, reference targets; docs/r4.md).")] = FhirVersion.R5,
) -> None:
    """Check FHIR output against R5, the IG's profiles, and Bundle integrity (or, with --fhir-version R4, R4 output)."""
    from ..batch import write_atomic
    from ..dicom.reader import InputFile
    from ..validation.validator import fhir_version_of, load, validate_resources

    profiles = load_ig_profiles(ig) if fhir_version == FhirVersion.R5 else None
    failed = False
    # One naming rule for outputs and outcomes: inputs that share a stem get a suffix (issue 26, item 4).
    # A folder is an export: its NDJSON files (issue 27.6).
    files = [str(p) for f in files for p in (sorted(Path(f).glob("*.ndjson")) if Path(f).is_dir() else [Path(f)])]
    stems = dict(zip(files, output_stems([InputFile(f, os.path.basename(f)) for f in files], [])))
    loaded: dict[str, tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, Any] | None]] = {}
    for f in files:
        try:
            loaded[f] = load(f)
        except (OSError, ValueError) as exc:
            say(f"error: {f}: {_not_fhir(f, exc)}", style="bold red")
            failed = True
    # Files that are not Bundles (NDJSON) are one set: an export's files reference each other.
    loose = [f for f, (_, _, b) in loaded.items() if b is None]
    shared = {url: r for f in loose for url, r in loaded[f][1].items()}
    for f, (resources, index, bundle_) in loaded.items():
        if not resources:
            say(f"error: {f}: no FHIR resource in the file", style="bold red")
            failed = True
            continue
        found = fhir_version_of(resources)
        if found is not None and found != fhir_version.value:
            # Checking R4 against R5 (or back) would drown the real findings in structure noise.
            hint = "give --fhir-version R4" if found == "R4" else "drop --fhir-version R4 (R5 is the default)"
            say(f"error: {f}: this is FHIR {found} output, and it is being checked as {fhir_version.value}: {hint}", style="bold red")
            failed = True
            continue
        others = [r for g in loose if g != f for r in loaded[g][0]] if bundle_ is None else []
        report = validate_resources(resources, shared if bundle_ is None else index, bundle=bundle_, profiles=profiles, source=f,
                                    fhir_version=fhir_version.value, referrers=others)
        for finding in report.findings:
            typer.echo(printable(f"{f}: {finding.text(fail_on_ig_defects)}"))
        known = report.count("error") - report.errors()
        errors = report.errors(include_ig_defects=fail_on_ig_defects)
        defects = "" if not known else f" ({known} from known IG defects, --fail-on-ig-defects)" if fail_on_ig_defects else f", {known} known IG defect(s) (not failing, docs/conformance.md)"
        typer.echo(printable(f"{f}: {report.resources} resource(s): {errors} error(s){defects}, {report.count('warning')} warning(s)"))
        failed |= errors > 0
        if outcome is not None:
            target = outcome_path(outcome, stems[f], len(files) > 1)
            write_atomic(target, dumps(report.operation_outcome(), pretty=True) + "\n")
    raise typer.Exit(Exit.MIXED if failed else Exit.OK)
