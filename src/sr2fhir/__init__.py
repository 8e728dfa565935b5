"""sr2fhir: DICOM SR TID 1500 Measurement Reports to FHIR R5 (HL7 IG hl7.fhir.uv.dicom-sr 1.0.0).

    import sr2fhir
    for doc in sr2fhir.read("report.dcm"):         # a path, or a pydicom Dataset
        result = sr2fhir.convert(doc)
        bundle = sr2fhir.bundle(result)              # a transaction Bundle (a dict)
        text = sr2fhir.dumps(bundle)                 # its JSON, decimals exact
"""

from typing import Any

from .fhir.bundle import collection, dumps, transaction
from .mapping.context import Options
from .mapping.report import Conversion, convert
from .dicom.reader import read

__version__ = "0.1.0"
__all__ = ["Conversion", "Options", "bundle", "convert", "dumps", "read", "__version__"]


def bundle(result: Conversion, type: str = "transaction") -> dict[str, Any]:
    """The Bundle of one conversion: `transaction` (POST with ifNoneExist, as `convert` writes it) or `collection`."""
    key = result.document.sop_instance_uid or result.document.source
    if type == "transaction":
        return transaction(result.resources, key)
    if type == "collection":
        return collection(result.resources, key)
    raise ValueError(f"bundle type {type!r}: expected transaction or collection")
