"""Facts of the DICOM standard as pydicom ships them: UID names (PS3.6 Annex A) and the SNOMED-RT
to SNOMED CT table (PS3.16 Annex O). The rest of the package asks here instead of importing pydicom."""

from __future__ import annotations

import re
from typing import Any

import pydicom.uid
from pydicom.sr.coding import snomed_mapping

SRT_TO_SCT: dict[str, str] = snomed_mapping["SRT"]
"""Legacy SNOMED-RT code -> SNOMED CT concept id (PS3.16 Annex O)."""


def uid_name(uid: str) -> str | None:
    """The name PS3.6 gives a well-known UID (a SOP Class, a Transfer Syntax), or None."""
    name = pydicom.uid.UID(uid).name
    return None if name == uid else str(name)


_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def uid_ok(uid: Any) -> bool:
    """A valid UID (PS3.5 9.1: digits and dots, at most 64), which can go into a FHIR `id` or `urn:oid:`."""
    return isinstance(uid, str) and 0 < len(uid) <= 64 and _UID.match(uid) is not None


SR_STORAGE: dict[str, str] = {
    str(getattr(pydicom.uid, keyword)): keyword
    for keyword in ("BasicTextSRStorage", "EnhancedSRStorage", "ComprehensiveSRStorage", "Comprehensive3DSRStorage", "ExtensibleSRStorage")
}
"""The SR Storage SOP Classes a TID 1500 report may travel in (PS3.4 B.5), UID -> keyword; what
the gateway accepts (`sr2fhir serve`)."""
