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

import orjson

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
        """The resource of id `rid`, or None (for library users: ``conversion.resources.get(id)``)."""
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


FHIR_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?([eE][+-]?[0-9]{1,9})?")
"""The lexical space of FHIR's decimal (R5 datatypes, the `decimal` regex), which every FHIR
number obeys: at most 18 integer and 17 fraction digits, an exponent allowed."""

_DECIMAL_MARK = "\u0000decimal:"
_DECIMAL_TEXT = re.compile(r'"\\u0000decimal:([-+0-9.eE]+)"')


def _decimal_fragment(o: Any) -> orjson.Fragment:
    if isinstance(o, Decimal) and o.is_finite():
        return orjson.Fragment(str(o).encode("ascii"))
    raise TypeError(f"{type(o).__name__} {o!r} is not JSON serializable")


def _encode_decimal(o: Any) -> str:
    if isinstance(o, Decimal) and o.is_finite():
        return _DECIMAL_MARK + str(o)
    raise TypeError(f"{type(o).__name__} {o!r} is not JSON serializable")


# The standard library's encoder: the reference text (tests/test_bundle.py compares the two on
# every corpus output) and the fallback for what orjson refuses (integers beyond 64 bits, lone
# surrogates). allow_nan=False: NaN and Infinity are not JSON; a value that slipped through raises
# here rather than reaching a file or a server as invalid JSON. check_circular=False: resources
# are trees (a cycle would be a RecursionError); the check costs a dict entry per container.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_encode_decimal, allow_nan=False, check_circular=False)
_PRETTY = json.JSONEncoder(ensure_ascii=False, indent=2, default=_encode_decimal, allow_nan=False, check_circular=False)
_NUMBER = operator.itemgetter(1)
_ORJSON_OPTIONS = {False: 0, True: orjson.OPT_INDENT_2}


def stdlib_dumps(obj: Any, *, pretty: bool = False) -> str:
    """`dumps` by the standard library's json encoder (the oracle of `dumps`)."""
    text = (_PRETTY if pretty else _COMPACT).encode(obj)
    return _DECIMAL_TEXT.sub(_NUMBER, text) if "u0000decimal:" in text else text


def dumps(obj: Any, *, pretty: bool = False) -> str:
    """FHIR JSON text of a Bundle or resource (``sr2fhir.dumps``), deterministic, with every
    Decimal written as a JSON number with its digits kept.

    Parameters
    ----------
    obj : dict
        A Bundle or resource, as ``sr2fhir.bundle`` or ``Conversion.resources`` give it.
    pretty : bool, optional
        Indent the JSON.

    Returns
    -------
    str
        The JSON text.

    Notes
    -----
    orjson writes it (issue 16: the 1,561-feature report's 4.4 MB in 0.018 s rather than the json
    module's 0.045 s, rendering included); the text is the json module's
    (`stdlib_dumps`) except for floats of magnitude 1e-10 to 1e-4, where both write the same number
    differently ('1e-7' for '1e-07', D-41). orjson writes NaN and Infinity as null; a resource never
    holds null, so a text with null in it is made again by the json module, which refuses them."""
    try:
        data = orjson.dumps(obj, default=_decimal_fragment, option=_ORJSON_OPTIONS[pretty])
    except orjson.JSONEncodeError:
        return stdlib_dumps(obj, pretty=pretty)
    if b"null" in data:
        return stdlib_dumps(obj, pretty=pretty)
    return data.decode()


def iter_ndjson(resources: list[dict[str, Any]]) -> Iterator[str]:
    """One resource a line, references rewritten to Type/id one resource at a time."""
    types = {full_url(r["id"]): f"{r['resourceType']}/{r['id']}" for r in resources}
    for r in resources:
        yield dumps(_relative(r, types)) + "\n"


def iter_compact_entries(head: dict[str, Any], entries: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The compact JSON of the Bundle `head` with `entries`, made and written one at a time: the
    same text as dumps({**head, "entry": [...]}), without ever holding all of it (peak memory: the
    resources plus one entry and its text). A large entry (a resource with a long list, such as
    an ImagingSelection of hundreds of instances, or a long narrative) goes piece by piece."""
    yield dumps(head)[:-1] + ',"entry":['
    for i, e in enumerate(entries):
        if i:
            yield ","
        resource = e.get("resource")
        if isinstance(resource, dict) and _large(resource):
            yield from _pieces(e, 3)
        else:
            yield dumps(e)
    yield "]}"


_LONG_LIST = 64
_LONG_TEXT = 4096


def _large(resource: dict[str, Any]) -> bool:
    for v in resource.values():
        if isinstance(v, list) and len(v) > _LONG_LIST:
            return True
    text = resource.get("text")
    return isinstance(text, dict) and len(text.get("div", "")) > _LONG_TEXT


def _pieces(node: Any, depth: int) -> Iterator[str]:
    """dumps(node) in pieces: containers `depth` levels down are opened here, the rest encoded
    whole. A string is written by the json module: orjson sets aside several bytes for each of its
    characters (a 27 kB narrative took 260 kB while it was written)."""
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
    elif isinstance(node, str):
        yield _COMPACT.encode(node)
    else:
        yield dumps(node)
