"""`sr2fhir push`: one transaction Bundle per SR into a FHIR server.

The Patient, ImagingStudy and ServiceRequest the report refers to are looked up by identifier
first; when one is missing or ambiguous the policy decides (fail with a clear message, or fall
back to a logical reference / the first match). Every entry is a conditional create, so a push
that is repeated (or retried after an interruption) creates nothing twice.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from ..batch import FileResult, convert_path
from ..fhir import bundle as fhir_bundle
from ..mapping.context import Options
from ..reader import Limits
from .client import DeliveryError, FhirClient

PRE_EXISTING = ("Patient", "ImagingStudy", "ServiceRequest")
Missing = Literal["fail", "logical"]
Multiple = Literal["fail", "first"]


@dataclass(slots=True)
class PushResult:
    source: str
    conversion: FileResult
    error: str | None = None
    entries: int = 0
    created: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.conversion.error is None


def _pre_existing_refs(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Conditional references to Patient / ImagingStudy / ServiceRequest, by URL (shared dicts)."""
    out: dict[str, list[dict[str, Any]]] = {}
    stack: list[Any] = list(resources)
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            ref = n.get("reference")
            if isinstance(ref, str) and ref.split("?")[0] in PRE_EXISTING and "?" in ref:
                out.setdefault(ref, []).append(n)
            stack.extend(v for v in n.values() if isinstance(v, (dict, list)))
        elif isinstance(n, list):
            stack.extend(n)
    return out


def resolve_references(client: FhirClient, resources: list[dict[str, Any]], missing: Missing, multiple: Multiple) -> list[str]:
    """Check each pre-existing target on the server and apply the policies; returns notes."""
    notes = []
    for url, refs in _pre_existing_refs(resources).items():
        rtype, query = url.split("?", 1)
        token = unquote(query.split("=", 1)[1])
        found = client.search(rtype, identifier=token, _elements="id")
        system = token.split("|")[0] if "|" in token else "(no system)"
        what = f"{rtype} with identifier system {system}"  # never the Patient ID itself
        if not found:
            if missing == "fail":
                raise DeliveryError(f"the {what} that the report refers to is not on the server (use --missing logical to push anyway)")
            for r in refs:
                r.pop("reference", None)
            notes.append(f"{what} not found: logical reference used")
        elif len(found) > 1:
            if multiple == "fail":
                raise DeliveryError(f"{len(found)} {rtype} resources match the report's identifier ({what}); use --multiple first to take the first")
            for r in refs:
                r["reference"] = f"{rtype}/{found[0]['id']}"
            notes.append(f"{len(found)} matches for {what}: the first used")
    return notes


def push_path(
    client: FhirClient,
    path: str,
    *,
    options: Options = Options(),
    limits: Limits = Limits(),
    missing: Missing = "fail",
    multiple: Multiple = "fail",
    spool: Path | None = None,
) -> PushResult:
    """Convert one input and post it; on failure keep a copy of the input in `spool`."""
    conv = convert_path(path, options, limits)
    result = PushResult(path, conv)
    if conv.error is not None:
        result.error = str(conv.error)
    else:
        try:
            for c in conv.conversions:
                resources = c.resources.resources()
                result.notes += resolve_references(client, resources, missing, multiple)
                b = fhir_bundle.transaction(c.resources, c.document.sop_instance_uid or c.document.source)
                response = client.transaction(b, fhir_bundle.dumps(b))
                entries = (response or {}).get("entry", [])
                result.entries += len(entries)
                result.created += sum(1 for e in entries if str(e.get("response", {}).get("status", "")).startswith("201"))
        except DeliveryError as exc:
            result.error = f"{path}: {exc}"
    if result.error is not None and spool is not None and path != "-" and Path(path).is_file():
        spool.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, spool / Path(path).name)
        result.notes.append(f"kept for retry in {spool}")
    return result
