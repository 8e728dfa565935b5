"""Validation of what sr2fhir emits (or any Bundle / resource / NDJSON), in three layers.

1. Base R5 structure: fhir.resources models (types, cardinality, unknown elements).
2. The IG's profiles: rules read from the StructureDefinition snapshots (profiles.py).
3. Bundle integrity: references resolve inside the Bundle or are conditional / logical
   references to Patient, ImagingStudy, ServiceRequest; no orphans; no duplicate identifiers.
"""

from .validator import Finding, Report, validate_resources

__all__ = ["Finding", "Report", "validate_resources"]
