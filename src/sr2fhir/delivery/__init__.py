"""Delivery of converted reports to FHIR servers (client, push)."""
