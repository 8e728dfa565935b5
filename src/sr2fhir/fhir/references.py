"""References and identifier searches: generic FHIR JSON (no DICOM, no IG rule)."""

from __future__ import annotations

from typing import Any, Iterator, overload
from urllib.parse import quote

PRE_EXISTING = ("Patient", "ImagingStudy", "ServiceRequest")
"""The resources the IG expects on the server already (ConceptMap 00), referenced by identifier."""


def identifier_token(ident: dict[str, Any]) -> str:
    """An Identifier as a search token: `system|value`, or `value` without a system."""
    return f"{ident['system']}|{ident['value']}" if "system" in ident else str(ident.get("value"))


def condition(ident: dict[str, Any]) -> str:
    """The search (`identifier=...`) that finds the resource carrying this Identifier."""
    return f"identifier={quote(identifier_token(ident), safe=':/|.-_')}"


@overload
def conditional(ref: dict[str, Any], enabled: bool) -> dict[str, Any]: ...
@overload
def conditional(ref: dict[str, Any] | None, enabled: bool) -> dict[str, Any] | None: ...
def conditional(ref: dict[str, Any] | None, enabled: bool) -> dict[str, Any] | None:
    """Add a conditional reference (`Type?identifier=system|value`) to a logical one.

    In a transaction the server resolves it to the existing resource; it also tells validators
    the target type, which the `type`-discriminated slices need (D-1).
    """
    if not enabled or ref is None or "identifier" not in ref:
        return ref
    return {"reference": f"{ref['type']}?{condition(ref['identifier'])}", **ref}


def dicts(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a resource (or list of resources), depth first."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            yield n
            stack.extend(v for v in n.values() if isinstance(v, (dict, list)))
        elif isinstance(n, list):
            stack.extend(n)
