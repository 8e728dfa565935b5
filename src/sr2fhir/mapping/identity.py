"""Identities for conditional create (docs/decisions.md D-21): the identifier a resource carries, and
the search (`ifNoneExist`) that finds it on a server. One rule for every resource sr2fhir makes.

A DICOM UID gives the identity where there is one (Observation UID, Tracking UID, Device UID,
SR SOP Instance UID: system `urn:dicom:uid`, value `urn:oid:<uid>`, D-11); otherwise the resource's
own deterministic id as a `urn:uuid` (system `urn:ietf:rfc:3986`), so that posting the same report
twice still creates nothing new.
"""

from __future__ import annotations

from typing import Any

from ..codes import DICOM_UID, FIXED, RFC3986, urn_oid
from ..fhir.ids import full_url
from ..fhir.references import condition


def by_uid(uid: str, type_code: str | None = None) -> tuple[dict[str, Any], str]:
    """(Identifier, condition) of a DICOM UID; `type_code` names an IG identifier type (codes.FIXED)."""
    ident: dict[str, Any] = {}
    if type_code:
        ident["type"] = {"coding": [dict(FIXED[type_code])]}
    ident.update({"system": DICOM_UID, "value": urn_oid(uid)})
    return ident, condition(ident)


def by_id(rid: str) -> tuple[dict[str, Any], str]:
    """(Identifier, condition) of a resource without a DICOM UID: its own id as a urn:uuid."""
    ident = {"system": RFC3986, "value": full_url(rid)}
    return ident, condition(ident)
