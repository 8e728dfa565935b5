"""Deterministic resource ids: converting the same input twice gives byte-identical output.

Ids are UUIDv5 over a name made of the resource's identity (IG section "Resource ids" is silent;
docs/decisions.md D-21): for content-derived resources the SR SOP Instance UID and the content
item path, for shared resources (devices) the identifying attributes.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6c0b8f0e-6d1f-5b7a-9a59-5f0c3e1d2a40")
"""sr2fhir's UUIDv5 namespace (a fixed, arbitrary UUID)."""


def resource_id(*parts: str) -> str:
    """A UUIDv5 string over the parts, joined by '|'."""
    return str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def full_url(rid: str) -> str:
    return f"urn:uuid:{rid}"
