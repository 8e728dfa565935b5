"""Deterministic resource ids: converting the same input twice gives byte-identical output.

Ids are UUIDv5 over a name made of the resource's identity (IG section "Resource ids" is silent;
docs/decisions.md D-21): for content-derived resources the SR SOP Instance UID and the content
item path, for shared resources (devices) the identifying attributes.
"""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("6c0b8f0e-6d1f-5b7a-9a59-5f0c3e1d2a40")
"""sr2fhir's UUIDv5 namespace (a fixed, arbitrary UUID)."""
_NAMESPACE_BYTES = NAMESPACE.bytes


def resource_id(*parts: str) -> str:
    """A UUIDv5 string over the parts, joined by '|' (RFC 9562 5.5, as uuid.uuid5 makes it, without
    its UUID object: one is made for every resource; tests/fhir/test_bundle.py holds it to uuid5)."""
    h = bytearray(hashlib.sha1(_NAMESPACE_BYTES + "|".join(parts).encode("utf-8")).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # RFC variant
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def full_url(rid: str) -> str:
    return f"urn:uuid:{rid}"
