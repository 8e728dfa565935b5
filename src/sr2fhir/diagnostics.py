"""Diagnostics: what was skipped, repaired or assumed while reading and mapping a report.

Messages never contain patient data: they name the file, the content item path, the concept
name, the rule and the action taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from . import ig_defects


class Severity(IntEnum):
    INFORMATION = 0
    WARNING = 1
    ERROR = 2
    FATAL = 3

    @property
    def fhir(self) -> str:
        return self.name.lower()


@dataclass(slots=True)
class Diagnostic:
    severity: Severity
    rule: str
    """Short rule id, e.g. 'num-without-value' (documented in docs/diagnostics.md)."""
    message: str
    path: str | None = None
    concept: str | None = None
    action: str | None = None
    location: str | None = None
    """Where, when it is not a content item: 'header' (the default) or an output resource."""
    ig_defect: str | None = None
    """The id of the known IG defect behind this finding (known_ig_defects.json), if any."""

    def text(self, source: str = "") -> str:
        where = f"{source}: " if source else ""
        item = f"content item {self.path}" if self.path else (self.location or "header")
        concept = f" {self.concept}" if self.concept else ""
        action = f" -> {self.action}" if self.action else ""
        defect = f" (known IG defect {self.ig_defect}, docs/conformance.md)" if self.ig_defect else ""
        return f"{where}{self.severity.name.lower()}: {item}{concept}: {self.message} [{self.rule}]{defect}{action}"


@dataclass(slots=True)
class Diagnostics:
    """The diagnostics of one report."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        severity: Severity,
        rule: str,
        message: str,
        *,
        path: str | None = None,
        concept: Any = None,
        action: str | None = None,
        location: str | None = None,
        ig_defect: str | None = None,
    ) -> None:
        defect = ig_defect or ig_defects.for_rule(rule)
        self.items.append(
            Diagnostic(severity, rule, message, path, str(concept) if concept else None, action, location, defect)
        )

    def warn(self, rule: str, message: str, **kw: Any) -> None:
        self.add(Severity.WARNING, rule, message, **kw)

    def info(self, rule: str, message: str, **kw: Any) -> None:
        self.add(Severity.INFORMATION, rule, message, **kw)

    def error(self, rule: str, message: str, **kw: Any) -> None:
        self.add(Severity.ERROR, rule, message, **kw)

    @property
    def worst(self) -> Severity | None:
        return max((d.severity for d in self.items), default=None)

    def worst_of_input(self) -> Severity | None:
        """The worst severity, leaving out findings that known IG defects cause."""
        return max((d.severity for d in self.items if not d.ig_defect), default=None)

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.items if d.severity == severity)

    def operation_outcome(self, source: str, error: str | None = None) -> dict[str, Any]:
        """A FHIR OperationOutcome listing every diagnostic, the failure (if any) first."""
        issues: list[dict[str, Any]] = []
        if error is not None:
            issues.append({"severity": "fatal", "code": "processing", "diagnostics": printable(error)})
        for d in self.items:
            issue: dict[str, Any] = {
                "severity": d.severity.fhir,
                "code": "processing" if d.severity >= Severity.ERROR else "informational",
                "diagnostics": d.text(),
                "details": {"text": d.message},
            }
            if d.path:
                issue["location"] = [f"content item {d.path}"]
            issues.append(issue)
        if not issues:
            issues.append({"severity": "information", "code": "informational", "diagnostics": "converted without findings"})
        return {
            "resourceType": "OperationOutcome",
            "text": {
                "status": "generated",
                "div": f'<div xmlns="http://www.w3.org/1999/xhtml">sr2fhir diagnostics for {_xml_escape(source)}: {len(self.items)} issue(s)</div>',
            },
            "issue": issues,
        }


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Text safe for a terminal or a log: control characters (escape sequences, newlines, bidi
    overrides) from SR content or file names are shown escaped, never acted on (issue 10.11)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text)


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
