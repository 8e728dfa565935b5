"""Code systems and the fixed concepts of the IG and of PS3.16.

Tables, not if-chains: the concept names that drive the mapping are listed once here, each with
the template row or IG profile that defines it.
"""

from __future__ import annotations

import re
from typing import Any

from .dicom.content import Code
from .dicom.concepts import SNOMED_RT_DESIGNATORS
from .dicom.dictionary import srt_to_sct, uid_name
from .dicom.header import CodingSchemeId
from .ig_facts import PATTERNS

# FHIR system URIs.
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
UMLS = "http://terminology.hl7.org/CodeSystem/umls"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DICOM_UID = "urn:dicom:uid"
SOP_CLASS_SYSTEM = "https://dicom.nema.org/medical/dicom/current/output/chtml/part04/sect_B.5"
IG_BASE = "http://hl7.org/fhir/uv/dicom-sr"
IDENTIFIER_TYPE_SYSTEM = f"{IG_BASE}/CodeSystem/dicom-identifier-type"
RFC3986 = "urn:ietf:rfc:3986"

# Coding Scheme Designator (0008,0102) -> FHIR system. PS3.16 Section 8 "Coding Schemes" and HL7
# THO; UMLS, NCIt and RadLex as the IG's examples spell them (they must match the IG patterns).
CODING_SCHEMES: dict[str, str] = {
    "DCM": DCM,
    "SCT": SCT,
    "SNM3": "http://snomed.info/srt",
    "LN": LOINC,
    "UCUM": UCUM,
    "UMLS": UMLS,
    "NCIt": NCIT,
    "RADLEX": "http://radlex.org",
    "RadLex": "http://radlex.org",
    "RADLEX_PLAYBOOK": "http://radlex.org",
    "RFC5646": "urn:ietf:bcp:47",
    "ISO3166_1": "urn:iso:std:iso:3166",
    "ISO639_1": "urn:iso:std:iso:639-1",
    "ISO639_2": "urn:iso:std:iso:639-2",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "I10P": "http://www.cms.gov/Medicare/Coding/ICD10",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "NCDR": "urn:oid:2.16.840.1.113883.3.3478.6.1",
    "FMA": "http://purl.org/sig/ont/fma",
    "MDC": "urn:iso:std:iso:11073:10101",
    "HL7": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "ACR": "urn:oid:2.16.840.1.113883.6.76",
}

UNKNOWN_SCHEME_PREFIX = "urn:dicom:coding-scheme:"
"""Fallback system for a designator that neither the table nor the SR's Coding Scheme
Identification Sequence resolves (docs/decisions.md D-17)."""


_LEADING_ANNOTATION = re.compile(r"^(\{[^{}]*\})(?=[^./])")


