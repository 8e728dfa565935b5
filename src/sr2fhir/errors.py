"""Failures and exit codes: one table for the whole package (README "Exit codes", docs/diagnostics.md)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """The process exit codes of the command line."""

    OK = 0
    MIXED = 1
    """Failures of different kinds, an internal error, an output not written, a delivery failure."""
    USAGE = 2
    STRICT = 3
    """--strict and a warning."""
    INVALID_OUTPUT = 4
    """--validate found errors in the output."""
    NOT_A_FILE = 10
    NOT_DICOM = 11
    TRUNCATED = 12
    NOT_SR = 13
    NOT_TID1500 = 14
    LIMIT = 15
    TERMINATED = 143
    """push stopped by SIGTERM (128 + 15, as a shell reports it)."""


FAILURES: dict[str, Exit] = {
    "not-found": Exit.NOT_A_FILE,
    "not-dicom": Exit.NOT_DICOM,
    "truncated": Exit.TRUNCATED,
    "not-sr": Exit.NOT_SR,
    "not-tid1500": Exit.NOT_TID1500,
    "too-deep": Exit.LIMIT,
    "too-many": Exit.LIMIT,
    "too-large": Exit.LIMIT,
    "strict": Exit.STRICT,
    "invalid-output": Exit.INVALID_OUTPUT,
    "several-documents": Exit.USAGE,
    "out-of-memory": Exit.MIXED,
    "exception": Exit.MIXED,
    "worker-killed": Exit.MIXED,
    "output": Exit.MIXED,
    "delivery": Exit.MIXED,
    "not-attempted": Exit.MIXED,
    "processing": Exit.MIXED,
}
"""Failure code (ConversionError.code, docs/diagnostics.md) -> exit code."""


class Sr2fhirError(Exception):
    """The root of every error sr2fhir raises on purpose (bad input, a refusing server, an
    archive that cannot be read); its message is safe to show: no patient data."""


class ConversionError(Sr2fhirError):
    """A report that cannot be converted (or written, or delivered); the message is safe to show."""

    def __init__(self, message: str, *, code: str = "processing", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = int(exit_code if exit_code is not None else FAILURES[code])
