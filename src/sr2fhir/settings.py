"""The settings of a conversion, in one place: the choices the IG leaves open (:class:`Options`,
read by the mapping) and what a command does with a conversion before using it (:class:`Checks`:
``--strict``, ``--validate``). The bounds against hostile input are the reader's own
(dicom/limits.py, ``Limits``). Light to import: the command line reads its defaults here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Options:
    """Choices a user can make where the IG leaves them open (``sr2fhir.Options``; docs/decisions.md).

    Attributes
    ----------
    default_timezone : str
        A UTC offset (``+01:00``) for ``issued`` when the SR gives none (D-5).
    coding_schemes : dict of str to str
        Extra Coding Scheme Designator -> FHIR system URI (D-17).
    diagnostic_report : bool
        Also emit a DiagnosticReport grouping the top-level Observations (D-24).
    conditional_references : bool
        Conditional references to Patient / ImagingStudy / ServiceRequest, for transactions (D-1).
    """

    default_timezone: str = "+00:00"
    """Zone for `issued` when the SR gives none (D-5)."""
    coding_schemes: dict[str, str] = field(default_factory=dict)
    """Extra Coding Scheme Designator -> system URI (D-17)."""
    diagnostic_report: bool = False
    """Also emit a DiagnosticReport grouping the top-level Observations (D-24)."""
    conditional_references: bool = True
    """Reference Patient / ImagingStudy / ServiceRequest by conditional reference as well as by
    identifier (for transaction Bundles, D-1); False gives logical references only."""


@dataclass(frozen=True, slots=True)
class Checks:
    """What every command that converts does before using a conversion (`--strict`, `--validate`)."""

    strict: bool = False
    validate: bool = False
    ig: str | None = None
    fail_on_ig_defects: bool = False
    debug: bool = False
