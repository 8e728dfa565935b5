"""The `sr2fhir` command line: convert, validate, push, dump.

Exit codes: errors.Exit (README "Exit codes"); failure codes: errors.FAILURES (docs/diagnostics.md).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit
from typing import TYPE_CHECKING, Annotated, Any, Iterable, Iterator, NamedTuple, Optional, Sequence

import typer

from . import __version__
from .diagnostics import Severity, printable
from .dicom.limits import Limits
from .errors import ConversionError, Exit
from .fhir.bundle import dumps

if TYPE_CHECKING:  # the heavy modules (pydicom) are imported by the commands that use them
    from rich.console import Console
    from .batch import Checks, FileResult, Processed
    from .mapping.context import Options
    from .dicom.reader import InputFile

DEFAULT_MAX_DEPTH = Limits().max_depth
DEFAULT_MAX_ITEMS = Limits().max_items


app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    help="Convert DICOM SR TID 1500 Measurement Reports into FHIR R5 resources, as the HL7 "
    "'DICOM SR to FHIR Resource Mapping' IG (hl7.fhir.uv.dicom-sr 1.0.0) specifies.",
)


@functools.cache
def _err() -> Console:
    """The console on stderr, made on the first message (rich's import is a tenth of a start)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _say(text: str, style: str | None = None) -> None:
    """A message on stderr, with control characters escaped (never markup, never raw escapes)."""
    _err().print(printable(text), style=style, markup=False)

FailOnIgDefects = Annotated[bool, typer.Option(
    "--fail-on-ig-defects",
    help="Let findings that known defects of the IG itself cause (docs/conformance.md) fail --strict and --validate too; by default they are warnings.",
)]

# --- the conversion and reporting options, one definition for every command that converts ---
Timezone = Annotated[str, typer.Option("--timezone", metavar="±HH:MM", help="Zone for times when the SR gives none (Timezone Offset From UTC absent).")]
CodingScheme = Annotated[list[str], typer.Option("--coding-scheme", metavar="DESIGNATOR=URI", help="Map a Coding Scheme Designator to a FHIR system URI (repeatable).")]
DiagnosticReport = Annotated[bool, typer.Option("--diagnostic-report", help="Also emit a DiagnosticReport grouping the Observations.")]
Outcome = Annotated[Optional[str], typer.Option("--outcome", metavar="FILE|DIR", help="Write the diagnostics as a FHIR OperationOutcome: a file, or a directory (one per input).")]
Strict = Annotated[bool, typer.Option("--strict", help="Fail (exit 3, nothing written or sent) when any warning or error is reported (known IG defects aside).")]
MaxDepth = Annotated[int, typer.Option("--max-depth", metavar="N", help="Deepest content tree accepted.")]
MaxItems = Annotated[int, typer.Option("--max-items", metavar="N", help="Most content items accepted in one report.")]
Verbose = Annotated[bool, typer.Option("-v", "--verbose", help="Also show information diagnostics (items the IG does not map).")]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="Show no warnings, only errors and the summary.")]
Include = Annotated[list[str], typer.Option("--include", metavar="GLOB", help="In folders, read only the files whose name or relative path matches GLOB (repeatable), e.g. '*.dcm'. Default: every file; files plainly not DICOM are skipped and counted.", show_default=False)]
Jobs = Annotated[int, typer.Option("-j", "--jobs", metavar="N", help="Convert this many files at once (processes); output and messages keep the input order.")]
Validate = Annotated[bool, typer.Option("--validate", help="Check the output against R5 and the IG's profiles; nothing that fails is written or sent.")]
Ig = Annotated[Optional[str], typer.Option("--ig", metavar="DIR", help="The IG package folder for --validate (default: ~/.fhir/packages/hl7.fhir.uv.dicom-sr#1.0.0 if present, else the copy sr2fhir ships).")]
Debug = Annotated[bool, typer.Option("--debug", help="Show a traceback for internal errors.")]


class FhirVersion(str, Enum):
    R5 = "R5"
    R4 = "R4"


