"""The resources of one report, and their serialisation as a Bundle or NDJSON.

Transaction Bundles use `urn:uuid` fullUrls and conditional create (`ifNoneExist` on each
resource's identity identifier), so posting the same report twice creates nothing new.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Iterator

from .ids import full_url, resource_id

BUNDLE_TYPES = ("transaction", "collection", "ndjson")


@dataclass(slots=True)
class Entry:
    resource: dict[str, Any]
    condition: str | None
    """Search query for conditional create, e.g. 'identifier=urn:dicom:uid|urn:oid:1.2'."""


class ResourceSet:
    """Resources in creation order, deduplicated by id."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def add(self, resource: dict[str, Any], condition: str | None = None) -> dict[str, str]:
        """Add (once) and return a Reference to the resource."""
        rid = resource["id"]
        if rid not in self._entries:
            self._entries[rid] = Entry(resource, condition)
        return reference(resource)

    def __contains__(self, rid: str) -> bool:
        return rid in self._entries

    def get(self, rid: str) -> dict[str, Any] | None:
        e = self._entries.get(rid)
        return e.resource if e else None

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def resources(self) -> list[dict[str, Any]]:
        return [e.resource for e in self._entries.values()]


def reference(resource: dict[str, Any]) -> dict[str, str]:
    """A reference inside the Bundle. `type` is set because validators do not resolve urn:uuid
    references when they discriminate slices by type (derived-imaging-measurement derivedFrom)."""
    return {"reference": full_url(resource["id"]), "type": resource["resourceType"]}


def transaction(entries: Iterable[Entry], bundle_key: str) -> dict[str, Any]:
    """A transaction Bundle: POST with ifNoneExist where the resource has an identity."""
    return {**bundle_head("transaction", bundle_key), "entry": [transaction_entry(e) for e in entries]}


def collection(entries: Iterable[Entry], bundle_key: str) -> dict[str, Any]:
    return {**bundle_head("collection", bundle_key), "entry": [collection_entry(e) for e in entries]}


def bundle_head(bundle_type: str, bundle_key: str) -> dict[str, Any]:
    """A Bundle of `bundle_type` ('transaction', 'collection') without its entries."""
    return {"resourceType": "Bundle", "id": resource_id("bundle", bundle_type, bundle_key), "type": bundle_type}


def transaction_entry(e: Entry) -> dict[str, Any]:
    r = e.resource
    req: dict[str, Any] = {"method": "POST", "url": r["resourceType"]}
    if e.condition:
        req["ifNoneExist"] = e.condition
    return {"fullUrl": full_url(r["id"]), "resource": r, "request": req}


def collection_entry(e: Entry) -> dict[str, Any]:
    return {"fullUrl": full_url(e.resource["id"]), "resource": e.resource}


def _relative(node: Any, types: dict[str, str]) -> Any:
    # A reference that is not in the set (logical or conditional ones) stays as it is.
    if isinstance(node, dict):
        return {k: (types.get(v, v) if k == "reference" and isinstance(v, str) else _relative(v, types)) for k, v in node.items()}
    if isinstance(node, list):
        return [_relative(x, types) for x in node]
    return node


_DECIMAL_MARK = "\u0000decimal:"
_DECIMAL_TEXT = re.compile(r'"\\u0000decimal:([-+0-9.eE]+)"')


def _encode_decimal(o: Any) -> str:
    if isinstance(o, Decimal):
        return _DECIMAL_MARK + str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


# allow_nan=False: NaN and Infinity are not JSON; a value that slipped through raises here
# rather than reaching a file or a server as invalid JSON. check_circular=False: resources are
# trees (a cycle would be a RecursionError); the check costs a dict entry per container.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_encode_decimal, allow_nan=False, check_circular=False)
_PRETTY = json.JSONEncoder(ensure_ascii=False, indent=2, default=_encode_decimal, allow_nan=False, check_circular=False)
_NUMBER = operator.itemgetter(1)


def dumps(obj: Any, *, pretty: bool = False) -> str:
    """Deterministic JSON text; Decimals are written as JSON numbers with their digits kept."""
    text = (_PRETTY if pretty else _COMPACT).encode(obj)
    return _DECIMAL_TEXT.sub(_NUMBER, text) if "u0000decimal:" in text else text


def iter_ndjson(resources: list[dict[str, Any]]) -> Iterator[str]:
    """One resource a line, references rewritten to Type/id one resource at a time."""
    types = {full_url(r["id"]): f"{r['resourceType']}/{r['id']}" for r in resources}
    for r in resources:
        yield dumps(_relative(r, types)) + "\n"


def iter_compact(bundle: dict[str, Any]) -> Iterator[str]:
    """The compact JSON of a Bundle, entry by entry: the same text as dumps(bundle)."""
    return iter_compact_entries({k: v for k, v in bundle.items() if k != "entry"}, bundle.get("entry", []))


def iter_compact_entries(head: dict[str, Any], entries: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The compact JSON of the Bundle `head` with `entries`, made and written one at a time: the
    same text as dumps({**head, "entry": [...]}), without ever holding all of it (peak memory: the
    resources plus one entry and its text). An entry whose resource has a long list (an
    ImagingSelection of hundreds of instances) goes list item by list item: the encoder's pieces
    of a whole entry would weigh several times its text."""
    yield dumps(head)[:-1] + ',"entry":['
    for i, e in enumerate(entries):
        if i:
            yield ","
        resource = e.get("resource")
        if isinstance(resource, dict) and any(isinstance(v, list) and len(v) > _LONG_LIST for v in resource.values()):
            yield from _pieces(e, 3)
        else:
            yield dumps(e)
    yield "]}"


_LONG_LIST = 64


def _pieces(node: Any, depth: int) -> Iterator[str]:
    """dumps(node) in pieces: containers `depth` levels down are opened here, the rest encoded whole."""
    if depth and isinstance(node, dict):
        yield "{"
        for i, (k, v) in enumerate(node.items()):
            yield ("," if i else "") + dumps(k) + ":"
            yield from _pieces(v, depth - 1)
        yield "}"
    elif depth and isinstance(node, list):
        yield "["
        for i, v in enumerate(node):
            if i:
                yield ","
            yield from _pieces(v, depth - 1)
        yield "]"
    else:
        yield dumps(node)
