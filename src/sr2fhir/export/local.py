"""`--engine local`: the export in this machine's processes (batch.run_all), in input order."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

from ..batch import Checks, run_all
from ..dicom.limits import Limits
from ..diagnostics import Diagnostics
from ..errors import ConversionError
from ..fhir.bundle import dumps
from ..mapping.context import Options
from .output import Export
from .work import Piece, export_one


def _killed(path: str, err: ConversionError) -> Piece:
    piece = Piece(path, status="failed")
    piece.tables["failures"].append({"source": path, "sop_instance_uid": None, "code": err.code, "reason": str(err)})
    piece.outcome = dumps(Diagnostics().operation_outcome(path, str(err)))
    return piece


def run(files: list[str], outdir: str | Path, formats: tuple[str, ...], options: Options, limits: Limits, checks: Checks,
        jobs: int, request: str, progress: Callable[[Piece], Any] = lambda p: None) -> dict[str, Any]:
    """Export `files` into `outdir`; return the manifest."""
    out = Export(outdir, formats, request)
    work = functools.partial(export_one, options=options, limits=limits, checks=checks)
    for piece in run_all(work, files, jobs, _killed):
        out.add(piece)
        progress(piece)
    return out.close()
