"""`sr2fhir validate`: the three layers, reported as findings and as a FHIR OperationOutcome."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from decimal import Decimal
from typing import Any, Iterator, Sequence

from .. import ig_defects
from ..fhir.bundle import FHIR_DECIMAL
from ..fhir.references import PRE_EXISTING, dicts
from .package import Profile, load_profiles
from .profiles import ProfileValidator
from . import extensions as own_extensions
from . import r4 as r4_checks

"""Resources the IG assumes on the server: referenced by identifier, never in the Bundle."""


@dataclass(slots=True)
class Finding:
    severity: str
    layer: str
    rule: str
    resource: str
    location: str
    message: str
    ig_defect: str | None = None
    """The known IG defect behind this finding (known_ig_defects.json), if any."""

    def text(self, fail_on_ig_defects: bool = True) -> str:
        """One line; an error a known IG defect causes is shown as a warning unless it fails the
        run (`--fail-on-ig-defects`), as `convert --validate` shows it: what does not fail is
        never labelled error."""
        defect = f" (known IG defect {self.ig_defect}, docs/conformance.md)" if self.ig_defect else ""
        severity = "warning" if self.severity == "error" and self.ig_defect and not fail_on_ig_defects else self.severity
        return f"{severity}: {self.resource} {self.location}: {self.message} [{self.layer}: {self.rule}]{defect}"


@dataclass(slots=True)
class Report:
    source: str
    resources: int = 0
    findings: list[Finding] = field(default_factory=list)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def errors(self, *, include_ig_defects: bool = False) -> int:
        """Errors, leaving out those that known IG defects cause unless asked to include them."""
        return sum(1 for f in self.findings if f.severity in ("error", "fatal") and (include_ig_defects or not f.ig_defect))

    @property
    def ok(self) -> bool:
        return self.errors() == 0

    def operation_outcome(self) -> dict[str, Any]:
        issues = [
            {
                "severity": f.severity,
                "code": "structure" if f.layer == "structure" else ("invariant" if f.rule.startswith("invariant") else "processing"),
                "details": {"text": f.message},
                "diagnostics": f"{f.layer}: {f.rule}",
                "expression": [f.location] if f.location else [],
            }
            for f in self.findings
        ] or [{"severity": "information", "code": "informational", "details": {"text": f"{self.resources} resource(s), no issues"}}]
        return {"resourceType": "OperationOutcome", "issue": issues}


class Number(Decimal):
    """A JSON number as the file spells it (`text`): the decimal grammar is lexical."""

    text: str

    def __new__(cls, text: str) -> "Number":
        n = super().__new__(cls, text)
        n.text = text
        return n


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=Number)  # an int is spelt as str(int) says


def load(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, Any] | None]:
    """Resources, a fullUrl/relative-URL index, and the Bundle (if the file is one). Numbers are
    with a fraction or exponent are read as `Number`s, keeping their text for the decimal grammar check."""
    text = Path(path).read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("{") and "\n{" not in stripped.strip():
        docs = [_loads(text)]
    else:
        docs = [_loads(line) for line in text.splitlines() if line.strip()]
    resources: list[dict[str, Any]] = []
    index: dict[str, dict[str, Any]] = {}
    bundle = None
    for d in docs:
        if d.get("resourceType") == "Bundle":
            bundle = d
            for e in d.get("entry", []):
                r = e.get("resource")
                if r:
                    resources.append(r)
                    if e.get("fullUrl"):
                        index[e["fullUrl"]] = r
        else:
            resources.append(d)
    for r in resources:
        if "id" in r:
            index.setdefault(f"{r['resourceType']}/{r['id']}", r)
    return resources, index, bundle


XVER_R5 = "http://hl7.org/fhir/5.0/StructureDefinition/"
"""The canonical base of the R5-in-R4 cross-version extensions and profiles (docs/r4.md)."""
R5_ONLY = frozenset({"ImagingSelection"})
"""Resource types that exist in R5 and not in R4."""


def fhir_version_of(resources: list[dict[str, Any]]) -> str | None:
    """R4 or R5, when the resources say which beyond doubt (sr2fhir's R4 output claims the
    cross-version profile-ImagingSelection or uses cross-version extensions; an ImagingSelection is
    R5 only); None when they do not (issue 27.7)."""
    for r in resources:
        if r.get("resourceType") in R5_ONLY:
            return "R5"
        if any(str(p).startswith(XVER_R5) for p in r.get("meta", {}).get("profile", []) if isinstance(r.get("meta"), dict)):
            return "R4"
        if any(isinstance(e, dict) and str(e.get("url", "")).startswith(XVER_R5) for e in r.get("extension", []) if isinstance(r.get("extension"), list)):
            return "R4"
    return None


def validate_resources(
    resources: list[dict[str, Any]],
    index: dict[str, dict[str, Any]],
    *,
    bundle: dict[str, Any] | None = None,
    profiles: dict[str, Profile] | None = None,
    ig: str | None = None,
    source: str = "",
    fhir_version: str = "R5",
    referrers: Sequence[dict[str, Any]] = (),
) -> Report:
    """R5: structure, the IG's profiles, Bundle integrity. R4: structure (R4B models), the
    cross-version extensions and R4 reference targets (validation/r4.py), Bundle integrity.

    For one file of a set (the NDJSON files of an export), `index` covers the whole set and
    `referrers` holds the set's other resources, whose references count against orphans."""
    report = Report(source, len(resources))

    def resolve(ref: dict[str, Any]) -> dict[str, Any] | None:
        return index.get(ref.get("reference", "")) if isinstance(ref, dict) else None

    pv = ProfileValidator(profiles if profiles is not None else load_profiles(ig), resolve) if fhir_version == "R5" else None
    for i, r in enumerate(resources):
        name = f"{r.get('resourceType')}/{r.get('id', i)}"
        for where, spelt in _bad_numbers(r):
            report.findings.append(Finding("error", "structure", "decimal-grammar", name, where,
                                           f"the number {spelt[:40]} is not in FHIR's decimal grammar (at most 18 integer and 17 fraction digits, an exponent allowed)"))
        for f in _structure(r, fhir_version):
            report.findings.append(Finding("error", "structure", fhir_version.lower(), name, f[0], f[1]))
        for where, message in own_extensions.check(r, fhir_version):
            report.findings.append(Finding("error", "extension", "sr2fhir-extension", name, where, message))
        if pv is None:
            for rule, where, message in r4_checks.check(r, resolve):
                report.findings.append(Finding("error", "r4", rule, name, where, message))
            continue
        for issue in pv.validate(r, r.get("resourceType", "")):
            report.findings.append(Finding(issue.severity, "profile", issue.rule, name, issue.location, issue.message))
    report.findings.extend(_integrity(resources, index, bundle, referrers))
    for finding in report.findings:
        finding.ig_defect = ig_defects.for_message(finding.message)
    return report


