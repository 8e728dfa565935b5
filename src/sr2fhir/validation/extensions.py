"""sr2fhir's own extensions (fhir/extensions.py, D-51) checked against their one table: where they
may sit, which sub-extensions, how many, of which type, codes from the bound value set, and
their invariants (FHIRPath, as the StructureDefinition states them)."""

from __future__ import annotations

from typing import Any, Iterator

from ..fhir.extensions import CANONICAL, EXTENSIONS, Extension
from .fhirpath import evaluate

BY_URL = {e.url: e for e in EXTENSIONS}


def check(resource: dict[str, Any], fhir_version: str) -> Iterator[tuple[str, str]]:
    """(location, message) for each fault in the resource's top-level sr2fhir extensions."""
    rtype = resource.get("resourceType", "")
    for i, ext in enumerate(resource.get("extension", []) or []):
        url = ext.get("url", "") if isinstance(ext, dict) else ""
        if not url.startswith(CANONICAL + "/"):
            continue
        where = f"{rtype}.extension[{i}]"
        known = BY_URL.get(url)
        if known is None:
            yield where, f"{url} is not an extension sr2fhir defines"
            continue
        if known.context[fhir_version] != rtype:
            yield where, f"{known.id} may sit on {known.context[fhir_version]}, not {rtype}"
        yield from _parts(known, ext, where, resource)


def _parts(known: Extension, ext: dict[str, Any], where: str, resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if any(k.startswith("value") for k in ext):
        yield where, f"{known.id} is a complex extension: sub-extensions, no value"
    subs = ext.get("extension", []) or []
    names = {p.name: p for p in known.parts}
    for j, sub in enumerate(subs):
        part = names.get(sub.get("url", ""))
        if part is None:
            yield f"{where}.extension[{j}]", f"{known.id} has no sub-extension {sub.get('url')!r}"
            continue
        key = "value" + part.type[0].upper() + part.type[1:]
        values = [k for k in sub if k.startswith("value")]
        if values != [key]:
            yield f"{where}.extension[{j}]", f"{part.name} needs one {key}, has {values or 'none'}"
        elif part.codes and sub[key] not in part.codes:
            yield f"{where}.extension[{j}]", f"{part.name} {sub[key]!r} is not one of {', '.join(part.codes)}"
    for part in known.parts:
        n = sum(1 for s in subs if s.get("url") == part.name)
        if n < part.min or (part.max != "*" and n > int(part.max)):
            yield where, f"{known.id} needs {part.min}..{part.max} {part.name}, has {n}"
    for key, human, expression in known.invariants:
        if evaluate(ext, expression, resource) is False:
            yield where, f"{known.id}: {human} ({key})"
