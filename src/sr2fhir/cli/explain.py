"""`sr2fhir explain`: the SR and its FHIR side by side in one HTML page (registered on cli.app.app;
explain/page.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .app import app
from .options import CONVERSION, with_options, conversion_options
from .output import load_ig_profiles, say, show_diagnostics, where_explained
from ..errors import Exit


@app.command()
@with_options(CONVERSION, without=("fhir_version", "strict", "jobs", "validate", "fail_on_ig_defects"))
def explain(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="A DICOM SR file (Part 10 or DICOM JSON).", show_default=False)],
    output: Annotated[str, typer.Option("-o", "--output", metavar="FILE", help="The HTML page to write (self-contained: opens from disk, no network).")],
    validate: Annotated[bool, typer.Option("--validate", help="Also show the validation result (R5 and the IG's profiles) on each resource.")] = False,
    *,
    shared: dict[str, Any],
) -> None:
    """Write a page that shows, side by side, what the SR says and what FHIR got."""
    from ..batch import convert_path, write_atomic
    from ..explain.page import render
    from ..fhir.ids import full_url

    cs = conversion_options(shared, conditional_references=False)
    r = convert_path(input, cs.options, cs.limits, debug=cs.checks.debug)
    show_diagnostics(r, cs.verbose, cs.quiet)
    if r.error is not None:
        raise typer.Exit(r.error.exit_code)
    conversion = r.conversions[0]
    if len(r.conversions) > 1:
        say(f"note: {input} holds {len(r.conversions)} SR documents; the page shows the first")
    findings: dict[str, list[str]] | None = None
    if validate:
        from ..validation import validate_resources

        resources = conversion.resources.resources()
        report = validate_resources(resources, {full_url(x["id"]): x for x in resources}, profiles=load_ig_profiles(cs.checks.ig), source=input)
        findings = {x["id"]: [] for x in resources}
        for f in report.findings:
            rid = f.resource.split("/", 1)[-1]
            if f.severity in ("error", "fatal") and rid in findings:
                findings[rid].append(f"{f.severity}: {f.location} {f.message}" + (f" (known IG defect {f.ig_defect})" if f.ig_defect else ""))
    try:
        write_atomic(Path(output), render(conversion, Path(input).name, findings))
    except OSError as exc:
        say(f"error: {output}: cannot write the page ({exc.strerror or exc})", style="bold red")
        raise typer.Exit(Exit.MIXED)
    say(f"{input}: page written to {output}")
    where_explained()

