"""What a received DICOM object is, read from its header alone: enough for the gateway to file it
(SOP Class and Instance UIDs, PS3.3 C.12.1; Study and Series Instance UIDs, C.7.2.1 and C.7.3.1)
before it is converted."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import ConversionError
from . import part10
from .dictionary import SR_STORAGE, uid_ok


@dataclass(frozen=True, slots=True)
class Identity:
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str | None
    series_instance_uid: str | None
    predecessors: tuple[str, ...] = ()
    patient_id: str | None = field(default=None, repr=False)
    """Patient ID (0010,0020): for the audit repository alone (gateway/audit.py), never a log."""
    """The valid SOP Instance UIDs of the Predecessor Documents Sequence (0040,A360, PS3.3
    C.17.2.3): the SRs this one corrects or amends, which must reach FHIR before it."""

    @property
    def is_sr(self) -> bool:
        return self.sop_class_uid in SR_STORAGE


_WANTED = ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PredecessorDocumentsSequence", "PatientID"]


def identify(data: bytes, name: str) -> Identity:
    """The identity of a DICOM Part 10 object. Raises ConversionError (naming `name`) when it is
    not one, or lacks a valid SOP Class or Instance UID."""
    try:
        # pydicom inflates a Deflated data set whole before it reads a tag: bounded first.
        part10.check_inflation(data)
    except part10.TooLarge as exc:
        raise ConversionError(f"{name}: {exc}", code="too-large") from None
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=_WANTED)
        values = {k: ds.get(k) for k in _WANTED}
        if not values["SOPClassUID"]:
            values["SOPClassUID"] = ds.file_meta.get("MediaStorageSOPClassUID")
        if not values["SOPInstanceUID"]:
            values["SOPInstanceUID"] = ds.file_meta.get("MediaStorageSOPInstanceUID")
        predecessors = tuple(
            str(sop.ReferencedSOPInstanceUID)
            for study in values["PredecessorDocumentsSequence"] or ()
            for series in study.get("ReferencedSeriesSequence") or ()
            for sop in series.get("ReferencedSOPSequence") or ()
            if uid_ok(str(sop.get("ReferencedSOPInstanceUID", "")))
        )
    except InvalidDicomError:
        raise ConversionError(f"{name}: not a DICOM Part 10 object (no DICM prefix)", code="not-dicom") from None
    except Exception as exc:  # pydicom raises many types on corrupt input
        raise ConversionError(f"{name}: corrupt DICOM header ({type(exc).__name__})", code="truncated") from None
    cls, inst = (str(values[k]) if values[k] else "" for k in ("SOPClassUID", "SOPInstanceUID"))
    if not uid_ok(cls) or not uid_ok(inst):
        raise ConversionError(f"{name}: no valid SOP Class UID and SOP Instance UID (0008,0016/0018)", code="not-dicom")
    study, series = (str(values[k]) if values[k] and uid_ok(str(values[k])) else None for k in ("StudyInstanceUID", "SeriesInstanceUID"))
    patient = str(values["PatientID"]).strip() if values["PatientID"] else None
    return Identity(cls, inst, study, series, tuple(dict.fromkeys(p for p in predecessors if p != inst)), patient or None)
