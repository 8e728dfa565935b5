"""sr2fhir: DICOM SR TID 1500 Measurement Reports to FHIR R5 (HL7 IG hl7.fhir.uv.dicom-sr 1.0.0).

    import sr2fhir
    for doc in sr2fhir.read("report.dcm"):         # a path, or a pydicom Dataset
        result = sr2fhir.convert(doc)               # fhir_version="R4" for R4
        bundle = sr2fhir.bundle(result)              # a transaction Bundle (a dict)
        text = sr2fhir.dumps(bundle)                 # its JSON, decimals exact

The names are imported when first used, so that `import sr2fhir` (and `sr2fhir --version`)
stays light: pydicom is loaded only when something is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Conversion", "ConversionError", "Options", "Sr2fhirError", "bundle", "convert", "dumps", "read", "__version__"]

if TYPE_CHECKING:
    from .fhir.bundle import dumps
    from .settings import Options
    from .batch import convert_document as convert
    from .mapping.report import Conversion
    from .dicom.reader import read
    from .errors import ConversionError, Sr2fhirError

_LAZY = {
    "Options": ("settings", "Options"),
    "Conversion": ("mapping.report", "Conversion"),
    "convert": ("batch", "convert_document"),
    "read": ("dicom.reader", "read"),
    "dumps": ("fhir.bundle", "dumps"),
    "ConversionError": ("errors", "ConversionError"),
    "Sr2fhirError": ("errors", "Sr2fhirError"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value  # once imported, an attribute like any other (pdoc reads __dict__)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def bundle(result: "Conversion", type: str = "transaction") -> dict[str, Any]:
    """The Bundle of one conversion.

    Parameters
    ----------
    result : Conversion
        What ``sr2fhir.convert`` returned.
    type : {"transaction", "collection"}
        ``transaction``: every entry a POST with ``ifNoneExist`` on the resource's identity, as
        ``sr2fhir convert`` writes it (convert with the default Options); ``collection``: convert
        with ``Options(conditional_references=False)``.

    Returns
    -------
    dict
        The Bundle, as FHIR JSON (write it with ``sr2fhir.dumps``).

    Raises
    ------
    ValueError
        An unknown ``type``.
    """
    from .fhir.bundle import collection, transaction

    key = result.document.sop_instance_uid or result.document.source
    if type == "transaction":
        return transaction(result.resources, key)
    if type == "collection":
        return collection(result.resources, key)
    raise ValueError(f"bundle type {type!r}: expected transaction or collection")
