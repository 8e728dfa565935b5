"""`sr2fhir push`: one transaction Bundle per SR into a FHIR server.

The Patient, ImagingStudy and ServiceRequest the report refers to are looked up by identifier
first; when one is missing or ambiguous the policy decides (fail with a clear message, or fall
back to a logical reference / the first match). Every entry is a conditional create, so a push
that is repeated (or retried after an interruption) creates nothing twice.

A corrected report (Predecessor Documents Sequence (0040,A360) names the earlier SR) replaces
what the earlier one produced, in the same transaction (docs/decisions.md D-30): its
Observations and ImagingSelections become conditional updates, so one with the same identity
(Observation UID, Tracking UID...) is updated in place, and the earlier report's Observations
and ImagingSelections that the correction no longer contains (found by `_source`, D-29) are
set to `entered-in-error`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal
from urllib.parse import quote, unquote

from ..batch import FileResult, convert_path
from ..codes import urn_oid
from ..fhir import bundle as fhir_bundle
from ..fhir.references import PRE_EXISTING, dicts, identifier_token
from ..fhir.r4 import status_of, with_status
from ..settings import Options
from ..dicom.limits import Limits
from ..errors import ConversionError
from ..files import replace_file
from .client import LANDED, DeliveryError, FhirClient
from .seed import seed_bundle

CORRECTED_TYPES = {"R5": ("Observation", "ImagingSelection"), "R4": ("Observation", "Basic")}
"""What a corrected report replaces, by output FHIR version (in R4 an ImagingSelection is a Basic,
fhir/r4.py): the report's claims. Devices and BodyStructures describe things that exist whatever
the report says, and are shared by identity (D-30)."""
SOUGHT_BY = {"Patient": "Patient ID (0010,0020)", "ImagingStudy": "Study Instance UID (0020,000D)", "ServiceRequest": "Accession Number (0008,0050)"}
"""What identifies each pre-existing resource (ConceptMap 00, D-1)."""
MISSING_HINT = {
    "ImagingStudy": "create it first, or on a test server use --seed; --missing logical works only on a server that does not validate "
                    "against the IG, which requires a reference URL in partOf",
}
"""What to do when a pre-existing resource is missing, where --missing logical would not work everywhere (D-1)."""
Missing = Literal["fail", "logical"]
Multiple = Literal["fail", "first"]


@dataclass(slots=True)
class PushResult:
    source: str
    conversion: FileResult
    error: str | None = None
    entries: int = 0
    created: int = 0
    retired: int = 0
    unreachable: bool = False
    """The server could not be reached (retries exhausted): later inputs would fare no better."""
    stop: str | None = None
    """Why no later input can succeed either (credentials refused, TLS certificate not trusted)."""
    status: int | None = None
    """The HTTP status of the refusal, when the server gave one."""
    retry_after: float | None = None
    """The server asked to wait this long (Retry-After) before trying again."""
    lost: bool = False
    """Neither delivered nor kept: the spool could not take it (a full disk)."""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.conversion.error is None


class MissingTarget(DeliveryError):
    """A pre-existing resource the report refers to is not on the server, and --missing is fail."""


def _pre_existing_refs(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Conditional references to Patient / ImagingStudy / ServiceRequest, by URL (shared dicts)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for n in dicts(resources):
        ref = n.get("reference")
        if isinstance(ref, str) and "?" in ref and ref.split("?")[0] in PRE_EXISTING:
            out.setdefault(ref, []).append(n)
    return out


def resolve_references(client: FhirClient, resources: list[dict[str, Any]], missing: Missing, multiple: Multiple) -> list[str]:
    """Check each pre-existing target on the server and apply the policies; returns notes."""
    notes = []
    for url, refs in _pre_existing_refs(resources).items():
        rtype, query = url.split("?", 1)
        token = unquote(query.split("=", 1)[1])
        found = client.search(rtype, identifier=token, _elements="id")
        system = token.split("|")[0] if "|" in token else ""
        # Which identifier was sought, and in which system; never the Patient ID itself.
        what = f"{rtype} sought by its {SOUGHT_BY[rtype]}" + (f" in system {system}" if system else " (an identifier without a system)")
        if not found:
            if missing == "fail":
                hint = MISSING_HINT.get(rtype, "use --missing logical to push anyway")
                raise MissingTarget(f"the {what} that the report refers to is not on the server ({hint})")
            for r in refs:
                r.pop("reference", None)
            caveat = ""
            if rtype == "ImagingStudy":
                # partOf[imagingStudyRef] (1..1) is sliced by type on `reference`: a logical
                # reference has none, so a server validating against the IG refuses it (D-1).
                caveat = " (a server that validates against the IG refuses it: partOf[imagingStudyRef] needs a reference URL)"
            notes.append(f"{what} not found: logical reference used{caveat}")
        elif len(found) > 1:
            if multiple == "fail":
                raise DeliveryError(f"{len(found)} {rtype} resources match the report's identifier ({what}); use --multiple first to take the first")
            for r in refs:
                r["reference"] = f"{rtype}/{found[0]['id']}"
            notes.append(f"{len(found)} matches for {what}: the first used")
    return notes


def _identity_tokens(resource: dict[str, Any]) -> set[str]:
    return {identifier_token(i) for i in resource.get("identifier", []) if isinstance(i, dict)}


def _retire(client: FhirClient, resource: dict[str, Any]) -> dict[str, Any]:
    """A transaction entry that sets a server resource to entered-in-error, as it is otherwise."""
    meta = {k: v for k, v in resource.get("meta", {}).items() if k in ("profile", "tag", "security", "source")}
    if "source" in meta:
        meta["source"] = meta["source"].split("#", 1)[0]  # servers append "#<request id>"
    retired = with_status({**resource, "meta": meta}, "entered-in-error")
    url = f"{resource['resourceType']}/{resource['id']}"
    request = {"method": "PUT", "url": url}
    version = resource.get("meta", {}).get("versionId")
    if version:
        # Only the version we read: a change made meanwhile fails the transaction, not lost.
        request["ifMatch"] = f'W/"{version}"'
    return {"fullUrl": client.absolute(url), "resource": retired, "request": request}


def apply_correction(client: FhirClient, bundle: dict[str, Any], predecessors: list[str], fhir_version: str = "R5") -> int:
    """Rewrite a transaction so that it replaces its predecessors' resources; returns how many it retires."""
    types = CORRECTED_TYPES[fhir_version]
    replacing: dict[str, set[str]] = {}
    for e in bundle["entry"]:
        rtype, req = e["resource"]["resourceType"], e["request"]
        if rtype in types and "ifNoneExist" in req:
            # The id is ours, not the server's: a conditional update must not carry it.
            e["resource"] = {k: v for k, v in e["resource"].items() if k != "id"}
            e["request"] = {"method": "PUT", "url": f"{rtype}?{req['ifNoneExist']}"}
            replacing.setdefault(rtype, set()).update(_identity_tokens(e["resource"]))
    retired = 0
    for uid in predecessors:
        for rtype in types:
            for old in client.search(rtype, _source=urn_oid(uid)):
                if status_of(old) == "entered-in-error" or _identity_tokens(old) & replacing.get(rtype, set()):
                    continue
                bundle["entry"].append(_retire(client, old))
                retired += 1
    return retired


