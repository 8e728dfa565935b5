"""Recognising a TID 1500 Measurement Report (PS3.16 TID 1500) without trusting the template id alone.

A document is a Measurement Report when its root CONTAINER's concept is a CID 7021 document
title, or, failing that, when its structure is TID 1500's (an Imaging Measurements, Derived
Imaging Measurements or Qualitative Evaluations container under the root). The Content Template
Sequence is read leniently ("1500", "TID1500", "TID 1500").
"""

from __future__ import annotations

import re

from . import concepts
from .content import SRDocument
from .dictionary import uid_name
from ..diagnostics import Diagnostics
from ..errors import ConversionError

# CID 7021 Measurement Report Document Titles.
CID_7021: frozenset[tuple[str, str]] = frozenset(
    {("DCM", "126000"), ("DCM", "126001"), ("DCM", "126002"), ("DCM", "126003")}
)

# SR storage SOP classes that can carry TID 1500 (PS3.3 A.35: NUM, SCOORD, IMAGE value types).
TID1500_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR Storage",
}

_TID_1500 = re.compile(r"^(?:TID)?\s*1500$", re.IGNORECASE)


def check_measurement_report(doc: SRDocument, diags: Diagnostics) -> None:
    """Raise ConversionError unless `doc` is a TID 1500 Measurement Report; note any variant."""
    root = doc.root
    template = (root.template or "").strip()
    concept = concepts.key(root.concept)
    top = {concepts.key(c.concept) for c in root.children if c.value_type == "CONTAINER"}
    structural = bool(top & {concepts.IMAGING_MEASUREMENTS, concepts.DERIVED_IMAGING_MEASUREMENTS, concepts.QUALITATIVE_EVALUATIONS})
    by_template = bool(_TID_1500.match(template))
    by_title = concept in CID_7021

    if root.value_type != "CONTAINER" or not (by_title or structural):
        sop = (uid_name(doc.sop_class_uid) or doc.sop_class_uid) if doc.sop_class_uid else "no SOP Class UID"
        title = str(root.concept) if root.concept else "(no concept name)"
        tid = template or "none"
        raise ConversionError(
            f"{doc.source}: not a TID 1500 Measurement Report: SOP class {sop}, root concept {title}, template {tid}",
            code="not-tid1500",
        )
    if template and template != "1500":
        if by_template:
            diags.warn("template-id-variant", f"Template Identifier {template!r} read as '1500'", path=root.path)
        else:
            diags.warn("template-id-mismatch", f"Template Identifier {template!r} is not 1500; recognised by root concept and structure", path=root.path)
    elif not template:
        diags.info("no-template-id", "no Content Template Sequence; recognised by root concept and structure", path=root.path)
    if not by_title:
        diags.warn("root-concept", f"root concept {root.concept} is not a CID 7021 Measurement Report title; recognised by structure", path=root.path)
    if doc.sop_class_uid not in TID1500_SOP_CLASSES:
        diags.warn("sop-class", f"SOP class {doc.sop_class_uid or '(none)'} is not one of the SR classes that can carry TID 1500", path=root.path)
