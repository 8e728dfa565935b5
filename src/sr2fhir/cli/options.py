"""Every option that more than one command takes, declared once (issue 26, item 4): the
conversion and reporting options, and the FHIR server's connection options; `conversion_options`
checks them (usage errors, exit 2) and makes one ConversionSettings."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Callable, Collection, Mapping, Optional
from urllib.parse import urlsplit

import typer

from ..dicom.limits import Limits
from ..settings import Checks, Options
from .output import load_ig_profiles


def default(cls: type, name: str) -> Any:
    """The default of field `name` of dataclass `cls` (Options, Limits, Connection, the gateway's
    config): what an option shows and uses when not given, declared once, on the dataclass."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    raise KeyError(f"{cls.__name__}.{name} has no default")


FailOnIgDefects = Annotated[bool, typer.Option(
    "--fail-on-ig-defects",
    help="Let findings that known defects of the IG itself cause (docs/conformance.md) fail --strict and --validate too; by default they are warnings.",
)]


# --- the conversion and reporting options, one definition for every command that converts ---
Timezone = Annotated[str, typer.Option("--timezone", metavar="±HH:MM", help="Zone for times when the SR gives none (Timezone Offset From UTC absent).")]


CodingScheme = Annotated[list[str], typer.Option("--coding-scheme", metavar="DESIGNATOR=URI", help="Map a Coding Scheme Designator to a FHIR system URI (repeatable).")]


DiagnosticReport = Annotated[bool, typer.Option("--diagnostic-report", help="Also emit a DiagnosticReport grouping the Observations.")]


Outcome = Annotated[Optional[str], typer.Option("--outcome", metavar="FILE|DIR", help="Write the diagnostics as a FHIR OperationOutcome: a file, or a directory (one per input).")]


Strict = Annotated[bool, typer.Option("--strict", help="Fail (exit 3, nothing written or sent) when any warning or error is reported (known IG defects aside).")]


MaxDepth = Annotated[int, typer.Option("--max-depth", metavar="N", help="Deepest content tree accepted.")]


MaxItems = Annotated[int, typer.Option("--max-items", metavar="N", help="Most content items accepted in one report.")]


Verbose = Annotated[bool, typer.Option("-v", "--verbose", help="Also show information diagnostics (items the IG does not map).")]


Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="Show no warnings, only errors and the summary.")]


Include = Annotated[list[str], typer.Option("--include", metavar="GLOB", help="In folders, read only the files whose name or relative path matches GLOB (repeatable), e.g. '*.dcm'. Default: every file; files plainly not DICOM are skipped and counted.", show_default=False)]


Jobs = Annotated[int, typer.Option("-j", "--jobs", metavar="N", help="Convert this many files at once (processes); output and messages keep the input order.")]


Validate = Annotated[bool, typer.Option("--validate", help="Check the output against R5 and the IG's profiles; nothing that fails is written or sent.")]


Ig = Annotated[Optional[str], typer.Option("--ig", metavar="DIR", help="The IG package folder for --validate (default: ~/.fhir/packages/hl7.fhir.uv.dicom-sr#1.0.0 if present, else the copy sr2fhir ships).")]


Debug = Annotated[bool, typer.Option("--debug", help="Show a traceback for internal errors.")]


class FhirVersion(str, Enum):
    R5 = "R5"
    R4 = "R4"


FhirVersionOpt = Annotated[FhirVersion, typer.Option(
    "--fhir-version", case_sensitive=False, metavar="R5|R4",
    help="FHIR version of the output: R5 (the IG's) or R4 (down-converted with the HL7 cross-version extensions; docs/r4.md says what R4 loses).",
)]


@dataclass(frozen=True)
class ConversionSettings:
    """The conversion and reporting options as one value, checked once."""

    options: Options
    limits: Limits
    checks: Checks
    verbose: bool
    quiet: bool
    jobs: int
    fhir_version: str = "R5"