FhirVersionOpt = Annotated[FhirVersion, typer.Option(
    "--fhir-version", case_sensitive=False, metavar="R5|R4",
    help="FHIR version of the output: R5 (the IG's) or R4 (down-converted with the HL7 cross-version extensions; docs/r4.md says what R4 loses).",
)]


@dataclass(frozen=True)
class ConversionSettings:
    """The conversion and reporting options as one value, checked once."""

    options: Options
    limits: Limits
    checks: Checks
    verbose: bool
    quiet: bool
    jobs: int


def conversion_options(
    *, timezone: str, coding_scheme: list[str], diagnostic_report: bool, strict: bool, max_depth: int, max_items: int,
    verbose: bool, quiet: bool, jobs: int, validate: bool, ig: str | None, debug: bool, fail_on_ig_defects: bool,
    conditional_references: bool = True, fhir_version: "FhirVersion | str" = "R5",
) -> ConversionSettings:
    """Check the shared options (usage errors, exit 2) and bundle them."""
    from .batch import Checks
    from .mapping.context import Options
    
    if verbose and quiet:
        raise typer.BadParameter("-v and -q ask for opposite things; give one")
    if jobs < 1:
        raise typer.BadParameter("--jobs must be at least 1")
    if max_depth < 1 or max_items < 1:
        raise typer.BadParameter("--max-depth and --max-items must be at least 1")
    zone = _check_timezone(timezone)
    options = Options(default_timezone=zone, coding_schemes=_parse_schemes(coding_scheme), diagnostic_report=diagnostic_report, conditional_references=conditional_references,
                      fhir_version=FhirVersion(fhir_version).value)
    if validate and options.fhir_version == "R5":
        _profiles(ig)  # fail early, with a clear message, when the IG package is missing
    checks = Checks(strict=strict, validate=validate, ig=ig, fail_on_ig_defects=fail_on_ig_defects, debug=debug)
    return ConversionSettings(options, Limits(max_depth=max_depth, max_items=max_items), checks, verbose, quiet, jobs)