def push_path(
    client: FhirClient,
    path: str,
    *,
    options: Options = Options(),
    limits: Limits = Limits(),
    missing: Missing = "fail",
    multiple: Multiple = "fail",
    spool: Path | None = None,
    seed: bool = False,
    conversion: FileResult | None = None,
    progress: Callable[[str], None] | None = None,
    fhir_version: str = "R5",
) -> PushResult:
    """Convert one input (unless `conversion` is given) and post it; on failure keep a copy of
    the input in `spool`.

    `seed` first creates the Patient, ImagingStudy and ServiceRequest it refers to (seed.py).
    `progress` is told when an answer is late, and what is done about it.
    """
    conv = conversion if conversion is not None else convert_path(path, options, limits, fhir_version=fhir_version)
    result = PushResult(path, conv)
    if conv.error is not None:
        result.error = str(conv.error)
    else:
        patient_ids = [c.document.header.patient_id or "" for c in conv.conversions]
        try:
            for c in conv.conversions:
                resources = c.resources.resources()
                if seed:
                    seeding = seed_bundle(c.document, result.notes)
                    if seeding is not None:
                        client.transaction(seeding)
                result.notes += resolve_references(client, resources, missing, multiple)
                predecessors = list(c.document.header.predecessors)
                response = _post(client, c, predecessors, result, fhir_version, progress=progress)
                entries = response.get("entry", [])
                result.entries += len(entries)
                result.created += sum(1 for e in entries if str(e.get("response", {}).get("status", "")).startswith("201"))
        except DeliveryError as exc:
            result.error = f"{path}: {scrub(str(exc), patient_ids)}"
            result.unreachable = exc.retryable
            result.retry_after = exc.retry_after
            result.status = exc.status
            result.stop = scrub(str(exc), patient_ids) if exc.stop else None
    if result.error is not None:
        result.lost = not keep(path, spool, result.notes)
    return result


CONFLICT_STATUSES = frozenset({409, 412})
"""A correction's If-Match names a version that changed since it was read."""


def landed(client: FhirClient, bundle: dict[str, Any], sop_uid: str, fhir_version: str = "R5") -> bool:
    """Whether the server already holds every Observation and ImagingSelection of this report's
    transaction, found by `_source` (D-29). A transaction is atomic, so then it was committed (by an
    attempt whose answer came too late, or by an earlier push) and sending it again would only
    make a slow server slower (issue 27.2)."""
    expected = Counter(e["resource"]["resourceType"] for e in bundle["entry"] if e["resource"]["resourceType"] in CORRECTED_TYPES[fhir_version])
    return bool(expected) and all(client.count(rtype, _source=urn_oid(sop_uid)) >= n for rtype, n in expected.items())