FhirUrl = Annotated[str, typer.Option("--fhir-url", metavar="URL", help="Base URL of the FHIR server (R5; R4 with --fhir-version R4).")]


TokenEnv = Annotated[Optional[str], typer.Option("--token-env", metavar="VAR", help="Environment variable holding a bearer token.")]


TokenFile = Annotated[Optional[str], typer.Option("--token-file", metavar="FILE", help="File holding a bearer token.")]


BasicUser = Annotated[Optional[str], typer.Option("--basic-user", metavar="USER", help="HTTP basic user; the password comes from SR2FHIR_PASSWORD.")]


CaBundle = Annotated[Optional[str], typer.Option("--ca-bundle", metavar="FILE", help="CA bundle for TLS verification.")]


Insecure = Annotated[bool, typer.Option("--insecure", help="Do not verify TLS certificates.")]


SmartClientId = Annotated[Optional[str], typer.Option("--smart-client-id", metavar="ID", help="SMART Backend Services client id (signed-JWT client credentials).")]


SmartKey = Annotated[Optional[str], typer.Option("--smart-key", metavar="FILE", help="PEM private key (RSA: RS384, EC P-384: ES384) for SMART.")]


SmartTokenUrl = Annotated[Optional[str], typer.Option("--smart-token-url", metavar="URL", help="SMART token endpoint; default: from ..well-known/smart-configuration.")]


SmartScope = Annotated[Optional[str], typer.Option("--smart-scope", metavar="SCOPES", help="SMART scopes to ask for; default: what push (with --seed) needs (system/...).")]


SmartKid = Annotated[Optional[str], typer.Option("--smart-kid", metavar="KID", help="Key id (kid) to put in the JWT header.")]


