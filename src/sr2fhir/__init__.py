"""sr2fhir: DICOM SR TID 1500 Measurement Reports to FHIR R5 (HL7 IG hl7.fhir.uv.dicom-sr 1.0.0)."""

from .mapping.context import Options
from .mapping.report import Conversion, convert
from .reader import read

__version__ = "0.1.0"
__all__ = ["Conversion", "Options", "convert", "read", "__version__"]
