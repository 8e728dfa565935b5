"""The concepts of PS3.16 that sr2fhir recognises in an SR, as (Coding Scheme Designator, Code Value)
keys, each with the template row that defines it; legacy SNOMED-RT codes are read as SNOMED CT."""

from __future__ import annotations

from .content import Code
from .dictionary import srt_to_sct

K = tuple[str, str]

IMAGING_MEASUREMENT_REPORT: K = ("DCM", "126000")  # TID 1500 root, CID 7021
IMAGING_MEASUREMENTS: K = ("DCM", "126010")  # TID 1500 row 6
DERIVED_IMAGING_MEASUREMENTS: K = ("DCM", "126011")  # TID 1500 row 7
QUALITATIVE_EVALUATIONS: K = ("UMLS", "C0034375")  # TID 1500 row 8
MEASUREMENT_GROUP: K = ("DCM", "125007")  # TID 1410/1411/1501 row 1
LANGUAGE: K = ("DCM", "121049")
COUNTRY_OF_LANGUAGE: K = ("DCM", "121046")
PROCEDURE_REPORTED: K = ("DCM", "121058")
IMAGE_LIBRARY: K = ("DCM", "111028")
SOURCE_OF_MEASUREMENT: K = ("DCM", "121112")  # TID 300 row 8 (INFERRED FROM IMAGE), TID 1419
STRUCTURE: frozenset[K] = frozenset({LANGUAGE, COUNTRY_OF_LANGUAGE, PROCEDURE_REPORTED, IMAGE_LIBRARY})
"""Document structure, not clinical content: reported as information when not mapped (TID 1500
rows 2-4 and TID 1204 Language of Content)."""

# TID 1001 / 1002 / 1004 Observation Context
OBSERVER_TYPE: K = ("DCM", "121005")
PERSON: K = ("DCM", "121006")
DEVICE: K = ("DCM", "121007")
PERSON_OBSERVER_NAME: K = ("DCM", "121008")
DEVICE_OBSERVER_UID: K = ("DCM", "121012")
DEVICE_OBSERVER_NAME: K = ("DCM", "121013")
DEVICE_OBSERVER_MANUFACTURER: K = ("DCM", "121014")
DEVICE_OBSERVER_MODEL_NAME: K = ("DCM", "121015")
DEVICE_OBSERVER_SERIAL_NUMBER: K = ("DCM", "121016")

# TID 4019 Algorithm Identification
ALGORITHM_NAME: K = ("DCM", "111001")
ALGORITHM_VERSION: K = ("DCM", "111003")
ALGORITHM_PARAMETERS: K = ("DCM", "111002")
ALGORITHM_FAMILY: K = ("DCM", "111000")
ALGORITHM_MANUFACTURER: K = ("DCM", "122405")
ALGORITHM_CODES: frozenset[K] = frozenset(
    {ALGORITHM_NAME, ALGORITHM_VERSION, ALGORITHM_PARAMETERS, ALGORITHM_FAMILY, ALGORITHM_MANUFACTURER}
)

# TID 1410/1411/1501 group rows
TRACKING_IDENTIFIER: K = ("DCM", "112039")
TRACKING_UID: K = ("DCM", "112040")
FINDING_CATEGORY: K = ("SCT", "276214006")
FINDING: K = ("DCM", "121071")
MEASUREMENT_METHOD: K = ("SCT", "370129005")
FINDING_SITE: K = ("SCT", "363698007")
LATERALITY: K = ("SCT", "272741003")
TOPOGRAPHICAL_MODIFIER: K = ("SCT", "106233006")
GEOMETRIC_PURPOSE: K = ("DCM", "130400")
ACTIVITY_SESSION: K = ("NCIt", "C67447")
TIME_POINT: K = ("DCM", "126072")
DERIVATION: K = ("DCM", "121401")
SOURCE_SERIES_FOR_SEGMENTATION: K = ("DCM", "121232")
SOURCE_IMAGE_FOR_SEGMENTATION: K = ("DCM", "121233")
REFERENCED_ROI_IDENTIFIER: K = ("DCM", "130489")
IMAGE_REGION: K = ("DCM", "111030")

SNOMED_RT_DESIGNATORS = frozenset({"SRT", "SNM3", "99SDM"})


def key(code: Code | None) -> K | None:
    """(scheme, value), with legacy SNOMED-RT codes (SRT) translated to SNOMED CT (SCT)."""
    if code is None:
        return None
    if code.scheme in SNOMED_RT_DESIGNATORS:
        sct = srt_to_sct(code.value)
        if sct:
            return ("SCT", sct)
    return (code.scheme, code.value)


# Exclusion list for qualitative evaluations (IG architecture.md "Qualitative Evaluations"),
# plus the context concepts that DICOM places at the same level (docs/decisions.md D-3).
NOT_QUALITATIVE: frozenset[K] = frozenset(
    {
        TRACKING_IDENTIFIER,
        FINDING,
        GEOMETRIC_PURPOSE,
        ACTIVITY_SESSION,
        FINDING_CATEGORY,
        FINDING_SITE,
        MEASUREMENT_METHOD,
        TRACKING_UID,
        LATERALITY,
        TOPOGRAPHICAL_MODIFIER,
        DERIVATION,
        LANGUAGE,
        OBSERVER_TYPE,
        TIME_POINT,
        SOURCE_SERIES_FOR_SEGMENTATION,
        REFERENCED_ROI_IDENTIFIER,
    }
    | ALGORITHM_CODES
)
