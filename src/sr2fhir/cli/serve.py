"""The gateway's commands: `sr2fhir serve` and `sr2fhir queue list|show|retry|purge`
(registered on cli.app.app; docs/gateway.md)."""

from __future__ import annotations

import datetime as dt
import json
import sys
import tomllib
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..delivery.connection import Connection
from ..gateway.config import Backoff, BodyLimits, DeliveryPolicy, Settings
from ..gateway.peers import Peers
from .app import app
from .options import CONNECTION, CONVERSION, with_options, check_url, conversion_options, default, MissingPolicy, MultiplePolicy
from .output import say
from ..errors import Exit


def _load_config(ctx: typer.Context, value: Optional[str]) -> Optional[str]:
    """`--config FILE`: a TOML file of the command's options (names as on the command line, with
    or without the dashes); options given on the command line win."""
    if not value:
        return value
    try:
        with open(value, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise typer.BadParameter(f"{value}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise typer.BadParameter(f"{value}: not valid TOML ({exc})") from None
    names = {p.name for p in ctx.command.params if p.name and p.name != "config"}
    defaults: dict[str, Any] = {}
    for key, v in data.items():
        name = key.lstrip("-").replace("-", "_")
        if name not in names:
            raise typer.BadParameter(f"{value}: unknown setting {key!r}")
        defaults[name] = v
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def _stow_token(env: str | None, file: str | None) -> str | None:
    """The bearer token STOW-RS senders must give, read as push reads its own (never from the command line)."""
    from ..delivery.client import DeliveryError, bearer_from

    if env and file:
        raise typer.BadParameter("give the STOW-RS token by environment variable or by file, not both")
    if not (env or file):
        return None
    try:
        return bearer_from(env, file).token
    except DeliveryError as exc:
        raise typer.BadParameter(f"the STOW-RS token: {exc}") from None
    except OSError as exc:
        raise typer.BadParameter(f"the STOW-RS token: {file} cannot be read ({exc.strerror})") from None


class VerifyClient(str, Enum):
    none = "none"
    optional = "optional"
    required = "required"


def _archive_access(token_env: str | None, token_file: str | None, basic_user: str | None, ca_bundle: str | None, timeout: float, max_bytes: int) -> Any:
    """The archive's credentials, read as push reads the FHIR server's (never from the command line)."""
    from ..delivery.client import BasicAuthFromEnv, DeliveryError, bearer_from
    from ..gateway.follow import Access

    if sum(map(bool, (token_env or token_file, basic_user))) > 1 or (token_env and token_file):
        raise typer.BadParameter("give the archive one credential: --archive-token-env, --archive-token-file or --archive-basic-user")
    if ca_bundle and not Path(ca_bundle).is_file():
        raise typer.BadParameter(f"--archive-ca-bundle {ca_bundle}: no such file")
    try:
        auth = bearer_from(token_env, token_file) if token_env or token_file else BasicAuthFromEnv(basic_user, "SR2FHIR_ARCHIVE_PASSWORD") if basic_user else None
    except DeliveryError as exc:
        raise typer.BadParameter(f"the archive's credentials: {exc}") from None
    except OSError as exc:
        raise typer.BadParameter(f"the archive's token: {token_file} cannot be read ({exc.strerror})") from None
    return Access(auth=auth, verify=ca_bundle or True, timeout=timeout, max_bytes=max_bytes)


@app.command()
@with_options(CONNECTION, CONVERSION, without=("verbose", "quiet", "jobs"))
def serve(
    config: Annotated[Optional[str], typer.Option("--config", metavar="FILE", is_eager=True, callback=_load_config, help="A TOML file of these options (names as here, e.g. dicom-port = 104); the command line wins.")] = None,
    state: Annotated[str, typer.Option("--state", metavar="DIR", help="The queue, the received objects and the cursors.")] = str(default(Settings, "state")),
    bind: Annotated[str, typer.Option("--bind", metavar="ADDRESS", help="The address to listen on (DICOM and HTTP).")] = default(Settings, "bind"),
    dicom_port: Annotated[int, typer.Option("--dicom-port", metavar="PORT", help="DICOM (C-STORE, C-ECHO) port.")] = default(Settings, "dicom_port"),
    ae_title: Annotated[str, typer.Option("--ae-title", metavar="AE", help="The gateway's AE title (called AE).")] = default(Settings, "ae_title"),
    allowed_ae: Annotated[list[str], typer.Option("--allowed-ae", metavar="AE[@HOST]", help="A calling AE title that may associate, optionally only from HOST (an address or a name resolved at start); repeatable; none given: any.")] = [],
    max_associations: Annotated[int, typer.Option("--max-associations", metavar="N", help="DICOM associations at once, from all peers.")] = default(Peers, "maximum"),
    max_associations_per_peer: Annotated[int, typer.Option("--max-associations-per-peer", metavar="N", help="DICOM associations at once from one network address; more are rejected (transient, local limit exceeded).")] = default(Peers, "per_peer"),
    idle_timeout: Annotated[float, typer.Option("--idle-timeout", metavar="SECONDS", help="Abort a DICOM association that stores nothing for this long (C-ECHO does not count), and close a connection that stalls this long inside a PDU or its TLS handshake.")] = default(Peers, "idle"),
    max_object_mb: Annotated[int, typer.Option("--max-object-mb", metavar="MB", help="The largest object C-STORE may send (held in memory as it arrives); a larger one ends its association as soon as it is declared.")] = default(Peers, "max_object") >> 20,
    http_port: Annotated[int, typer.Option("--http-port", metavar="PORT", help="HTTP port: STOW-RS (POST /studies), /healthz, /readyz, /metrics.")] = default(Settings, "http_port"),
    stow_token_env: Annotated[Optional[str], typer.Option("--stow-token-env", metavar="VAR", help="Environment variable holding the bearer token STOW-RS senders must give.")] = None,
    stow_token_file: Annotated[Optional[str], typer.Option("--stow-token-file", metavar="FILE", help="File holding the bearer token STOW-RS senders must give.")] = None,
    tls_cert: Annotated[Optional[str], typer.Option("--tls-cert", metavar="FILE", help="PEM certificate (chain): DICOM TLS (PS3.15 Annex B) and HTTPS on both ports.")] = None,
    tls_key: Annotated[Optional[str], typer.Option("--tls-key", metavar="FILE", help="PEM private key of --tls-cert.")] = None,
    tls_ca: Annotated[Optional[str], typer.Option("--tls-ca", metavar="FILE", help="PEM CA bundle that signs the peers' client certificates.")] = None,
    tls_verify_client: Annotated[VerifyClient, typer.Option("--tls-verify-client", help="Ask DICOM and HTTPS peers for a certificate signed by --tls-ca: none, optional or required.")] = VerifyClient.none,
    protect_operations: Annotated[bool, typer.Option("--protect-operations", help="/metrics and /readyz need the STOW-RS bearer token too (/healthz stays open).")] = False,
    audit_syslog: Annotated[Optional[str], typer.Option("--audit-syslog", metavar="URL", help="Send DICOM audit messages (PS3.15 A.5, IHE ATNA) as RFC 5424 syslog to udp://, tcp:// or tls://HOST:PORT.")] = None,
    audit_ca: Annotated[Optional[str], typer.Option("--audit-ca", metavar="FILE", help="PEM CA bundle that signs a tls:// audit repository's certificate (else the system's).")] = None,
    audit_site: Annotated[Optional[str], typer.Option("--audit-site", metavar="ID", help="AuditEnterpriseSiteID in every audit message.")] = None,
    max_stow_mb: Annotated[int, typer.Option("--max-stow-mb", metavar="MB", help="The largest STOW-RS request body; larger ones are refused (413) before they are read.")] = default(BodyLimits, "max_bytes") >> 20,
    stow_timeout: Annotated[float, typer.Option("--stow-timeout", metavar="SECONDS", help="A STOW-RS body that sends nothing for this long is refused (408); twenty times this is the most one body may take.")] = default(BodyLimits, "idle"),
    min_free_mb: Annotated[int, typer.Option("--min-free-mb", metavar="MB", help="Refuse intake (C-STORE 0xA700, STOW-RS 503) when less than this is free on the state folder's disk.")] = default(Settings, "min_free") >> 20,
    follow_orthanc: Annotated[Optional[str], typer.Option("--follow-orthanc", metavar="URL", help="Follow an Orthanc server's change log (its REST base URL); swept via its /dicom-web.")] = None,
    follow_dicomweb: Annotated[Optional[str], typer.Option("--follow-dicomweb", metavar="URL", help="Poll a DICOMweb archive (QIDO-RS, WADO-RS) for SR instances.")] = None,
    archive_token_env: Annotated[Optional[str], typer.Option("--archive-token-env", metavar="VAR", help="Environment variable holding the bearer token for the archive followed.")] = None,
    archive_token_file: Annotated[Optional[str], typer.Option("--archive-token-file", metavar="FILE", help="File holding the bearer token for the archive followed.")] = None,
    archive_basic_user: Annotated[Optional[str], typer.Option("--archive-basic-user", metavar="USER", help="HTTP basic user for the archive followed; the password comes from SR2FHIR_ARCHIVE_PASSWORD.")] = None,
    archive_ca_bundle: Annotated[Optional[str], typer.Option("--archive-ca-bundle", metavar="FILE", help="PEM CA bundle that signs the archive's HTTPS certificate.")] = None,
    follow_interval: Annotated[float, typer.Option("--follow-interval", metavar="SECONDS", help="How often to poll the change log (or the DICOMweb archive).")] = default(Settings, "follow_interval"),
    sweep_interval: Annotated[float, typer.Option("--sweep-interval", metavar="SECONDS", help="How often to sweep (QIDO-RS) beside Orthanc's change log, for what it dropped.")] = default(Settings, "sweep_interval"),
    sweep_days: Annotated[int, typer.Option("--sweep-days", metavar="DAYS", help="Sweep and poll only studies of the last DAYS days (Study Date); 0: all.")] = default(Settings, "sweep_days"),
    keep_delivered_days: Annotated[float, typer.Option("--keep-delivered-days", metavar="DAYS", help="Keep delivered reports (for `queue retry` after a server's data loss) this long, then delete them.")] = default(Settings, "keep_delivered_days"),
    max_attempts: Annotated[int, typer.Option("--max-attempts", metavar="N", help="Delivery attempts per report (server errors, missing Patient...) before the dead letter.")] = default(Backoff, "max_attempts"),
    retry_delay: Annotated[float, typer.Option("--retry-delay", metavar="SECONDS", help="First delay before a report is tried again; doubles each attempt.")] = default(Backoff, "retry_delay"),
    max_delay: Annotated[float, typer.Option("--max-delay", metavar="SECONDS", help="Longest delay between attempts.")] = default(Backoff, "max_delay"),
    missing: Annotated[MissingPolicy, typer.Option("--missing", help="When the Patient/ImagingStudy/ServiceRequest is not on the server: fail (retry later, then the dead letter), or push with a logical reference.")] = MissingPolicy.fail,
    multiple: Annotated[MultiplePolicy, typer.Option("--multiple", help="When several match: fail, or take the first.")] = MultiplePolicy.fail,
    retries: Annotated[int, typer.Option("--retries", metavar="N", help="Immediate retries of one request (network error, 429, 5xx) before the report waits its turn again.")] = default(Backoff, "request_retries"),
    seed: Annotated[bool, typer.Option("--seed", help="First create the Patient/ImagingStudy/ServiceRequest each report refers to (test and demo servers).")] = False,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Seconds one FHIR request may take.")] = default(Connection, "timeout"),
    connect_timeout: Annotated[float, typer.Option("--connect-timeout", metavar="SECONDS", help="Seconds to wait for a connection to the FHIR server.")] = default(Connection, "connect_timeout"),
    *,
    shared: dict[str, Any],
) -> None:
    """Run the gateway: receive SRs by DICOM C-STORE and STOW-RS (and from archives it follows),
    keep them in a durable queue, convert them and deliver them to the FHIR server.

    One JSON log line per report on stderr; SIGTERM stops intake, finishes the report in hand and exits 0.
    """
    from ..delivery.client import DeliveryError
    from ..gateway.logs import configure
    from ..gateway.service import GatewayFailed, serve as run
    from ..gateway.peers import split_entry
    from ..gateway.tls import Tls

    check_url(shared["fhir_url"])
    for url, opt in ((follow_orthanc, "--follow-orthanc"), (follow_dicomweb, "--follow-dicomweb")):
        if url and not url.startswith(("http://", "https://")):
            raise typer.BadParameter(f"{opt} {url!r}: expected an http(s) base URL")
    if bool(tls_cert) != bool(tls_key) or ((tls_ca or tls_verify_client != VerifyClient.none) and not tls_cert):
        raise typer.BadParameter("TLS needs --tls-cert and --tls-key together; --tls-ca and --tls-verify-client go with them")
    if protect_operations and not (stow_token_env or stow_token_file):
        raise typer.BadParameter("--protect-operations needs the STOW-RS token (--stow-token-env or --stow-token-file)")
    if max_stow_mb < 1 or stow_timeout <= 0:
        raise typer.BadParameter("--max-stow-mb must be at least 1 and --stow-timeout more than 0")
    if max_attempts < 1 or retries < 0 or retry_delay <= 0 or max_delay < retry_delay or min_free_mb < 0 or follow_interval <= 0 or keep_delivered_days < 0:
        raise typer.BadParameter("--max-attempts must be at least 1, --retries 0 or more, --retry-delay more than 0 and at most --max-delay, --min-free-mb and --keep-delivered-days 0 or more, --follow-interval more than 0")
    if not 1 <= len(ae_title) <= 16 or any(not 1 <= len(split_entry(a)[0]) <= 16 for a in allowed_ae):
        raise typer.BadParameter("AE titles have 1 to 16 characters")
    if max_associations < 1 or max_associations_per_peer < 1 or idle_timeout <= 0 or max_object_mb < 1:
        raise typer.BadParameter("--max-associations, --max-associations-per-peer and --max-object-mb must be at least 1, --idle-timeout more than 0")
    target = None
    if audit_syslog:
        from ..gateway.audit import Target

        target = Target(audit_syslog, audit_ca, audit_site)
        try:
            target.parts
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if audit_ca and not Path(audit_ca).is_file():
            raise typer.BadParameter(f"--audit-ca {audit_ca}: no such file")
    archive = _archive_access(archive_token_env, archive_token_file, archive_basic_user, archive_ca_bundle, timeout, max_stow_mb << 20)
    cs = conversion_options(shared, verbose=False, quiet=True, jobs=1)
    conn = Connection(**{o.name: shared[o.name] for o in CONNECTION}, retries=retries, seed=seed, timeout=timeout, connect_timeout=connect_timeout)
    settings = Settings(
        connection=conn,
        conversion=DeliveryPolicy(cs.options, cs.limits, cs.checks, missing.value, multiple.value, seed, cs.fhir_version),
        backoff=Backoff(max_attempts=max_attempts, retry_delay=retry_delay, max_delay=max_delay),
        state=Path(state), bind=bind, dicom_port=dicom_port, ae_title=ae_title, http_port=http_port,
        peers=Peers(tuple(allowed_ae), per_peer=max_associations_per_peer, maximum=max_associations, idle=idle_timeout,
                    max_object=max_object_mb << 20),
        stow_token=_stow_token(stow_token_env, stow_token_file), min_free=min_free_mb << 20,
        stow_limits=BodyLimits(max_bytes=max_stow_mb << 20, idle=stow_timeout, total=20 * stow_timeout),
        tls=Tls(tls_cert, tls_key, tls_ca, tls_verify_client.value) if tls_cert and tls_key else None, protect_operations=protect_operations,
        audit=target,
        follow_orthanc=follow_orthanc, follow_dicomweb=follow_dicomweb, archive=archive, follow_interval=follow_interval,
        sweep_interval=sweep_interval, sweep_days=sweep_days, keep_delivered_days=keep_delivered_days,
    )
    configure()
    try:
        run(settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    except (DeliveryError, OSError) as exc:
        say(f"error: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}", style="bold red")
        raise typer.Exit(Exit.USAGE) from None
    except GatewayFailed as exc:
        say(f"error: {exc}", style="bold red")
        raise typer.Exit(Exit.MIXED) from None


queue_app = typer.Typer(help="See and replay the gateway's queue (the state folder of `sr2fhir serve`).", no_args_is_help=True)
app.add_typer(queue_app, name="queue")


class Status(str, Enum):
    received = "received"
    converted = "converted"
    delivered = "delivered"
    dead = "dead"


class Finished(str, Enum):
    """The states `queue purge` takes (a pending report is never purged)."""

    delivered = "delivered"
    dead = "dead"


StateDir = Annotated[str, typer.Option("--state", metavar="DIR", help="The gateway's state folder.")]
Json = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]


def _open(state: str) -> Any:
    from ..gateway.queue import Queue

    if not (Path(state) / "queue.sqlite").is_file():
        say(f"error: {state} is not a gateway state folder (no queue.sqlite)", style="bold red")
        raise typer.Exit(Exit.USAGE)
    return Queue(Path(state))


def _shown(value: object) -> str:
    """A queue value as the terminal may show it: control characters (which only an older state
    folder's keys, or a peer's words in a reason, can hold) escaped, never sent raw."""
    text = str(value)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _when(t: float | None) -> str:
    return "" if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@queue_app.command("list")
def queue_list(
    state: StateDir = "sr2fhir-state",
    status: Annotated[Optional[Status], typer.Option("--status", help="Only reports in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="List at most N reports.")] = 1000,
    as_json: Json = False,
) -> None:
    """The reports in the queue, oldest first, with the counts by state."""
    q = _open(state)
    reports = q.reports(status.value if status else None, limit)
    if as_json:
        sys.stdout.write(json.dumps({"counts": q.counts(), "reports": [r.as_json() for r in reports]}, indent=1) + "\n")
        return
    if reports:
        sys.stdout.write(f"{'STATE':<9}  {'RECEIVED (UTC)':<19}  {'TRIES':>5}  {'SOURCE':<16}  SOP INSTANCE UID  REASON\n")
    for r in reports:
        # The reason of a failed conversion starts with the stored object's path: the UID column says which.
        why = (r.reason or "").removeprefix(f"{q.path(r.sop_uid)}: ")
        reason = f"  {_shown(why)}" if why and r.state != "delivered" else ""
        sys.stdout.write(f"{r.state:<9}  {_when(r.received_at):<19}  {r.attempts:>5}  {_shown(r.source):<16}  {_shown(r.sop_uid)}{reason}\n")
    sys.stdout.write("counts: " + ", ".join(f"{k} {v}" for k, v in q.counts().items()) + "\n")


@queue_app.command("show")
def queue_show(
    uid: Annotated[str, typer.Argument(metavar="SOP_INSTANCE_UID")],
    state: StateDir = "sr2fhir-state",
    as_json: Json = False,
) -> None:
    """One report: where it is, its attempts and the last reason."""
    q = _open(state)
    r = q.get(uid)
    if r is None:
        say(f"error: {_shown(uid)} is not in the queue", style="bold red")
        raise typer.Exit(Exit.USAGE)
    data = {**r.as_json(), "object": str(q.path(uid))}
    if as_json:
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
        return
    for k, v in data.items():
        sys.stdout.write(f"{k}: {_when(v) if k.endswith('_at') and v is not None else _shown(v)}\n")


@queue_app.command("retry")
def queue_retry(
    uids: Annotated[Optional[list[str]], typer.Argument(metavar="[SOP_INSTANCE_UID]...", help="Reports to deliver again; none: every dead one.")] = None,
    state: StateDir = "sr2fhir-state",
) -> None:
    """Queue reports again (dead-lettered ones, after the cause is fixed); a running gateway picks them up."""
    q = _open(state)
    unknown = [u for u in uids or [] if not q.known(u)]
    if unknown:
        say(f"error: not in the queue: {', '.join(_shown(u) for u in unknown)}; nothing was queued again", style="bold red")
        raise typer.Exit(Exit.USAGE)
    rows = [r for r in (q.get(u) for u in uids) if r is not None] if uids else q.reports("dead", limit=1 << 30)
    n = q.retry(uids or None, "dead")
    say(f"{n} report(s) queued again")
    _audit(state, False, rows)


@queue_app.command("purge")
def queue_purge(
    status: Annotated[Finished, typer.Option("--status", help="delivered or dead.")],
    older_than_days: Annotated[float, typer.Option("--older-than-days", metavar="DAYS", help="Only reports last changed at least DAYS days ago (0 or more).")] = 0.0,
    state: StateDir = "sr2fhir-state",
) -> None:
    """Forget delivered (or dead) reports and delete their stored objects."""
    if not older_than_days >= 0:  # also refuses NaN
        raise typer.BadParameter(f"--older-than-days {older_than_days:g}: must be 0 or more")
    try:
        gone = _open(state).purged(status.value, older_than_days * 86400)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    say(f"{len(gone)} report(s) purged")
    _audit(state, True, gone)


def _audit(state: str, deleted: bool, rows: list[Any]) -> None:
    """Tell the gateway's audit repository (the one `serve --audit-syslog` recorded in the state folder)."""
    from ..gateway import audit

    target = audit.Target.load(Path(state))
    if target is None or not rows:
        return
    studies = audit.studies_of([(r.study_uid, r.sop_class, r.sop_uid) for r in rows])
    try:
        audit.send_now(target, audit.queue_operation(audit.operator(), deleted, studies))
    except (OSError, ValueError) as exc:
        say(f"error: done, but not audited: the audit repository {target.url} cannot be reached ({exc})", style="bold red")
        raise typer.Exit(Exit.MIXED) from None

