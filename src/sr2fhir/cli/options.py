"""Every option that more than one command takes, declared once (issue 26, item 4): the
conversion and reporting options, and the FHIR server's connection options; `conversion_options`
checks them (usage errors, exit 2) and makes one ConversionSettings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Optional
from urllib.parse import urlsplit

import typer

from ..dicom.limits import Limits
from .output import load_ig_profiles

if TYPE_CHECKING:
    from ..batch import Checks
    from ..mapping.context import Options


DEFAULT_MAX_DEPTH = Limits().max_depth


DEFAULT_MAX_ITEMS = Limits().max_items


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


def conversion_options(
    *, timezone: str, coding_scheme: list[str], diagnostic_report: bool, strict: bool, max_depth: int, max_items: int,
    verbose: bool, quiet: bool, jobs: int, validate: bool, ig: str | None, debug: bool, fail_on_ig_defects: bool,
    conditional_references: bool = True, fhir_version: "FhirVersion | str" = "R5",
) -> ConversionSettings:
    """Check the shared options (usage errors, exit 2) and bundle them."""
    from ..batch import Checks
    from ..mapping.context import Options
    
    if verbose and quiet:
        raise typer.BadParameter("-v and -q ask for opposite things; give one")
    if jobs < 1:
        raise typer.BadParameter("--jobs must be at least 1")
    if max_depth < 1 or max_items < 1:
        raise typer.BadParameter("--max-depth and --max-items must be at least 1")
    zone = check_timezone(timezone)
    options = Options(default_timezone=zone, coding_schemes=parse_schemes(coding_scheme), diagnostic_report=diagnostic_report, conditional_references=conditional_references,
                      fhir_version=FhirVersion(fhir_version).value)
    if validate and options.fhir_version == "R5":
        load_ig_profiles(ig)  # fail early, with a clear message, when the IG package is missing
    checks = Checks(strict=strict, validate=validate, ig=ig, fail_on_ig_defects=fail_on_ig_defects, debug=debug)
    return ConversionSettings(options, Limits(max_depth=max_depth, max_items=max_items), checks, verbose, quiet, jobs)


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
