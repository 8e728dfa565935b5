"""Convert files one at a time, never letting one bad file stop the others.

Used by the CLI and by the delivery services: each input gives a FileResult that says
converted / partial / failed, with the diagnostics and, for a failure, the reason.
"""

from __future__ import annotations

import errno
import functools
import gc
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal, TypeVar

from .diagnostics import Diagnostics, Severity
from .errors import ConversionError
from .files import replace_file, usual_mode
from .fhir import bundle, r4
from .settings import Checks, Options
from .mapping.report import Conversion, convert
from .dicom.content import SRDocument
from .dicom.limits import Limits
from .dicom.reader import read, read_stream

if TYPE_CHECKING:
    from concurrent.futures import Future

Status = Literal["converted", "partial", "failed"]
T = TypeVar("T")


@dataclass(slots=True)
class FileResult:
    source: str
    conversions: list[Conversion] = field(default_factory=list)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    error: ConversionError | None = None

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "failed"
        worst = self.diagnostics.worst
        return "partial" if worst is not None and worst >= Severity.WARNING else "converted"


def convert_path(path: str, options: Options = Options(), limits: Limits = Limits(), *, debug: bool = False, fhir_version: str = "R5") -> FileResult:
    """Read and convert one input ('-' is stdin) into FHIR `fhir_version`. Never raises for bad input."""
    result = FileResult(source=path)
    with _without_cyclic_gc():
        _convert_into(result, path, options, limits, debug, fhir_version)
    if result.error is not None:
        _detached(result.error)
        result.conversions = []  # a failed file keeps only what the summary needs (issue 10.4)
    return result


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Reference counting frees the content tree and the resources (trees, no cycles); the cyclic
    collector would walk the growing heap again and again: half the time of a 100,000-item
    report (issue 16, benchmarks/bench.py). It runs again when the conversion (or the rendering,
    a generator closed when its consumer lets it go) ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # What the conversion made goes to the oldest generation unexamined (the next full
            # collection sees it); re-enabled as it was, the first young collection would walk all
            # of it at once (0.5 s after a 100,000-item report).
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def convert_document(doc: SRDocument, options: Options = Options(), diagnostics: Diagnostics | None = None, *, fhir_version: str = "R5") -> Conversion:
    """Convert one SR document into the IG's FHIR resources (``sr2fhir.convert``).

    The IG's R5 mapping runs; for ``fhir_version="R4"`` its output is then down-converted
    (docs/r4.md, D-38): an output step, not a mapping choice, so not one of the ``Options``.

    Parameters
    ----------
    doc : SRDocument
        One TID 1500 document, as ``sr2fhir.read`` gives it.
    options : Options, optional
        The choices where the IG leaves them open (time zone, coding schemes ...).
    diagnostics : Diagnostics, optional
        Where to add what could not be mapped; a new collection when not given.
    fhir_version : str, optional
        "R5" (the IG's, the default) or "R4".

    Returns
    -------
    Conversion
        ``resources`` (a ResourceSet of plain FHIR JSON dicts), ``diagnostics``, and ``sources``
        (resource id -> the content item paths it came from).

    Raises
    ------
    ConversionError
        The document is not a TID 1500 Measurement Report, or a limit was exceeded.
    ValueError
        ``fhir_version`` is neither "R5" nor "R4".
    """
    if fhir_version not in ("R5", "R4"):
        raise ValueError(f"fhir_version {fhir_version!r}: expected 'R5' or 'R4'")
    conversion = convert(doc, options, diagnostics)
    if fhir_version == "R4":
        conversion.resources = r4.down_convert(conversion.resources, conversion.diagnostics)
    return conversion


def _convert_into(result: FileResult, path: str, options: Options, limits: Limits, debug: bool, fhir_version: str) -> None:
    try:
        docs = read_stream(sys.stdin.buffer, "<stdin>", limits=limits, diagnostics=result.diagnostics) if path == "-" else read(path, limits=limits, diagnostics=result.diagnostics)
        for doc in docs:
            result.conversions.append(convert_document(doc, options, result.diagnostics, fhir_version=fhir_version))
    except ConversionError as exc:
        result.error = exc
    except MemoryError:
        result.error = ConversionError(f"{path}: out of memory while converting", code="out-of-memory")
    except Exception as exc:  # a bug in sr2fhir: report it, keep going with the other files
        if debug:
            raise
        result.error = ConversionError(
            f"{path}: internal error while converting ({type(exc).__name__}); rerun with --debug and report it",
            code="exception",
        )


