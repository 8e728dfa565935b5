"""The `sr2fhir` command line (issue 26, item 4): one module per command, over one declaration
of the shared options (`options.py`), the shared output helpers (`output.py`) and the Typer
`app` (`app.py`). Importing this package registers every command; nothing below imports it back.

Exit codes: errors.Exit (README "Exit codes"); failure codes: errors.FAILURES (docs/diagnostics.md).
"""

from __future__ import annotations

from . import convert, dump, explain, export, push, serve, validate  # noqa: F401  (each registers its commands on app)
from .app import app, main

__all__ = ["app", "main"]
