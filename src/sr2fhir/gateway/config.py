"""The gateway's settings in one module (pynetdicom's ``_config.py`` model): what ``sr2fhir serve``
builds from its options, and the one declaration of every default its options show (cli/serve.py
reads them off these dataclasses). Light on purpose: nothing here loads the
gateway's network stack, so that ``sr2fhir --help`` stays quick."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..dicom.limits import Limits
from ..settings import Checks, Options
from .peers import Peers

if TYPE_CHECKING:
    from ..delivery.connection import Connection
    from ..delivery.push import Missing, Multiple
    from .audit import Target
    from .follow import Access
    from .tls import Tls


@dataclass(frozen=True, slots=True)
class Backoff:
    """Per-report retries (`--max-attempts`, `--retry-delay`, `--max-delay`) and the pause while
    the server is down (doubling from `retry_delay`, at most `max_pause`)."""

    max_attempts: int = 10
    retry_delay: float = 5.0
    max_delay: float = 600.0
    max_pause: float = 30.0
    request_retries: int = 2
    """Immediate retries of one FHIR request (network error, 429, 5xx) before the report waits its
    turn again (`--retries`): fewer than `push`'s, as the queue tries the report again later."""

    def delay(self, attempts: int) -> float:
        return min(self.retry_delay * 2.0 ** max(0, attempts - 1), self.max_delay) * random.uniform(0.9, 1.1)


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """What one STOW-RS body may be (`--max-stow-mb`, `--stow-timeout`): its size, the longest
    silence between two reads, and the longest it may take in all."""

    max_bytes: int = 512 << 20
    idle: float = 30.0
    total: float = 600.0


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the gateway converts and pushes each report: `convert`'s and `push`'s options (named
    apart from mapping.report.Conversion, a converted report)."""

    options: Options = field(default_factory=Options)
    limits: Limits = field(default_factory=Limits)
    checks: Checks = field(default_factory=Checks)
    missing: Missing = "fail"
    multiple: Multiple = "fail"
    seed: bool = False
    fhir_version: str = "R5"


@dataclass(frozen=True)
class Settings:
    """Everything ``serve`` needs; ``sr2fhir serve``'s options build one (docs/gateway.md)."""

    connection: Connection
    conversion: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    backoff: Backoff = field(default_factory=Backoff)
    state: Path = Path("sr2fhir-state")
    bind: str = "127.0.0.1"
    dicom_port: int = 11112
    ae_title: str = "SR2FHIR"
    peers: Peers = field(default_factory=Peers)
    http_port: int = 11180
    """Not 8080, which most machines' web tools take; beside the DICOM port (issue 27.9)."""
    stow_token: str | None = None
    stow_limits: BodyLimits = field(default_factory=BodyLimits)
    tls: Tls | None = None
    protect_operations: bool = False
    """`/metrics` and `/readyz` need the STOW-RS bearer token too."""
    audit: Target | None = None
    min_free: int = 1 << 30
    follow_orthanc: str | None = None
    archive: Access | None = None
    """How to reach the archives followed; None: no credentials, follow.Access's defaults."""
    follow_dicomweb: str | None = None
    follow_interval: float = 5.0
    sweep_interval: float = 600.0
    sweep_days: int = 0
    keep_delivered_days: float = 7.0

