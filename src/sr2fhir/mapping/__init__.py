"""Mapping of a TID 1500 content tree to FHIR resources, one module per IG section."""
