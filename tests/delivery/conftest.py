"""The delivery tests use the session's HAPI FHIR server (`fhir_url`, `fhir` in tests/conftest.py)."""