def _post(
    client: FhirClient, c: Any, predecessors: list[str], result: PushResult, fhir_version: str = "R5", tries: int = 3, progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Post one report's transaction; a correction is rebuilt from a fresh read and sent again
    when its If-Match no longer holds (issue 10.14): typically because an earlier attempt
    committed and only its response was lost, so the fresh read finds the predecessor's
    resources already retired and the conditional updates match what that attempt wrote.
    After an answer that did not come in time, the report is looked for before it is sent again."""
    uid = c.document.sop_instance_uid
    for attempt in range(1, tries + 1):
        b = fhir_bundle.transaction(c.resources, uid or c.document.source)
        retired = apply_correction(client, b, predecessors, fhir_version) if predecessors else 0

        def found(b: dict[str, Any] = b) -> bool:
            if progress is not None:
                progress(f"no answer within {client.timeout:g} s: looking for the report on the server before sending it again")
            return landed(client, b, uid, fhir_version)

        try:
            response = client.transaction(b, fhir_bundle.dumps(b), landed=found if uid else None)
        except DeliveryError as exc:
            if predecessors and exc.status in CONFLICT_STATUSES and attempt < tries:
                result.notes.append(f"the correction met a changed version (HTTP {exc.status}): read again and resent")
                continue
            raise
        if response is LANDED:
            result.notes.append("the server had committed it: an answer came too late, and the report was found on the server (not sent again)")
            response = {"entry": [{} for _ in b["entry"]]}
        if predecessors:
            result.retired += retired
            result.notes.append(f"corrects {len(predecessors)} earlier report(s): {retired} earlier resource(s) set to entered-in-error")
        return response
    raise AssertionError("unreachable")


def scrub(message: str, patient_ids: list[str]) -> str:
    """The message without the Patient IDs that a server's OperationOutcome may quote (in match URLs)."""
    for pid in patient_ids:
        if pid.strip():
            for form in {pid, quote(pid, safe=""), quote(pid, safe=":/|.-_")}:
                message = message.replace(form, "[Patient ID]")
    return message


def keep(path: str, spool: Path | None, notes: list[str]) -> bool:
    """Copy an input that was not delivered into the spool folder, for a retry.

    Atomic (a temporary file, fsync'd, renamed), so a full disk never leaves a partial copy that
    looks kept. False, with a note, when the spool cannot take it (issue 10.6); True when it was
    kept, or when there is no spool (the input stays where it is).
    """
    if spool is None or path == "-" or not Path(path).is_file():
        return spool is None
    src = Path(path)
    try:
        spool.mkdir(parents=True, exist_ok=True)
        data = src.read_bytes()
        dest = spool / src.name
        n = 1
        # Same name from another folder: keep both, never overwrite one lost report with another.
        while dest.exists() and dest.read_bytes() != data:
            dest = spool / f"{src.stem}.{n}{src.suffix}"
            n += 1
        replace_file(dest, [data])
    except OSError as exc:
        notes.append(f"NOT KEPT: the spool {spool} cannot take it ({exc.strerror or type(exc).__name__})")
        return False
    notes.append(f"kept for retry as {dest}")
    return True


@dataclass
class PushRun:
    """`sr2fhir push` over many inputs, one at a time in input order: each converted input posted
    (`push_path`), what failed kept in the spool, and, once no later input can succeed (the server
    refuses the credentials, fails TLS, or no longer answers), the rest kept, not attempted. The
    command line words what happens; the decisions are here."""

    client: FhirClient
    options: Options = field(default_factory=Options)
    missing: Missing = "fail"
    multiple: Multiple = "fail"
    spool: Path | None = None
    seed: bool = False
    fhir_version: str = "R5"
    results: list[FileResult] = field(default_factory=list)
    """One per input, in input order (conversions dropped once posted)."""
    lost: list[str] = field(default_factory=list)
    """Inputs neither delivered nor kept (the spool could not take them)."""

    def push(self, path: str, conv: FileResult, progress: Callable[[str], None] | None = None) -> tuple[PushResult, str | None]:
        """Post one converted input; its result and, when the batch must stop after it, why."""
        r = push_path(self.client, path, options=self.options, missing=self.missing, multiple=self.multiple, spool=self.spool,
                      seed=self.seed, conversion=conv, progress=progress, fhir_version=self.fhir_version)
        if not r.ok:
            if conv.error is None:
                conv.error = ConversionError(r.error or f"{path}: not delivered", code="delivery")
            if r.lost:
                self.lost.append(path)
        conv.conversions = []
        self.results.append(conv)
        if r.stop:
            return r, "no later input can succeed"
        # A server that still answers was only too slow for this report: the next may fare better.
        if r.unreachable and not self.client.answers():
            return r, "the server is unreachable"
        return r, None

    def keep_rest(self, rest: list[str], why: str) -> tuple[int, list[str]]:
        """Keep the inputs not attempted (in the spool, if any), each a failed result; how many
        were kept, and a note per input."""
        kept, notes = 0, []
        for path in rest:
            mine: list[str] = []
            if keep(path, self.spool, mine):
                kept += 1
            else:
                self.lost.append(path)
            notes += [f"{path}: {note}" for note in mine]
            self.results.append(FileResult(path, error=ConversionError(f"{path}: not attempted ({why})", code="not-attempted")))
        return kept, notes