class CodingSchemes:
    """Resolves Coding Scheme Designators for one report.

    Order: user overrides, the table above, the report's Coding Scheme Identification Sequence
    (0008,0110: Coding Scheme URL, else Coding Scheme UID as urn:oid), then the fallback prefix.
    """

    def __init__(self, identification: tuple[CodingSchemeId, ...] = (), overrides: dict[str, str] | None = None) -> None:
        self.map = dict(CODING_SCHEMES)
        self.unresolved: set[str] = set()
        self.repaired_units: set[str] = set()
        self.untranslated: set[str] = set()
        """SNOMED-RT codes without a SNOMED CT equivalent in PS3.16 Annex O."""
        self._codings: dict[Code, dict[str, Any]] = {}
        for item in identification:
            designator = item.designator
            if not designator or designator in self.map:
                continue
            url, uid = item.url, item.uid
            if url and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", str(url)):
                self.map[designator] = str(url)
            elif uid:
                self.map[designator] = f"urn:oid:{uid}"
        self.map.update(overrides or {})

    def system(self, designator: str) -> str:
        s = self.map.get(designator)
        if s is None:
            self.unresolved.add(designator)
            s = UNKNOWN_SCHEME_PREFIX + (designator or "unknown")
        return s

    def unit_code(self, system: str, value: str) -> str:
        """Quantity.code for a unit; a UCUM code DICOM writes with a leading annotation is repaired.

        CID 85 writes SUV units as `{SUVbw}g/ml`: UCUM lets an annotation stand alone only
        between operators, so FHIR validators (org.fhir.ucum) refuse it. `{SUVbw}.g/ml` is the
        same unit (an annotation is 1) in valid UCUM (docs/decisions.md D-31).
        """
        if system == UCUM:
            fixed = _LEADING_ANNOTATION.sub(r"\1.", value)
            if fixed != value:
                self.repaired_units.add(value)
                return fixed
        return value

    def coding(self, code: Code) -> dict[str, Any]:
        """The Coding of a code. One dict for each distinct code of the report, shared by the
        resources that use it (a report names a concept thousands of times): never changed after."""
        c = self._codings.get(code)
        if c is None:
            c = self._codings[code] = self._coding(code)
        return c

    def _coding(self, code: Code) -> dict[str, Any]:
        scheme, value = code.scheme, " ".join(code.value.split())
        if scheme in SNOMED_RT_DESIGNATORS:
            sct = srt_to_sct(value)
            if not sct and value:
                self.untranslated.add(value)
            scheme, value = ("SCT", sct) if sct else ("SNM3", value)
        c: dict[str, Any] = {"system": self.system(scheme)}
        if value:
            c["code"] = value
        if code.version and code.scheme not in ("DCM", "SCT", "SRT"):
            c["version"] = code.version
        if code.meaning:
            c["display"] = code.meaning
        return c

    def concept(self, code: Code) -> dict[str, Any]:
        """A CodeableConcept; a code without a Code Value keeps only its meaning as text."""
        if not code.value.strip():
            return {"text": code.meaning or "(no code value in the SR)"}
        return {"coding": [self.coding(code)]}


# Fixed codings: those of the IG's profiles (their patterns, from ig_facts, which include the
# display), and two of sr2fhir's own choices.
_P = PATTERNS
FIXED: dict[str, dict[str, str]] = {
    "measurement-group": _P["imaging-measurement-group"]["Observation.category"],
    "qualitative-evaluations": _P["imaging-qualitative-evaluation"]["Observation.category"],
    "derived-imaging-measurements": _P["derived-imaging-measurement"]["Observation.category"],
    "study-instance-uid": _P["imaging-observation"]["Observation.partOf:imagingStudyRef.identifier.type"],
    "accession-id": _P["imaging-observation"]["Observation.basedOn:serviceRequestRef.identifier.type"],
    "observation-uid": _P["imaging-observation"]["Observation.identifier:observationUID.type"],
    "tracking-identifier": _P["dicom-sr-finding-site"]["BodyStructure.identifier:trackingIdentifier.type"],
    "tracking-uid": _P["dicom-sr-finding-site"]["BodyStructure.identifier:trackingUid.type"],
    "original-source": _P["source-sr-content-item"]["ImagingSelection.code.coding"],
    # sr2fhir's: the participant device's Device UID as a UDI (D-28), Algorithm Parameters (D-15).
    "udi": {"system": V2_0203, "code": "UDI", "display": "Universal Device Identifier"},
    "algorithm-parameters": {"system": DCM, "code": "111002", "display": "Algorithm Parameters"},
}


# SOP Class names for ImagingSelection.instance.sopClass displays: pydicom's UID dictionary, with
# the names the IG fixes where they differ.
SOP_CLASS_DISPLAY_OVERRIDES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.67": "Real World Value Mapping Storage",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set Storage",
}


def sop_class_coding(uid: str) -> dict[str, str]:
    """ImagingSelection.instance.sopClass (IG profiles: system sect_B.5, bare UID)."""
    display = SOP_CLASS_DISPLAY_OVERRIDES.get(uid)
    if display is None:
        display = uid_name(uid) or ""
    c = {"system": SOP_CLASS_SYSTEM, "code": uid}
    if display:
        c["display"] = display
    return c




def urn_oid(uid: str) -> str:
    return f"urn:oid:{uid}"