def _bad_numbers(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every number (as written: a file's text, or how sr2fhir writes a value) outside FHIR's
    decimal grammar, which every FHIR number also obeys; with its path."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _bad_numbers(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _bad_numbers(v, f"{path}[{i}]")
    elif isinstance(node, (int, float, Decimal)) and not isinstance(node, bool):
        spelt = node.text if isinstance(node, Number) else repr(node) if isinstance(node, float) else str(node)
        if not FHIR_DECIMAL.fullmatch(spelt):
            yield path, spelt


def _structure(resource: dict[str, Any], fhir_version: str = "R5") -> list[tuple[str, str]]:
    from pydantic import ValidationError

    if fhir_version == "R4":
        from fhir.resources.R4B import get_fhir_model_class
    else:
        from fhir.resources import get_fhir_model_class
    try:
        model = get_fhir_model_class(resource["resourceType"])
    except (KeyError, ValueError):
        return [("", f"unknown resourceType {resource.get('resourceType')!r} in FHIR {fhir_version}")]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()]
    return []


def _references(node: Any) -> list[dict[str, Any]]:
    return [n for n in dicts(node) if isinstance(n.get("reference"), str) or (set(n) & {"identifier", "display"} and n.get("type") in PRE_EXISTING)]


ORPHAN_TYPES = frozenset({"ImagingSelection", "Basic", "BodyStructure", "Practitioner"})
"""What sr2fhir makes only to be referenced: unreferenced, it is a mistake. Observations,
Patients and Devices stand on their own (the General Equipment Device describes the SR's
equipment whether or not an Observation names it as its device)."""


def _is_tracking(ident: dict[str, Any]) -> bool:
    codings = ident.get("type", {}).get("coding", []) if isinstance(ident.get("type"), dict) else []
    return any(c.get("code") in ("112039", "112040") for c in codings if isinstance(c, dict))


def _integrity(resources: list[dict[str, Any]], index: dict[str, dict[str, Any]], bundle: dict[str, Any] | None,
               referrers: Sequence[dict[str, Any]] = ()) -> list[Finding]:
    found: list[Finding] = []
    referenced: set[int] = {id(t) for r in referrers for ref in _references(r) if (t := index.get(ref.get("reference") or "")) is not None}
    for r in resources:
        name = f"{r['resourceType']}/{r.get('id')}"
        for ref in _references(r):
            url = ref.get("reference")
            if url is None:
                if "identifier" not in ref:
                    found.append(Finding("warning", "bundle", "display-only-reference", name, "", f"{ref.get('type')} reference has neither reference nor identifier"))
                continue
            target = index.get(url)
            if target is not None:
                referenced.add(id(target))
            elif "?" in url and url.split("?")[0] in PRE_EXISTING:
                continue  # conditional reference to a pre-existing resource
            elif url.split("/")[0] in PRE_EXISTING and not url.startswith("urn:"):
                continue  # literal reference to a pre-existing resource on the server
            else:
                found.append(Finding("error", "bundle", "unresolved-reference", name, "", f"reference {url} does not resolve inside the Bundle"))
    for r in resources:
        if r["resourceType"] in ORPHAN_TYPES and id(r) not in referenced:
            found.append(Finding("warning", "bundle", "orphan", f"{r['resourceType']}/{r.get('id')}", "", "nothing in the Bundle references this resource"))
    seen: Counter[tuple[str, str, str]] = Counter()
    for r in resources:
        for ident in r.get("identifier", []) if isinstance(r.get("identifier"), list) else []:
            # Tracking ids name a lesion, not a resource: several Observations may carry one (D-34).
            if ident.get("value") and not _is_tracking(ident):
                seen[(r["resourceType"], ident.get("system", ""), ident["value"])] += 1
    for (rtype, system, value), n in seen.items():
        if n > 1:
            found.append(Finding("error", "bundle", "duplicate-identifier", rtype, "", f"{n} {rtype} resources share identifier {system}|{value}"))
    if bundle is not None and bundle.get("type") == "transaction":
        conditions = Counter(e.get("request", {}).get("ifNoneExist") for e in bundle.get("entry", []) if e.get("request", {}).get("ifNoneExist"))
        for c, n in conditions.items():
            if n > 1:
                found.append(Finding("error", "bundle", "duplicate-condition", "Bundle", "", f"{n} entries share ifNoneExist {c}"))
    return found