def _detached(exc: ConversionError) -> ConversionError:
    """The error without its traceback and context: their frames hold the file's bytes and the
    half-parsed dataset (about 27 MB kept per failed 1.1 MB file, issue 10.4)."""
    exc.__traceback__ = None
    exc.__context__ = None
    exc.__cause__ = None
    return exc


@dataclass(slots=True)
class Processed:
    """One input, converted, checked and rendered: what a worker process sends back."""

    result: FileResult
    text: str | Iterable[str] | None
    """The output: a string (from a worker process), or pieces made as they are written."""
    parts: list[str] | None = None
    """Instead of `text`, for an input holding several SR documents (a DICOM JSON array): one
    output per document."""


@functools.lru_cache(maxsize=4)
def _profiles(ig: str | None) -> Any:
    from .validation.package import load_profiles

    return load_profiles(ig)


def checked(path: str, options: Options = Options(), limits: Limits = Limits(), checks: Checks = Checks(), fhir_version: str = "R5") -> FileResult:
    """convert_path, then --strict and --validate: a FileResult whose conversions may be used."""
    r = convert_path(path, options, limits, debug=checks.debug, fhir_version=fhir_version)
    worst = r.diagnostics.worst if checks.fail_on_ig_defects else r.diagnostics.worst_of_input()
    if r.error is None and checks.strict and worst is not None and worst >= Severity.WARNING:
        r.error = ConversionError(f"{path}: --strict: warnings or errors were reported", code="strict")
    if r.error is None and checks.validate:
        _validate(r, _profiles(checks.ig) if fhir_version == "R5" else None, checks.fail_on_ig_defects, fhir_version)
    if r.error is not None:
        r.conversions = []
    return r


def checked_processed(path: str, options: Options, limits: Limits, checks: Checks, fhir_version: str = "R5") -> Processed:
    """`checked`, as a run_all work item (the conversions cross the process boundary)."""
    return Processed(checked(path, options, limits, checks, fhir_version), None)


def process(
    path: str,
    options: Options,
    limits: Limits,
    bundle_type: str,
    *,
    pretty: bool = False,
    checks: Checks = Checks(),
    materialize: bool = True,
    fhir_version: str = "R5",
) -> Processed:
    """`checked`, then rendering.

    `materialize`: return the output as one string and drop the conversions (what crosses a
    process boundary); else as pieces made while they are written (a lower peak of memory).
    """
    r = checked(path, options, limits, checks, fhir_version)
    if r.error is not None:
        return Processed(r, None)
    if len(r.conversions) > 1:
        parts = [render([c], bundle_type, pretty=pretty) for c in r.conversions]
        r.conversions = []
        return Processed(r, None, parts)
    if not materialize:
        return Processed(r, render_chunks(r.conversions, bundle_type, pretty=pretty))
    text = render(r.conversions, bundle_type, pretty=pretty)
    r.conversions = []
    return Processed(r, text)


def _validate(r: FileResult, profiles: Any, fail_on_ig_defects: bool = False, fhir_version: str = "R5") -> None:
    from .fhir.ids import full_url
    from .validation import validate_resources

    for c in r.conversions:
        resources = c.resources.resources()
        report = validate_resources(resources, {full_url(x["id"]): x for x in resources}, profiles=profiles, source=r.source, fhir_version=fhir_version)
        for f in report.findings:
            # An error the IG itself causes is shown as a warning unless the user asks to fail on it.
            sev = Severity.ERROR if f.severity == "error" and (fail_on_ig_defects or not f.ig_defect) else Severity.WARNING
            where = f"output {f.resource}" + (f" {f.location}" if f.location else "")
            r.diagnostics.add(sev, f"validate-{f.rule}", f.message, location=where, ig_defect=f.ig_defect)
        errors = report.errors(include_ig_defects=fail_on_ig_defects)
        if errors:
            r.error = ConversionError(f"{r.source}: --validate: {errors} error(s) in the output", code="invalid-output")


