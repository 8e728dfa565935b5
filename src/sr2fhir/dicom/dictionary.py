"""Facts of the DICOM standard, from tables generated from pydicom's copy of it
(scripts/make_dicom_tables.py): UID names (PS3.6 Annex A) and the SNOMED-RT to SNOMED CT table
(PS3.16 Annex O). The rest of the package asks here instead of importing pydicom."""

from __future__ import annotations

import functools
import re
from typing import Any

from .ps3_6 import UIDS


def srt_to_sct(code: str) -> str | None:
    """The SNOMED CT concept id of a legacy SNOMED-RT code (PS3.16 Annex O), or None."""
    return _snomed().get(code)


@functools.cache
def _snomed() -> dict[str, str]:
    from .ps3_16_snomed import SRT_TO_SCT  # 8,000 rows: loaded when an SRT code is first seen

    return SRT_TO_SCT


def uid_name(uid: str) -> str | None:
    """The name PS3.6 gives a well-known UID (a SOP Class, a Transfer Syntax), or None."""
    entry = UIDS.get(uid)
    return entry[0] if entry else None


_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def uid_ok(uid: Any) -> bool:
    """A valid UID (PS3.5 9.1: digits and dots, at most 64), which can go into a FHIR `id` or `urn:oid:`."""
    return isinstance(uid, str) and 0 < len(uid) <= 64 and _UID.fullmatch(uid) is not None


_SR_KEYWORDS = ("BasicTextSRStorage", "EnhancedSRStorage", "ComprehensiveSRStorage", "Comprehensive3DSRStorage", "ExtensibleSRStorage")
SR_STORAGE: dict[str, str] = {uid: kw for kw in _SR_KEYWORDS for uid, (_, k) in UIDS.items() if k == kw}
"""The SR Storage SOP Classes a TID 1500 report may travel in (PS3.4 B.5), UID -> keyword; what
the gateway accepts (`sr2fhir serve`)."""