def _check_timezone(value: str) -> str:
    """`--timezone`: a UTC offset ±HH:MM (as DICOM's Timezone Offset From UTC), Z, or UTC."""
    if value.upper() in ("Z", "UTC"):
        return "+00:00"
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", value)
    if not m or int(m.group(2)) > 14 or int(m.group(3)) > 59:
        raise typer.BadParameter(f"--timezone {value!r}: expected a UTC offset such as +01:00 or -05:00 (hours up to 14)")
    return f"{m.group(1)}{m.group(2)}:{m.group(3)}"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sr2fhir {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    pass


def _parse_schemes(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise typer.BadParameter(f"{p!r}: expected DESIGNATOR=URI, e.g. 99LIDCQIICR=http://cancerimagingarchive.net")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


_SHOWN = [0]
"""How many diagnostics this run has shown (for the pointer to the docs at its end)."""
WHERE_EXPLAINED = "each [rule] is explained in docs/diagnostics.md; D-n in docs/decisions.md; IG-n in docs/conformance.md"


def _where_explained() -> None:
    if _SHOWN[0]:
        _say(f"note: {WHERE_EXPLAINED}")


def _report(result: FileResult, verbose: bool, quiet: bool) -> None:
    """The diagnostics of one input: warnings and errors (-v: information too; -q: errors only).
    A failure is always shown, whatever the verbosity."""
    floor = Severity.INFORMATION if verbose else (Severity.ERROR if quiet else Severity.WARNING)
    for d in result.diagnostics.items:
        if d.severity >= floor:
            _SHOWN[0] += 1
            style = "red" if d.severity >= Severity.ERROR else ("yellow" if d.severity == Severity.WARNING else "dim")
            _say(d.text(result.source), style=style)
    if result.error is not None:
        _say(f"error: {result.error}", style="bold red")


def output_stems(files: list[InputFile], notes: list[str]) -> list[str]:
    """Unique, stable output names (without extension) for a batch, one per input (issue 10.9).

    An input keeps its path relative to the folder given on the command line, without a
    .dcm/.json extension. Inputs that would still share a name (a/x.dcm and b/x.dcm given as two
    folders, x.dcm and x.DCM) get a suffix from a hash of their path, and a note says so.
    """
    stems = []
    for f in files:
        rel = "stdin" if f.path == "-" else f.relative
        for ext in (".dcm", ".json"):
            if rel.lower().endswith(ext):
                rel = rel[: -len(ext)]
        stems.append(rel)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(stems):
        groups.setdefault(s.casefold(), []).append(i)
    for members in groups.values():
        if len(members) > 1:
            for i in members:
                digest = hashlib.sha1(os.path.abspath(files[i].path).encode("utf-8", "surrogateescape")).hexdigest()[:8]
                stems[i] = f"{stems[i]}.{digest}"
            notes.append(f"{', '.join(files[i].path for i in members)} would write the same output name: each gets a suffix from its path ({', '.join(stems[i] for i in members)})")
    return stems


class Batch(NamedTuple):
    files: list[str]
    stems: list[str]
    """Their unique output names."""
    skipped: int
    """Files in folders left out because they are plainly not DICOM."""


def _batch(inputs: list[str], include: Sequence[str] = ()) -> Batch:
    """The input files of a command (folders walked, --include applied); notes about them shown."""
    from .dicom.reader import iter_inputs

    notes: list[str] = []
    skipped: list[str] = []
    found = list(iter_inputs(inputs, notes, include, skipped))
    stems = output_stems(found, notes)
    for note in notes:
        _say(f"note: {note}")
    return Batch([f.path for f in found], stems, len(skipped))


def _output_path(target: str, stem: str, bundle: str, many: bool) -> Path:
    """The output file: `target` itself, or `stem` with the output's extension inside the folder `target`."""
    out = Path(target)
    if not many and not out.is_dir() and not target.endswith(("/", os.sep)):
        return out
    return out / f"{stem}.{'ndjson' if bundle == 'ndjson' else 'json'}"


class BundleType(str, Enum):
    transaction = "transaction"
    collection = "collection"
    ndjson = "ndjson"


@app.command()
def convert(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...", help="DICOM SR files (Part 10 or DICOM JSON), directories (searched recursively), or - for stdin.", show_default=False)],
    output: Annotated[Optional[str], typer.Option("-o", "--output", metavar="FILE|DIR", help="Output file; a directory (one file per input) when there are several inputs or documents. Default: stdout.")] = None,
    bundle: Annotated[BundleType, typer.Option("-b", "--bundle", help="transaction (POST with ifNoneExist), collection, or ndjson (one resource a line).")] = BundleType.transaction,
    pretty: Annotated[bool, typer.Option("--pretty", help="Indent the JSON.")] = False,
    diagnostic_report: DiagnosticReport = False,
    fhir_version: FhirVersionOpt = FhirVersion.R5,
    timezone: Timezone = "+00:00",
    coding_scheme: CodingScheme = [],
    outcome: Outcome = None,
    strict: Strict = False,
    max_depth: MaxDepth = DEFAULT_MAX_DEPTH,
    max_items: MaxItems = DEFAULT_MAX_ITEMS,
    verbose: Verbose = False,
    quiet: Quiet = False,
    jobs: Jobs = 1,
    include: Include = [],
    validate: Validate = False,
    ig: Ig = None,
    debug: Debug = False,
    fail_on_ig_defects: FailOnIgDefects = False,
) -> None:
    """Convert SR Measurement Reports into a FHIR Bundle (or NDJSON) per input."""
    from .batch import process, run_all
    
    if output == "-":
        output = None  # standard output, as without -o (never a file named "-")
    cs = conversion_options(
        timezone=timezone, coding_scheme=coding_scheme, diagnostic_report=diagnostic_report, fhir_version=fhir_version, strict=strict, max_depth=max_depth,
        max_items=max_items, verbose=verbose, quiet=quiet, jobs=jobs, validate=validate, ig=ig, debug=debug,
        fail_on_ig_defects=fail_on_ig_defects, conditional_references=bundle == BundleType.transaction,
    )
    files, stems, skipped = _batch(inputs, include)
    many = len(files) > 1 or any(i != "-" and Path(i).is_dir() for i in inputs)
    folder = output is not None and (many or Path(output).is_dir() or output.endswith(("/", os.sep)))
    if many and output is not None and not Path(output).is_dir() and output.lower().endswith((".json", ".ndjson")):
        raise typer.BadParameter(f"-o {output} names a file, but there are {len(files)} inputs: give a folder (one output per input)")
    jobs = cs.jobs if "-" not in files else 1
    work = functools.partial(process, options=cs.options, limits=cs.limits, bundle_type=bundle.value, pretty=pretty, checks=cs.checks, materialize=jobs > 1)
    results: list[FileResult] = []
    stdout_broken: list[str] = []
    with BatchProgress(len(files), "converted", cs.quiet) as progress:
        for f, stem, done in zip(files, stems, run_all(work, files, jobs)):
            _convert_one(f, stem, done, output, outcome, bundle.value, many, folder, cs, results, stdout_broken)
            progress.advance(results[-1].error is not None)
    if many:
        _summary(results, cs.quiet, skipped=skipped)
    _where_explained()
    raise typer.Exit(_exit_code(results))


def _convert_one(f: str, stem: str, done: Processed, output: str | None, outcome: str | None, bundle: str, many: bool, folder: bool,
                 cs: "ConversionSettings", results: list[FileResult], stdout_broken: list[str]) -> None:
    """Write one input's output and outcome (the body of convert's loop)."""
    r = done.result
    results.append(r)
    _report(r, cs.verbose, cs.quiet)
    target = _output_path(output, stem, bundle, many) if output is not None else None
    if done.parts is not None:
        _write_parts(r, f, target, folder, done.parts, cs)
    elif done.text is not None:
        if target is None:
            if not stdout_broken:
                reason = _to_stdout(done.text)
                if reason:
                    stdout_broken.append(reason)
            if stdout_broken:
                r.error = ConversionError(f"{f}: cannot write to standard output ({stdout_broken[0]}); its output may be cut short there", code="output")
                _say(f"error: {r.error}", style="bold red")
        else:
            _write(r, f, target, done.text, cs.verbose, cs.quiet)
    elif target is not None and target.is_file():
        _remove_stale(r, target, cs.verbose, cs.quiet)
    r.conversions = []  # written: let the resources go before the next file
    if outcome is not None:
        oo = r.diagnostics.operation_outcome(r.source, str(r.error) if r.error is not None else None)
        oo_target = Path(outcome) / f"{stem}.outcome.json" if many else _output_path(outcome, stem, "json", many)
        _write(r, f, oo_target, dumps(oo, pretty=True) + "\n", cs.verbose, cs.quiet, what="OperationOutcome")


DOING = {"converted": "converting", "pushed": "pushing", "exported": "exporting"}
"""The live bar's label: what is being done, not a claim about files that may have failed."""


class BatchProgress:
    """Progress of a batch on stderr (issue 11.1): a live bar on a terminal (files done, failures,
    rate, time left); otherwise a plain line every SR2FHIR_PROGRESS_SECONDS (default 10) seconds.
    Off for a single file and with -q."""

    def __init__(self, total: int, verb: str, quiet: bool) -> None:
        self.total, self.verb, self.done, self.failed = total, verb, 0, 0
        self.enabled = total > 1 and not quiet
        self.start = self.last = time.monotonic()
        self.every = float(os.environ.get("SR2FHIR_PROGRESS_SECONDS", "10"))
        self.live: Any = None
        self.task: Any = None

    def __enter__(self) -> "BatchProgress":
        if self.enabled and _err().is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.live = Progress(
                TextColumn(DOING.get(self.verb, self.verb)), BarColumn(), MofNCompleteColumn(), TextColumn("files, {task.fields[failed]} failed, {task.fields[rate]}"),
                TimeRemainingColumn(), TextColumn("{task.fields[now]}"), console=_err(), transient=True,
            )
            self.live.__enter__()
            self.task = self.live.add_task(self.verb, total=self.total, failed=0, rate="", now="")
        return self

    def now(self, text: str) -> None:
        """What is being done, on the live bar (a long push shows which report it is on)."""
        if self.live is not None:
            self.live.update(self.task, now=text)

    def advance(self, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        if not self.enabled:
            return
        now = time.monotonic()
        rate = self.done / max(now - self.start, 1e-9)
        if self.live is not None:
            self.live.update(self.task, advance=1, failed=self.failed, rate=f"{rate:.1f} files/s")
        elif now - self.last >= self.every and self.done < self.total:
            self.last = now
            left = (self.total - self.done) / rate if rate else 0
            _err().print(f"progress: {self.done}/{self.total} file(s) done, {self.failed} failed, {rate:.1f} file(s)/s, about {left:.0f} s left", markup=False, highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)


def _write_parts(r: FileResult, f: str, target: Path | None, folder: bool, parts: list[str], cs: ConversionSettings) -> None:
    """An input holding several SR documents: one output per document, `name.1.json`, `name.2.json` ...
    in the output folder; to stdout one after the other (a Bundle a line); never several in one .json file."""
    if target is None:
        for part in parts:
            if _to_stdout(part):
                r.error = ConversionError(f"{f}: cannot write to standard output", code="output")
                return
        return
    if not folder:
        r.error = ConversionError(f"{f}: holds {len(parts)} SR documents: give -o a folder (one output per document), not the file {target}", code="several-documents")
        _say(f"error: {r.error}", style="bold red")
        return
    for i, part in enumerate(parts, 1):
        _write(r, f, target.with_name(f"{target.stem}.{i}{target.suffix}"), part, cs.verbose, cs.quiet)


def _to_stdout(text: str | Iterable[str]) -> str | None:
    """Write to standard output; the reason if it cannot be written (a full disk, a closed pipe)."""
    try:
        sys.stdout.writelines([text] if isinstance(text, str) else text)
        sys.stdout.flush()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def _write(r: FileResult, f: str, target: Path, text: str | Iterable[str], verbose: bool, quiet: bool, what: str = "output") -> None:
    """write_atomic, with a failure (unwritable, full disk) recorded against the input, never a traceback."""
    from .batch import write_atomic
    
    try:
        write_atomic(target, text)
    except OSError as exc:
        failure = ConversionError(f"{f}: cannot write the {what} {target} ({exc.strerror or type(exc).__name__})", code="output")
        if r.error is None:
            r.error = failure
        _say(f"error: {failure}", style="bold red")


def _remove_stale(r: FileResult, target: Path, verbose: bool, quiet: bool) -> None:
    """A failed re-conversion must not leave an earlier run's output looking like this input's."""
    try:
        target.unlink()
    except OSError:
        return
    if not quiet:
        _say(f"{r.source}: note: removed {target}, the output of an earlier run, which this run could not replace")


def _profiles(ig: str | None) -> Any:
    from .validation.package import load_profiles

    try:
        return load_profiles(ig)
    except FileNotFoundError as exc:
        _say(f"error: {exc}", style="bold red")
        raise typer.Exit(Exit.USAGE) from None


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
    from .batch import write_atomic
    from .dicom.reader import InputFile
    from .validation.validator import fhir_version_of, load, validate_resources

    profiles = _profiles(ig) if fhir_version == FhirVersion.R5 else None
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
            _say(f"error: {f}: {_not_fhir(f, exc)}", style="bold red")
            failed = True
    # Files that are not Bundles (NDJSON) are one set: an export's files reference each other.
    loose = [f for f, (_, _, b) in loaded.items() if b is None]
    shared = {url: r for f in loose for url, r in loaded[f][1].items()}
    for f, (resources, index, bundle_) in loaded.items():
        if not resources:
            _say(f"error: {f}: no FHIR resource in the file", style="bold red")
            failed = True
            continue
        found = fhir_version_of(resources)
        if found is not None and found != fhir_version.value:
            # Checking R4 against R5 (or back) would drown the real findings in structure noise.
            hint = "give --fhir-version R4" if found == "R4" else "drop --fhir-version R4 (R5 is the default)"
            _say(f"error: {f}: this is FHIR {found} output, and it is being checked as {fhir_version.value}: {hint}", style="bold red")
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
            target = Path(outcome) / f"{stems[f]}.outcome.json" if len(files) > 1 else Path(outcome)
            write_atomic(target, dumps(report.operation_outcome(), pretty=True) + "\n")
    raise typer.Exit(Exit.MIXED if failed else Exit.OK)


FhirUrl = Annotated[str, typer.Option("--fhir-url", metavar="URL", help="Base URL of the FHIR server (R5; R4 with --fhir-version R4).")]
TokenEnv = Annotated[Optional[str], typer.Option("--token-env", metavar="VAR", help="Environment variable holding a bearer token.")]
TokenFile = Annotated[Optional[str], typer.Option("--token-file", metavar="FILE", help="File holding a bearer token.")]
BasicUser = Annotated[Optional[str], typer.Option("--basic-user", metavar="USER", help="HTTP basic user; the password comes from SR2FHIR_PASSWORD.")]
CaBundle = Annotated[Optional[str], typer.Option("--ca-bundle", metavar="FILE", help="CA bundle for TLS verification.")]
Insecure = Annotated[bool, typer.Option("--insecure", help="Do not verify TLS certificates.")]
SmartClientId = Annotated[Optional[str], typer.Option("--smart-client-id", metavar="ID", help="SMART Backend Services client id (signed-JWT client credentials).")]
SmartKey = Annotated[Optional[str], typer.Option("--smart-key", metavar="FILE", help="PEM private key (RSA: RS384, EC P-384: ES384) for SMART.")]
SmartTokenUrl = Annotated[Optional[str], typer.Option("--smart-token-url", metavar="URL", help="SMART token endpoint; default: from .well-known/smart-configuration.")]
SmartScope = Annotated[Optional[str], typer.Option("--smart-scope", metavar="SCOPES", help="SMART scopes to ask for; default: what push (with --seed) needs (system/...).")]
SmartKid = Annotated[Optional[str], typer.Option("--smart-kid", metavar="KID", help="Key id (kid) to put in the JWT header.")]


class MissingPolicy(str, Enum):
    fail = "fail"
    logical = "logical"


class MultiplePolicy(str, Enum):
    fail = "fail"
    first = "first"


@app.command()
def push(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...", help="DICOM SR files or directories (searched recursively).", show_default=False)],
    fhir_url: FhirUrl,
    token_env: TokenEnv = None,
    token_file: TokenFile = None,
    basic_user: BasicUser = None,
    smart_client_id: SmartClientId = None,
    smart_key: SmartKey = None,
    smart_token_url: SmartTokenUrl = None,
    smart_scope: SmartScope = None,
    smart_kid: SmartKid = None,
    ca_bundle: CaBundle = None,
    insecure: Insecure = False,
    missing: Annotated[MissingPolicy, typer.Option("--missing", help="When the Patient/ImagingStudy/ServiceRequest is not on the server: fail, or push with a logical reference.")] = MissingPolicy.fail,
    multiple: Annotated[MultiplePolicy, typer.Option("--multiple", help="When several match: fail, or take the first.")] = MultiplePolicy.fail,
    spool: Annotated[Optional[str], typer.Option("--spool", metavar="DIR", help="Copy every input that could not be pushed here, for a retry.")] = None,
    retries: Annotated[int, typer.Option("--retries", metavar="N", help="Retries after a network error, 429 or 5xx (exponential backoff, Retry-After honoured).")] = 5,
    seed: Annotated[bool, typer.Option("--seed", help="First create the Patient/ImagingStudy/ServiceRequest each report refers to (test and demo servers).")] = False,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Seconds one request may take, from sending to the last byte of the answer (each retry has its own).")] = 120.0,
    connect_timeout: Annotated[float, typer.Option("--connect-timeout", metavar="SECONDS", help="Seconds to wait for a connection.")] = 10.0,
    diagnostic_report: DiagnosticReport = False,
    fhir_version: FhirVersionOpt = FhirVersion.R5,
    timezone: Timezone = "+00:00",
    coding_scheme: CodingScheme = [],
    outcome: Outcome = None,
    strict: Strict = False,
    max_depth: MaxDepth = DEFAULT_MAX_DEPTH,
    max_items: MaxItems = DEFAULT_MAX_ITEMS,
    verbose: Verbose = False,
    quiet: Quiet = False,
    jobs: Jobs = 1,
    include: Include = [],
    validate: Validate = False,
    ig: Ig = None,
    debug: Debug = False,
    fail_on_ig_defects: FailOnIgDefects = False,
) -> None:
    """Convert and post one transaction Bundle per SR to a FHIR server (idempotent).

    The conversion options are those of `convert`; `-j` converts ahead in processes while the
    reports are posted one at a time, in input order.
    """
    from .batch import FileResult, checked_processed, run_all
    from .delivery.client import DeliveryError, version_mismatch
    from .delivery.connection import Connection
    from .delivery.push import keep, push_path

    if retries < 0:
        raise typer.BadParameter("--retries must be 0 or more")
    if timeout <= 0 or connect_timeout <= 0:
        raise typer.BadParameter("--timeout and --connect-timeout must be more than 0 seconds")
    _check_url(fhir_url)
    cs = conversion_options(
        timezone=timezone, coding_scheme=coding_scheme, diagnostic_report=diagnostic_report, fhir_version=fhir_version, strict=strict, max_depth=max_depth,
        max_items=max_items, verbose=verbose, quiet=quiet, jobs=jobs, validate=validate, ig=ig, debug=debug, fail_on_ig_defects=fail_on_ig_defects,
    )
    conn = Connection(fhir_url, token_env, token_file, basic_user, smart_client_id, smart_key, smart_token_url, smart_scope, smart_kid, ca_bundle, insecure, retries, seed, timeout, connect_timeout)
    files, stems, skipped = _batch(inputs, include)
    many = len(files) > 1 or any(Path(i).is_dir() for i in inputs)
    results: list[FileResult] = []
    lost: list[str] = []
    spool_dir = Path(spool) if spool else None

    def keep_rest(rest: list[str], why: str) -> None:
        kept = 0
        for g in rest:
            notes: list[str] = []
            if keep(g, spool_dir, notes):
                kept += 1
            else:
                lost.append(g)
            for note in notes:
                _say(f"{g}: {note}")
            results.append(FileResult(g, error=ConversionError(f"{g}: not attempted ({why})", code="not-attempted")))
        where = f", {kept} kept in {spool_dir}" if spool_dir else ""
        _say(f"error: {why}: {len(rest)} more file(s) not attempted{where}", style="bold red")

    def write_outcome(r: FileResult, stem: str) -> None:
        if outcome is not None:
            oo = r.diagnostics.operation_outcome(r.source, str(r.error) if r.error is not None else None)
            target = Path(outcome) / f"{stem}.outcome.json" if many else Path(outcome)
            _write(r, r.source, target, dumps(oo, pretty=True) + "\n", cs.verbose, cs.quiet, what="OperationOutcome")

    work = functools.partial(checked_processed, options=cs.options, limits=cs.limits, checks=cs.checks)
    done = 0
    try:
        auth = conn.auth()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    except (DeliveryError, OSError) as exc:
        _say(f"error: {exc}", style="bold red")
        raise typer.Exit(Exit.USAGE) from None
    with _terminate_on_sigterm(), conn.client(auth) as client, BatchProgress(len(files), "pushed", cs.quiet) as progress:
        mismatch = version_mismatch(client.server_fhir_version(), cs.options.fhir_version)
        if mismatch:
            _say(f"error: {mismatch}; nothing sent", style="bold red")
            raise typer.Exit(Exit.USAGE)
        try:
            for i, (f, stem, processed) in enumerate(zip(files, stems, run_all(work, files, cs.jobs))):
                conv = processed.result
                _report(conv, cs.verbose, cs.quiet)
                progress.now(f"{Path(f).name}: {sum(len(c.resources) for c in conv.conversions)} resources")

                def told(message: str, f: str = f) -> None:
                    if not cs.quiet:
                        _say(f"{f}: {message}")

                r = push_path(client, f, options=cs.options, missing=missing.value, multiple=multiple.value, spool=spool_dir, seed=seed, conversion=conv, progress=told)
                done = i + 1
                progress.advance(not r.ok)
                for note in r.notes:
                    _say(f"{f}: {note}")
                if r.ok:
                    retired = f", {r.retired} earlier set to entered-in-error" if r.retired else ""
                    _say(f"{f}: pushed, {r.entries} entries ({r.created} created{retired})")
                else:
                    if conv.error is None:
                        conv.error = ConversionError(r.error or f"{f}: not delivered", code="delivery")
                        _say(f"error: {r.error}", style="bold red")
                    if r.lost:
                        lost.append(f)
                conv.conversions = []
                results.append(conv)
                write_outcome(conv, stem)
                if (r.stop or (r.unreachable and not client.answers())) and i + 1 < len(files):
                    # Stop rather than wait out the retries for every remaining input; keep them all.
                    # A server that still answers was only too slow for this report: the next may fare better.
                    keep_rest(files[i + 1 :], "the server is unreachable" if not r.stop else "no later input can succeed")
                    break
        except Terminated:
            # SIGTERM: the report in flight may or may not have landed; pushing it again is safe.
            keep_rest(files[done:], "terminated (SIGTERM)")
            _push_summary(results, lost, cs.quiet, skipped)
            raise typer.Exit(Exit.TERMINATED) from None
    _push_summary(results, lost, cs.quiet, skipped)
    _where_explained()
    raise typer.Exit(Exit.MIXED if lost else _exit_code(results))


def _check_url(url: str) -> None:
    """--fhir-url: an http(s) URL with a host, checked before anything is sent (a usage error)."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise typer.BadParameter(f"--fhir-url {url!r}: expected the server's base URL, e.g. https://fhir.example.org/fhir")


class Terminated(Exception):
    """SIGTERM arrived: stop, keep what was not delivered, exit."""




@contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _push_summary(results: list[FileResult], lost: list[str], quiet: bool, skipped: int = 0) -> None:
    _summary(results, quiet, verb="pushed", skipped=skipped)
    if lost:
        _say(f"error: {len(lost)} input(s) neither delivered nor kept (the spool could not take them):", style="bold red")
        for f in lost:
            _say(f"  not kept: {f}")


def _summary(results: list[FileResult], quiet: bool = False, verb: str = "converted", skipped: int = 0) -> None:
    counts = {"converted": 0, "partial": 0, "failed": 0}
    for r in results:
        counts[r.status] += 1
    hidden = " (hidden by -q)" if quiet else ""
    left_out = f"; {skipped} file(s) in folders skipped, not DICOM" if skipped else ""
    # Each failure was said as it happened (issue 27.3: once, not twice); --outcome keeps them.
    _say(f"summary: {len(results)} file(s): {counts['converted']} {verb}, {counts['partial']} {verb} with warnings{hidden}, {counts['failed']} failed{left_out}")


def _exit_code(results: list[FileResult]) -> int:
    codes = {r.error.exit_code for r in results if r.error is not None}
    if not codes:
        return 0
    return codes.pop() if len(codes) == 1 else Exit.MIXED


@app.command()
def dump(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="A DICOM SR file (Part 10 or DICOM JSON), or - for stdin.", show_default=False)],
    names: Annotated[bool, typer.Option("--names/--no-names", help="Show PNAME values (person names).")] = True,
) -> None:
    """Print the SR content tree: path, relationship, value type, concept name and value."""
    from .dicom.dump import lines
    from .dicom.reader import read, read_stream
    
    try:
        docs = read_stream(sys.stdin.buffer, "<stdin>") if input == "-" else read(input)
    except ConversionError as exc:
        _say(f"error: {exc}", style="bold red")
        raise typer.Exit(exc.exit_code) from None
    for doc in docs:
        sys.stdout.write(f"# {doc.source}: SOP class {doc.sop_class_uid}\n")
        for line in lines(doc, show_names=names):
            sys.stdout.write(line + "\n")


from . import cli_serve  # noqa: E402,F401  (registers serve and queue on app)
from . import cli_export  # noqa: E402,F401  (registers export on app)
from . import cli_explain  # noqa: E402,F401  (registers explain on app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