WINDOW = 32
"""Files in flight per worker. Results come back in input order, so one large report at the head
holds the window; a wide window lets the other workers go on with the small ones meanwhile
(benchmarks/export.py: a mixed archive scaled 1.1x on 2 cores with 2 per worker). At most
WINDOW x jobs finished results wait for their turn in memory."""


def run_all(work: Callable[[str], T], files: list[str], jobs: int, killed: Callable[[str, ConversionError], T] | None = None) -> Iterator[T]:
    """`work` over `files`, results in input order; with jobs > 1 in that many processes.

    Files are handed out one at a time, so N workers stay busy whatever the sizes (issue 11.2).
    A worker that dies (killed by the OOM killer, a signal) breaks the pool: every file then in
    flight is run again alone in a fresh process, so that the one that kills its worker fails with
    that reason and the others convert; the rest of the batch goes on (issue 10.8). `killed` makes
    the result for such a file (default: a failed Processed).
    """
    if jobs <= 1:
        for f in files:
            yield work(f)
        return
    from concurrent.futures import ProcessPoolExecutor  # multiprocessing: only for -j N
    from concurrent.futures.process import BrokenProcessPool

    pending = list(files)
    while pending:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            window: list[tuple[str, Future[T]]] = []
            broken = False
            while (pending or window) and not broken:
                try:
                    while pending and len(window) < WINDOW * jobs:
                        window.append((pending[0], pool.submit(work, pending[0])))
                        pending.pop(0)
                    done = window[0][1].result()
                except BrokenProcessPool:
                    broken = True
                    break
                window.pop(0)
                yield done
        if broken:
            for f, _ in window:
                yield _alone(work, f, killed)


def _killed(f: str, err: ConversionError) -> Any:
    return Processed(FileResult(f, error=err), None)


def _alone(work: Callable[[str], T], f: str, killed: Callable[[str, ConversionError], T] | None) -> T:
    """Run one file in a process of its own; if that process dies too, the file fails with the reason."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(work, f).result()
        except BrokenProcessPool:
            err = ConversionError(f"{f}: the process converting it was killed (out of memory, or a signal); the other files go on", code="worker-killed")
            return (killed or _killed)(f, err)


def render_chunks(conversions: list[Conversion], bundle_type: str, *, pretty: bool = False) -> Iterator[str]:
    """The output for one input, piece by piece: a Bundle per document (one a line) or NDJSON."""
    with _without_cyclic_gc():
        for c in conversions:
            if bundle_type == "ndjson":
                yield from bundle.iter_ndjson(c.resources.resources())
                continue
            key = c.document.sop_instance_uid or c.document.source
            if pretty:
                b = bundle.transaction(c.resources, key) if bundle_type == "transaction" else bundle.collection(c.resources, key)
                yield bundle.dumps(b, pretty=True)
            else:
                entry = bundle.transaction_entry if bundle_type == "transaction" else bundle.collection_entry
                yield from bundle.iter_compact_entries(bundle.bundle_head(bundle_type, key), (entry(e) for e in c.resources))
            yield "\n"


def render(conversions: list[Conversion], bundle_type: str, *, pretty: bool = False) -> str:
    """The output text for one input: a Bundle (one per document) or NDJSON."""
    return "".join(render_chunks(conversions, bundle_type, pretty=pretty))


def write_atomic(path: str | os.PathLike[str], text: str | Iterable[str]) -> None:
    """Write via a temporary file in the same folder and rename: never a half-written output.

    Only a regular file (or a new name) is ever replaced. `-` is standard output; a device, FIFO or
    socket (`/dev/null`, `/dev/stdout`) is written as a stream; a symbolic link stays a link and
    its target is replaced (issue 10.0: `-o /dev/null` run as root once replaced /dev/null).
    """
    pieces = [text] if isinstance(text, str) else text
    if str(path) == "-":
        sys.stdout.writelines(pieces)
        sys.stdout.flush()
        return
    p = Path(path)
    if p.is_symlink():
        p = Path(os.path.realpath(p))
    if p.exists() and not p.is_file():
        if p.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        with open(p, "w", encoding="utf-8") as stream:
            stream.writelines(pieces)
        return
    p.parent.mkdir(parents=True, exist_ok=True)
    replace_file(p, pieces, text=True, mode=usual_mode())
