"""The SR header attributes the mapping reads, typed (PS3.3 C.7 Patient/Study/Equipment, C.17.2 SR Document General).

Built once from the header's attributes by keyword (`SRHeader.from_keywords`, as the reader
collects them); the mapping and delivery read these fields, never keywords or pydicom objects.
Every string is stripped, and a multi-valued attribute read where one value is expected gives
its first value, so that one rule applies everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .dictionary import uid_ok


def first(v: Any) -> str | None:
    """A header value as one stripped string: the first of a multi-valued one; None if empty."""
    if isinstance(v, list):
        v = v[0] if v else None
    if v is None or isinstance(v, (dict, list)):
        return None
    s = str(v).strip()
    return s or None


def _items(v: Any) -> list[dict[str, Any]]:
    """The items of a sequence attribute (a list of keyword dicts), skipping anything else."""
    return [i for i in v if isinstance(i, dict)] if isinstance(v, list) else []


def _upper(v: Any) -> str:
    return (first(v) or "").upper()


@dataclass(frozen=True, slots=True)
class Issuer:
    """An issuer of an identifier (HL7v2 Hierarchic Designator Macro, PS3.3 10.14): the first item
    of Issuer of Patient ID Qualifiers (0010,0024) or of Issuer of Accession Number (0008,0051)."""

    local: str | None = None
    """Local Namespace Entity ID (0040,0031)."""
    universal: str | None = None
    """Universal Entity ID (0040,0032)."""
    universal_type: str = ""
    """Universal Entity ID Type (0040,0033), upper case."""

    @classmethod
    def of(cls, seq: Any) -> "Issuer | None":
        if not isinstance(seq, list) or not seq:
            return None
        q = seq[0] if isinstance(seq[0], dict) else {}
        return cls(first(q.get("LocalNamespaceEntityID")), first(q.get("UniversalEntityID")), _upper(q.get("UniversalEntityIDType")))


@dataclass(frozen=True, slots=True)
class Equipment:
    """A device as DICOM describes one: General Equipment (C.7.5.1), a Participant Sequence device
    item (C.17.2.2), or the TID 1004 Device Observer context."""

    manufacturer: str | None = None
    model: str | None = None
    """Manufacturer's Model Name (0008,1090)."""
    serial_number: str | None = None
    device_uid: str | None = None
    """Device UID (0018,1002), when it is a valid UID."""
    observer_name: str | None = None
    """Device Observer Name (TID 1004 121013 / the Participant Sequence's Device Observer Name)."""
    software_versions: tuple[str, ...] = ()
    """Software Versions (0018,1020), every value that is not blank, as written."""
    udis: tuple[str, ...] = ()
    """Unique Device Identifier (0018,1009) of each UDI Sequence (0018,100A) item."""

    @classmethod
    def of(cls, h: dict[str, Any]) -> "Equipment":
        uid = first(h.get("DeviceUID"))
        versions = h.get("SoftwareVersions")
        vs = (versions if isinstance(versions, list) else [versions]) if versions else []
        udis = tuple(u for u in (first(i.get("UniqueDeviceIdentifier")) for i in _items(h.get("UDISequence"))) if u)
        return cls(
            manufacturer=first(h.get("Manufacturer")),
            model=first(h.get("ManufacturerModelName")),
            serial_number=first(h.get("DeviceSerialNumber")),
            device_uid=uid if uid_ok(uid) else None,
            observer_name=first(h.get("DeviceObserverName")),
            software_versions=tuple(str(v) for v in vs if str(v).strip()),
            udis=udis,
        )


@dataclass(frozen=True, slots=True)
class Participant:
    """A Participant Sequence (0040,A07A) item."""

    observer_type: str
    """Observer Type (0040,A084), upper case: PSN or DEV."""
    participation_type: str
    """Participation Type (0040,A080), upper case (SOURCE, ENT, ATTEST)."""
    person_name: str | None
    device: Equipment


@dataclass(frozen=True, slots=True)
class CodingSchemeId:
    """A Coding Scheme Identification Sequence (0008,0110) item."""

    designator: Any
    url: Any
    uid: Any


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    """Where an instance the SR cites sits: study, series and SOP class, from the evidence sequences."""

    study_uid: str | None
    series_uid: str | None
    sop_class_uid: str | None


