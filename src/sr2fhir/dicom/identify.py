"""What a received DICOM object is, read from its header alone: enough for the gateway to file it
(SOP Class and Instance UIDs, PS3.3 C.12.1; Study and Series Instance UIDs, C.7.2.1 and C.7.3.1)
before it is converted. The same lean reader (part10.py) reads it as the conversion will: one
parser decides what an object is and what it says."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConversionError
from . import part10
from .dataset import tag_of
from .dictionary import SR_STORAGE, uid_ok
from .reader import sr_header
from .values import text


@dataclass(frozen=True, slots=True)
class Identity:
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str | None
    series_instance_uid: str | None
    predecessors: tuple[str, ...] = ()
    """The valid SOP Instance UIDs of the Predecessor Documents Sequence (0040,A360, PS3.3
    C.17.2.3): the SRs this one corrects or amends, which must reach FHIR before it."""
    patient_id: str | None = field(default=None, repr=False)
    """Patient ID (0010,0020): for the audit repository alone (gateway/audit.py), never a log."""

    @property
    def is_sr(self) -> bool:
        return self.sop_class_uid in SR_STORAGE


_LAST = tag_of("PredecessorDocumentsSequence")
"""The last header element identification reads (0040,A360); the content tree comes after it."""
_UIDS = {kw: tag_of(kw) for kw in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID")}


def identify(data: bytes, name: str) -> Identity:
    """The identity of a DICOM Part 10 object. Raises ConversionError (naming `name`) when it is
    not one, or lacks a valid SOP Class or Instance UID."""
    if data[128:132] != b"DICM":
        raise ConversionError(f"{name}: not a DICOM Part 10 object (no DICM prefix)", code="not-dicom")
    try:
        parsed = part10.parse(data, stop_after=_LAST)
        ds, meta = parsed.dataset, parsed.meta
        uids = {kw: text(meta if kw.startswith("MediaStorage") else ds, tag) or "" for kw, tag in _UIDS.items()}
        header = sr_header(ds)
    except part10.TooLarge as exc:
        raise ConversionError(f"{name}: {exc}", code="too-large") from None
    except part10.Incomplete as exc:
        raise ConversionError(f"{name}: truncated DICOM header: {exc}", code="truncated") from None
    except Exception as exc:  # corrupt elements, values that cannot be what their VR says: named, never a traceback
        raise ConversionError(f"{name}: corrupt DICOM header ({type(exc).__name__})", code="truncated") from None
    cls = uids["SOPClassUID"] or uids["MediaStorageSOPClassUID"]
    inst = uids["SOPInstanceUID"] or uids["MediaStorageSOPInstanceUID"]
    if not uid_ok(cls) or not uid_ok(inst):
        raise ConversionError(f"{name}: no valid SOP Class UID and SOP Instance UID (0008,0016/0018)", code="not-dicom")
    study, series = (u if uid_ok(u := uids[kw]) else None for kw in ("StudyInstanceUID", "SeriesInstanceUID"))
    predecessors = tuple(dict.fromkeys(p for p in header.predecessors if uid_ok(p) and p != inst))
    return Identity(cls, inst, study, series, predecessors, header.patient_id)
