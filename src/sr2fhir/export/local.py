"""`--engine local`: the export in this machine's processes (batch.run_all), in input order."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

from ..batch import run_all
from ..dicom.limits import Limits
from ..diagnostics import Diagnostics
from ..errors import ConversionError
from ..fhir.bundle import dumps
from ..settings import Checks, Options
from .output import Export
from .work import Piece, export_one


def _killed(path: str, err: ConversionError) -> Piece:
    piece = Piece(path, status="failed")
    piece.tables["failures"].append({"source": path, "sop_instance_uid": None, "code": err.code, "reason": str(err)})
    piece.outcome = dumps(Diagnostics().operation_outcome(path, str(err)))
    return piece


def run(files: list[str], outdir: str | Path, formats: tuple[str, ...], options: Options, limits: Limits, checks: Checks,
        jobs: int, request: str, progress: Callable[[Piece], Any] = lambda p: None, fhir_version: str = "R5") -> dict[str, Any]:
    """Export `files` into `outdir` (docs/export.md); the local and Spark engines write the same.

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
    progress : callable, optional
        Called with each input's piece (its rows, diagnostics and status) as it is added.
    fhir_version : str, optional
        "R5" (the default) or "R4": the NDJSON's FHIR version; the tables are the same.

    Returns
    -------
    dict
        The manifest (Bulk Data ``$export`` style), also written as ``manifest.json``.
    """
    out = Export(outdir, formats, request)
    work = functools.partial(export_one, options=options, limits=limits, checks=checks, fhir_version=fhir_version)
    for piece in run_all(work, files, jobs, _killed):
        out.add(piece)
        progress(piece)
    return out.close()