@dataclass(frozen=True, slots=True)
class SRHeader:
    """What the mapping reads of an SR's header."""

    patient_id: str | None = None
    issuer_of_patient_id: str | None = None
    """Issuer of Patient ID (0010,0021)."""
    patient_id_issuer: Issuer | None = None
    """Issuer of Patient ID Qualifiers Sequence (0010,0024)."""
    accession_number: str | None = None
    accession_issuer: Issuer | None = None
    equipment: Equipment = Equipment()
    participants: tuple[Participant, ...] = ()
    preliminary_flag: str = ""
    completion_flag: str = ""
    content_date: str | None = None
    content_time: str | None = None
    instance_creation_date: str | None = None
    instance_creation_time: str | None = None
    timezone_offset: str | None = None
    """Timezone Offset From UTC (0008,0201)."""
    coding_schemes: tuple[CodingSchemeId, ...] = ()
    evidence: dict[str, EvidenceRef] = field(default_factory=dict)
    """Referenced SOP Instance UID -> where it sits, from the Current Requested Procedure Evidence
    (0040,A375) and Pertinent Other Evidence (0040,A385) Sequences (the Hierarchical SOP
    Instance Reference Macro); valid UIDs only, the first mention of an instance wins."""
    predecessors: tuple[str, ...] = ()
    """SOP Instance UIDs of the Predecessor Documents Sequence (0040,A360): the SRs this one corrects."""

    @classmethod
    def from_keywords(cls, h: dict[str, Any]) -> "SRHeader":
        """The typed header of the attributes by keyword (strings, lists, lists of dicts for sequences)."""
        participants = tuple(
            Participant(_upper(p.get("ObserverType")), _upper(p.get("ParticipationType")), first(p.get("PersonName")), Equipment.of(p))
            for p in _items(h.get("ParticipantSequence"))
        )
        schemes = tuple(
            CodingSchemeId(i.get("CodingSchemeDesignator"), i.get("CodingSchemeURL"), i.get("CodingSchemeUID"))
            for i in _items(h.get("CodingSchemeIdentificationSequence"))
        )
        return cls(
            patient_id=first(h.get("PatientID")),
            issuer_of_patient_id=first(h.get("IssuerOfPatientID")),
            patient_id_issuer=Issuer.of(h.get("IssuerOfPatientIDQualifiersSequence")),
            accession_number=first(h.get("AccessionNumber")),
            accession_issuer=Issuer.of(h.get("IssuerOfAccessionNumberSequence")),
            equipment=Equipment.of(h),
            participants=participants,
            preliminary_flag=_upper(h.get("PreliminaryFlag")),
            completion_flag=_upper(h.get("CompletionFlag")),
            content_date=first(h.get("ContentDate")),
            content_time=first(h.get("ContentTime")),
            instance_creation_date=first(h.get("InstanceCreationDate")),
            instance_creation_time=first(h.get("InstanceCreationTime")),
            timezone_offset=first(h.get("TimezoneOffsetFromUTC")),
            coding_schemes=schemes,
            evidence=_evidence(h),
            predecessors=_predecessors(h),
        )


def _evidence(h: dict[str, Any]) -> dict[str, EvidenceRef]:
    out: dict[str, EvidenceRef] = {}
    for kw in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in _items(h.get(kw)):
            suid = first(study.get("StudyInstanceUID"))
            for series in _items(study.get("ReferencedSeriesSequence")):
                ser = first(series.get("SeriesInstanceUID"))
                for sop in _items(series.get("ReferencedSOPSequence")):
                    iuid = first(sop.get("ReferencedSOPInstanceUID"))
                    cls = first(sop.get("ReferencedSOPClassUID"))
                    if uid_ok(iuid):
                        out.setdefault(str(iuid), EvidenceRef(suid if uid_ok(suid) else None, ser if uid_ok(ser) else None, cls if uid_ok(cls) else None))
    return out


def _predecessors(h: dict[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    for study in _items(h.get("PredecessorDocumentsSequence")):
        for series in _items(study.get("ReferencedSeriesSequence")):
            for sop in _items(series.get("ReferencedSOPSequence")):
                uid = first(sop.get("ReferencedSOPInstanceUID"))
                if uid:
                    out.append(str(uid))
    return tuple(out)
