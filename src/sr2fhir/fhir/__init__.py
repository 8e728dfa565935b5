"""Building FHIR output: ids, references, narratives, bundles."""