@dataclass(frozen=True, slots=True)
class SharedOption:
    """One option that several commands take: its parameter name, its declaration (an Annotated
    typer.Option above) and its default (none: required)."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty


CONVERSION: tuple[SharedOption, ...] = (
    SharedOption("diagnostic_report", DiagnosticReport, default(Options, "diagnostic_report")), SharedOption("fhir_version", FhirVersionOpt, FhirVersion.R5),
    SharedOption("timezone", Timezone, default(Options, "default_timezone")), SharedOption("coding_scheme", CodingScheme, []),
    SharedOption("strict", Strict, default(Checks, "strict")),
    SharedOption("max_depth", MaxDepth, default(Limits, "max_depth")), SharedOption("max_items", MaxItems, default(Limits, "max_items")),
    SharedOption("verbose", Verbose, False), SharedOption("quiet", Quiet, False), SharedOption("jobs", Jobs, 1),
    SharedOption("validate", Validate, default(Checks, "validate")), SharedOption("ig", Ig, default(Checks, "ig")),
    SharedOption("debug", Debug, default(Checks, "debug")), SharedOption("fail_on_ig_defects", FailOnIgDefects, default(Checks, "fail_on_ig_defects")),
)
"""The conversion and reporting options of `convert`, `push`, `export`, `serve` (and, in part, `explain`)."""
CONNECTION: tuple[SharedOption, ...] = (
    SharedOption("fhir_url", FhirUrl), SharedOption("token_env", TokenEnv, None), SharedOption("token_file", TokenFile, None),
    SharedOption("basic_user", BasicUser, None), SharedOption("smart_client_id", SmartClientId, None), SharedOption("smart_key", SmartKey, None),
    SharedOption("smart_token_url", SmartTokenUrl, None), SharedOption("smart_scope", SmartScope, None), SharedOption("smart_kid", SmartKid, None),
    SharedOption("ca_bundle", CaBundle, None), SharedOption("insecure", Insecure, False),
)
"""The FHIR server and how to reach it: `push` and `serve`."""

Command = Callable[..., None]


def with_options(*groups: tuple[SharedOption, ...], without: Collection[str] = ()) -> Callable[[Command], Command]:
    """Give a command the options of `groups` (but those named in `without`), declared here once
    for every command that takes them (issue 26, item 4).

    Typer reads the command's signature: its own parameters, then these. The command is called
    with its own, and with these as one dict, `shared` (a keyword-only parameter it declares).
    """
    chosen = [o for g in groups for o in g if o.name not in without]

    def decorate(func: Command) -> Command:
        sig = inspect.signature(func, eval_str=True)  # the annotations as objects: Typer reads them off this signature
        own = [p for p in sig.parameters.values() if p.name != "shared"]
        added = [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default, annotation=o.annotation) for o in chosen]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> None:
            shared = {o.name: kwargs.pop(o.name) for o in chosen if o.name in kwargs}
            func(*args, shared=shared, **kwargs)

        command.__signature__ = sig.replace(parameters=own + added)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in own} | {o.name: o.annotation for o in chosen} | {"return": None}
        return command

    return decorate


def conversion_options(shared: Mapping[str, Any], **fixed: Any) -> ConversionSettings:
    """Check the conversion options (usage errors, exit 2) and bundle them: the command's `shared`
    values, `fixed` ones it sets itself (e.g. `conditional_references`), the table's defaults for
    the rest."""
    v = {o.name: o.default for o in CONVERSION} | {k: x for k, x in shared.items() if k in {o.name for o in CONVERSION}} | fixed
    timezone, coding_scheme, diagnostic_report, strict = v["timezone"], v["coding_scheme"], v["diagnostic_report"], v["strict"]
    max_depth, max_items, verbose, quiet, jobs = v["max_depth"], v["max_items"], v["verbose"], v["quiet"], v["jobs"]
    validate, ig, debug, fail_on_ig_defects = v["validate"], v["ig"], v["debug"], v["fail_on_ig_defects"]
    conditional_references, fhir_version = v.get("conditional_references", True), v["fhir_version"]

    if verbose and quiet:
        raise typer.BadParameter("-v and -q ask for opposite things; give one")
    if jobs < 1:
        raise typer.BadParameter("--jobs must be at least 1")
    if max_depth < 1 or max_items < 1:
        raise typer.BadParameter("--max-depth and --max-items must be at least 1")
    zone = check_timezone(timezone)
    options = Options(default_timezone=zone, coding_schemes=parse_schemes(coding_scheme), diagnostic_report=diagnostic_report, conditional_references=conditional_references)
    version = FhirVersion(fhir_version).value
    if validate and version == "R5":
        load_ig_profiles(ig)  # fail early, with a clear message, when the IG package is missing
    checks = Checks(strict=strict, validate=validate, ig=ig, fail_on_ig_defects=fail_on_ig_defects, debug=debug)
    return ConversionSettings(options, Limits(max_depth=max_depth, max_items=max_items), checks, verbose, quiet, jobs, version)


def check_timezone(value: str) -> str:
    """`--timezone`: a UTC offset ±HH:MM (as DICOM's Timezone Offset From UTC), Z, or UTC."""
    if value.upper() in ("Z", "UTC"):
        return "+00:00"
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", value)
    if not m or int(m.group(2)) > 14 or int(m.group(3)) > 59:
        raise typer.BadParameter(f"--timezone {value!r}: expected a UTC offset such as +01:00 or -05:00 (hours up to 14)")
    return f"{m.group(1)}{m.group(2)}:{m.group(3)}"


def parse_schemes(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise typer.BadParameter(f"{p!r}: expected DESIGNATOR=URI, e.g. 99LIDCQIICR=http://cancerimagingarchive.net")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out




class MissingPolicy(str, Enum):
    fail = "fail"
    logical = "logical"


class MultiplePolicy(str, Enum):
    fail = "fail"
    first = "first"


def check_url(url: str) -> None:
    """--fhir-url: an http(s) URL with a host, checked before anything is sent (a usage error)."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise typer.BadParameter(f"--fhir-url {url!r}: expected the server's base URL, e.g. https://fhir.example.org/fhir")
