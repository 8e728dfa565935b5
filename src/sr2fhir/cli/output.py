"""What every command shares on the way out: messages on stderr (never patient data, never raw
control characters), diagnostics, the batch's inputs and output names, progress, summaries,
exit codes, and writing outputs whole."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple, Sequence

import typer

from ..diagnostics import Severity, printable
from ..errors import ConversionError, Exit

if TYPE_CHECKING:  # the heavy modules (pydicom) are imported by the commands that use them
    from rich.console import Console

    from ..batch import FileResult
    from ..dicom.reader import InputFile

    from .options import ConversionSettings


@functools.cache
def err_console() -> Console:
    """The console on stderr, made on the first message (rich's import is a tenth of a start)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def say(text: str, style: str | None = None) -> None:
    """A message on stderr, with control characters escaped (never markup, never raw escapes)."""
    err_console().print(printable(text), style=style, markup=False)


SHOWN = [0]


"""How many diagnostics this run has shown (for the pointer to the docs at its end)."""


WHERE_EXPLAINED = "each [rule] is explained in docs/diagnostics.md; D-n in docs/decisions.md; IG-n in docs/conformance.md"


def where_explained() -> None:
    if SHOWN[0]:
        say(f"note: {WHERE_EXPLAINED}")


def show_diagnostics(result: FileResult, verbose: bool, quiet: bool) -> None:
    """The diagnostics of one input: warnings and errors (-v: information too; -q: errors only).
    A failure is always shown, whatever the verbosity."""
    floor = Severity.INFORMATION if verbose else (Severity.ERROR if quiet else Severity.WARNING)
    for d in result.diagnostics.items:
        if d.severity >= floor:
            SHOWN[0] += 1
            style = "red" if d.severity >= Severity.ERROR else ("yellow" if d.severity == Severity.WARNING else "dim")
            say(d.text(result.source), style=style)
    if result.error is not None:
        say(f"error: {result.error}", style="bold red")


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


def batch_inputs(inputs: list[str], include: Sequence[str] = ()) -> Batch:
    """The input files of a command (folders walked, --include applied); notes about them shown."""
    from ..dicom.reader import iter_inputs

    notes: list[str] = []
    skipped: list[str] = []
    found = list(iter_inputs(inputs, notes, include, skipped))
    stems = output_stems(found, notes)
    for note in notes:
        say(f"note: {note}")
    return Batch([f.path for f in found], stems, len(skipped))


def target_path(target: str, stem: str, bundle: str, many: bool) -> Path:
    """The output file: `target` itself, or `stem` with the output's extension inside the folder `target`."""
    out = Path(target)
    if not many and not out.is_dir() and not target.endswith(("/", os.sep)):
        return out
    return out / f"{stem}.{'ndjson' if bundle == 'ndjson' else 'json'}"


def outcome_path(outcome: str, stem: str, many: bool) -> Path:
    """Where `--outcome` writes an input's OperationOutcome: `outcome` itself, or `stem`.outcome.json
    inside the folder `outcome` (the stems of output_stems: inputs that share a name get a suffix)."""
    return target_path(outcome, f"{stem}.outcome", "json", many)


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
        if self.enabled and err_console().is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.live = Progress(
                TextColumn(DOING.get(self.verb, self.verb)), BarColumn(), MofNCompleteColumn(), TextColumn("files, {task.fields[failed]} failed, {task.fields[rate]}"),
                TimeRemainingColumn(), TextColumn("{task.fields[now]}"), console=err_console(), transient=True,
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
            err_console().print(f"progress: {self.done}/{self.total} file(s) done, {self.failed} failed, {rate:.1f} file(s)/s, about {left:.0f} s left", markup=False, highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)


def write_parts(r: FileResult, f: str, target: Path | None, folder: bool, parts: list[str], cs: ConversionSettings) -> None:
    """An input holding several SR documents: one output per document, `name.1.json`, `name.2.json` ...
    in the output folder; to stdout one after the other (a Bundle a line); never several in one .json file."""
    if target is None:
        for part in parts:
            if to_stdout(part):
                r.error = ConversionError(f"{f}: cannot write to standard output", code="output")
                return
        return
    if not folder:
        r.error = ConversionError(f"{f}: holds {len(parts)} SR documents: give -o a folder (one output per document), not the file {target}", code="several-documents")
        say(f"error: {r.error}", style="bold red")
        return
    for i, part in enumerate(parts, 1):
        write_output(r, f, target.with_name(f"{target.stem}.{i}{target.suffix}"), part, cs.verbose, cs.quiet)


def to_stdout(text: str | Iterable[str]) -> str | None:
    """Write to standard output; the reason if it cannot be written (a full disk, a closed pipe)."""
    try:
        sys.stdout.writelines([text] if isinstance(text, str) else text)
        sys.stdout.flush()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def write_output(r: FileResult, f: str, target: Path, text: str | Iterable[str], verbose: bool, quiet: bool, what: str = "output") -> None:
    """write_atomic, with a failure (unwritable, full disk) recorded against the input, never a traceback."""
    from ..batch import write_atomic
    
    try:
        write_atomic(target, text)
    except OSError as exc:
        failure = ConversionError(f"{f}: cannot write the {what} {target} ({exc.strerror or type(exc).__name__})", code="output")
        if r.error is None:
            r.error = failure
        say(f"error: {failure}", style="bold red")


def remove_stale(r: FileResult, target: Path, verbose: bool, quiet: bool) -> None:
    """A failed re-conversion must not leave an earlier run's output looking like this input's."""
    try:
        target.unlink()
    except OSError:
        return
    if not quiet:
        say(f"{r.source}: note: removed {target}, the output of an earlier run, which this run could not replace")


def load_ig_profiles(ig: str | None) -> Any:
    from ..validation.package import load_profiles

    try:
        return load_profiles(ig)
    except FileNotFoundError as exc:
        say(f"error: {exc}", style="bold red")
        raise typer.Exit(Exit.USAGE) from None


def say_summary(results: list[FileResult], quiet: bool = False, verb: str = "converted", skipped: int = 0) -> None:
    counts = {"converted": 0, "partial": 0, "failed": 0}
    for r in results:
        counts[r.status] += 1
    hidden = " (hidden by -q)" if quiet else ""
    left_out = f"; {skipped} file(s) in folders skipped, not DICOM" if skipped else ""
    # Each failure was said as it happened (issue 27.3: once, not twice); --outcome keeps them.
    say(f"summary: {len(results)} file(s): {counts['converted']} {verb}, {counts['partial']} {verb} with warnings{hidden}, {counts['failed']} failed{left_out}")


def batch_exit_code(results: list[FileResult]) -> int:
    codes = {r.error.exit_code for r in results if r.error is not None}
    if not codes:
        return 0
    return codes.pop() if len(codes) == 1 else Exit.MIXED
