"""`sr2fhir push`: convert and post one transaction per report (docs/delivery.md)."""

from __future__ import annotations

import functools
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import typer

from ..errors import Exit
from ..fhir.bundle import dumps
from ..delivery.connection import Connection
from .app import app
from .options import (
    CONNECTION, CONVERSION, with_options, Include, MissingPolicy, MultiplePolicy, Outcome, check_url, conversion_options, default,
)
from .output import BatchProgress, batch_exit_code, batch_inputs, outcome_path, say, say_summary, show_diagnostics, where_explained, write_output

if TYPE_CHECKING:
    from ..batch import FileResult


@app.command()
@with_options(CONNECTION, CONVERSION)
def push(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...", help="DICOM SR files or directories (searched recursively).", show_default=False)],
    missing: Annotated[MissingPolicy, typer.Option("--missing", help="When the Patient/ImagingStudy/ServiceRequest is not on the server: fail, or push with a logical reference.")] = MissingPolicy.fail,
    multiple: Annotated[MultiplePolicy, typer.Option("--multiple", help="When several match: fail, or take the first.")] = MultiplePolicy.fail,
    spool: Annotated[Optional[str], typer.Option("--spool", metavar="DIR", help="Copy every input that could not be pushed here, for a retry.")] = None,
    retries: Annotated[int, typer.Option("--retries", metavar="N", help="Retries after a network error, 429 or 5xx (exponential backoff, Retry-After honoured).")] = default(Connection, "retries"),
    seed: Annotated[bool, typer.Option("--seed", help="First create the Patient/ImagingStudy/ServiceRequest each report refers to (test and demo servers).")] = False,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Seconds one request may take, from sending to the last byte of the answer (each retry has its own).")] = default(Connection, "timeout"),
    connect_timeout: Annotated[float, typer.Option("--connect-timeout", metavar="SECONDS", help="Seconds to wait for a connection.")] = default(Connection, "connect_timeout"),
    outcome: Outcome = None,
    include: Include = [],
    *,
    shared: dict[str, Any],
) -> None:
    """Convert and post one transaction Bundle per SR to a FHIR server (idempotent).

    The conversion options are those of `convert`; `-j` converts ahead in processes while the
    reports are posted one at a time, in input order.
    """
    from ..batch import checked_processed, run_all
    from ..delivery.client import DeliveryError, version_mismatch
    from ..delivery.push import PushRun

    if retries < 0:
        raise typer.BadParameter("--retries must be 0 or more")
    if timeout <= 0 or connect_timeout <= 0:
        raise typer.BadParameter("--timeout and --connect-timeout must be more than 0 seconds")
    check_url(shared["fhir_url"])
    cs = conversion_options(shared)
    conn = Connection(**{o.name: shared[o.name] for o in CONNECTION}, retries=retries, seed=seed, timeout=timeout, connect_timeout=connect_timeout)
    files, stems, skipped = batch_inputs(inputs, include)
    many = len(files) > 1 or any(Path(i).is_dir() for i in inputs)
    spool_dir = Path(spool) if spool else None

    def write_outcome(r: FileResult, stem: str) -> None:
        if outcome is not None:
            oo = r.diagnostics.operation_outcome(r.source, str(r.error) if r.error is not None else None)
            target = outcome_path(outcome, stem, many)
            write_output(r, r.source, target, dumps(oo, pretty=True) + "\n", cs.verbose, cs.quiet, what="OperationOutcome")

    work = functools.partial(checked_processed, options=cs.options, limits=cs.limits, checks=cs.checks, fhir_version=cs.fhir_version)
    done = 0
    try:
        auth = conn.auth()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    except (DeliveryError, OSError) as exc:
        say(f"error: {exc}", style="bold red")
        raise typer.Exit(Exit.USAGE) from None
    with _terminate_on_sigterm(), conn.client(auth) as client, BatchProgress(len(files), "pushed", cs.quiet) as progress:
        run = PushRun(client, cs.options, missing.value, multiple.value, spool_dir, seed, cs.fhir_version)

        def keep_rest(rest: list[str], why: str) -> None:
            kept, notes = run.keep_rest(rest, why)
            for note in notes:
                say(note)
            where = f", {kept} kept in {spool_dir}" if spool_dir else ""
            say(f"error: {why}: {len(rest)} more file(s) not attempted{where}", style="bold red")

        mismatch = version_mismatch(client.server_fhir_version(), cs.fhir_version)
        if mismatch:
            say(f"error: {mismatch}; nothing sent", style="bold red")
            raise typer.Exit(Exit.USAGE)
        try:
            for i, (f, stem, processed) in enumerate(zip(files, stems, run_all(work, files, cs.jobs))):
                conv = processed.result
                show_diagnostics(conv, cs.verbose, cs.quiet)
                progress.now(f"{Path(f).name}: {sum(len(c.resources) for c in conv.conversions)} resources")

                def told(message: str, f: str = f) -> None:
                    if not cs.quiet:
                        say(f"{f}: {message}")

                converted = conv.error is None
                r, stop = run.push(f, conv, progress=told)
                done = i + 1
                progress.advance(not r.ok)
                for note in r.notes:
                    say(f"{f}: {note}")
                if r.ok:
                    retired = f", {r.retired} earlier set to entered-in-error" if r.retired else ""
                    say(f"{f}: pushed, {r.entries} entries ({r.created} created{retired})")
                elif converted:
                    say(f"error: {r.error}", style="bold red")
                write_outcome(conv, stem)
                if stop and i + 1 < len(files):
                    keep_rest(files[i + 1 :], stop)
                    break
        except Terminated:
            # SIGTERM: the report in flight may or may not have landed; pushing it again is safe.
            keep_rest(files[done:], "terminated (SIGTERM)")
            _push_summary(run.results, run.lost, cs.quiet, skipped)
            raise typer.Exit(Exit.TERMINATED) from None
    _push_summary(run.results, run.lost, cs.quiet, skipped)
    where_explained()
    raise typer.Exit(Exit.MIXED if run.lost else batch_exit_code(run.results))


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
    say_summary(results, quiet, verb="pushed", skipped=skipped)
    if lost:
        say(f"error: {len(lost)} input(s) neither delivered nor kept (the spool could not take them):", style="bold red")
        for f in lost:
            say(f"  not kept: {f}")
