"""Every diagnostic branch of mapping/imaging_selections.py, planted one at a time (issue 25,
mutation testing): the region or reference that cannot be mapped as it stands is reported with
its rule, at its content item, with its concept and an action, and the rest of the group is still
mapped. Graphic Data counts are those of PS3.3 C.18.6.1.2 (2D) and C.18.9.1.2 (3D)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sr2fhir.dicom.content import Code, MeasuredValue, SopReference, SpatialCoordinates
from tests.helpers import Converted, convert_doc, document, group, item

CT = "1.2.840.10008.5.1.4.1.1.2"
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
RTSS = "1.2.840.10008.5.1.4.1.1.481.3"
RWVM = "1.2.840.10008.5.1.4.1.1.67"
FOR = "2.25.500"
IMAGE_REGION = Code("111030", "DCM", "Image Region")
DIAMETER = Code("81827009", "SCT", "Diameter")
MM = Code("mm", "UCUM", "millimeter")


def image(uid: str = "2.25.9", sop_class: str = CT, **kw: Any) -> Any:
    return item("SELECTED FROM", "IMAGE", None, SopReference(sop_class, uid, **kw))


def scoord(kind: str, data: list[float], children: list[Any] | None = None) -> Any:
    return item("CONTAINS", "SCOORD", IMAGE_REGION, SpatialCoordinates(kind, data), [image()] if children is None else children)


def scoord3d(kind: str, data: list[float], frame: str | None = FOR, concept: Code = IMAGE_REGION) -> Any:
    return item("CONTAINS", "SCOORD3D", concept, SpatialCoordinates(kind, data, frame))


def mapped(region: Any) -> tuple[Converted, Any]:
    """A group of one NUM (1.1.1.1) and `region` (1.1.1.2)."""
    num = item("CONTAINS", "NUM", DIAMETER, MeasuredValue("4", unit=MM))
    c = convert_doc(document(group(num, region)))
    return c, region


CASES: dict[str, tuple[Any, str, bool]] = {
    # name: (the region item, the rule, whether an ImagingSelection is still made for it)
    "scoord-without-image": (scoord("POINT", [1, 1], children=[]), "scoord-without-image", False),
    "nan-2d": (scoord("POLYLINE", [1, 1, math.nan, 2]), "bad-graphic-data", False),
    "odd-2d-count": (scoord("POLYLINE", [1, 1, 2]), "bad-graphic-data", False),
    "point-with-two-points": (scoord("POINT", [1, 1, 2, 2]), "bad-graphic-data", False),
    "circle-with-three-points": (scoord("CIRCLE", [1, 1, 2, 2, 3, 3]), "bad-graphic-data", False),
    "ellipse-with-three-points": (scoord("ELLIPSE", [1, 1, 2, 2, 3, 3]), "bad-graphic-data", False),
    "unknown-2d-type": (scoord("SPLINE", [1, 1, 2, 2]), "bad-graphic-data", False),
    "inf-3d": (scoord3d("POINT", [1, math.inf, 2]), "bad-graphic-data", True),
    "point-3d-with-two": (scoord3d("POINT", [1, 1, 1, 2, 2, 2]), "bad-graphic-data", True),
    "ellipse-3d-with-three": (scoord3d("ELLIPSE", [1, 1, 1, 2, 2, 2, 3, 3, 3]), "bad-graphic-data", True),
    "ellipsoid-3d-with-four": (scoord3d("ELLIPSOID", [float(i) for i in range(12)]), "bad-graphic-data", True),
    "polyline-3d-not-triplets": (scoord3d("POLYLINE", [1, 1, 1, 2, 2]), "bad-graphic-data", True),
    "3d-without-frame": (scoord3d("POINT", [1, 1, 1], frame=None), "scoord3d-without-frame", False),
    "rwvm-of-an-image": (item("CONTAINS", "COMPOSITE", Code("126100", "DCM", "Real World Value Map used for measurement"), SopReference(CT, "2.25.8")),
                         "profile-not-claimed", True),
    "segment-without-number": (item("CONTAINS", "IMAGE", Code("121191", "DCM", "Referenced Segment"), SopReference(SEG, "2.25.7")), "no-segment-number", True),
    "segmentation-frame": (item("CONTAINS", "IMAGE", Code("121214", "DCM", "Referenced Segmentation Frame"), SopReference(SEG, "2.25.7", frames=[3], segments=[1])),
                           "segmentation-frame-not-carried", True),
    "image-without-instance": (item("CONTAINS", "IMAGE", Code("121200", "DCM", "Illustration of ROI"), SopReference(CT, None)), "no-referenced-instance", False),
}


@pytest.mark.parametrize("name", CASES)
def test_each_unmappable_region_is_reported_at_its_item(name: str) -> None:
    region, rule, selection = CASES[name]
    c, region = mapped(region)
    found = [d for d in c.diagnostics.items if d.rule == rule]
    assert len(found) == 1, [(d.rule, d.path) for d in c.diagnostics.items]
    d = found[0]
    assert (d.severity.fhir, d.path, d.concept) == ("warning", "1.1.1.2", str(region.concept))
    assert d.message and d.action, (d.message, d.action)
    # Nothing else goes wrong (a segment without its number cannot claim its profile either: subset 1..1).
    also = {"profile-not-claimed"} if name == "segment-without-number" else set()
    assert {x.rule for x in c.diagnostics.items if x.severity.fhir == "warning"} == {rule} | also
    (m,) = c.profile("imaging-measurement")  # the measurement itself is kept
    selections = c.of_type("ImagingSelection")
    assert bool(selections) is selection
    if rule == "profile-not-claimed":
        assert "profile" not in selections[0].get("meta", {}) and d.action == "ImagingSelection emitted without meta.profile"
        assert d.message.startswith("real-world-value-map needs")
    if rule == "bad-graphic-data" and region.value_type == "SCOORD3D":
        # The 3D frame is kept without coordinates: never coordinates that mean something else (D-51).
        assert selections[0]["frameOfReferenceUid"] == FOR and "extension" not in selections[0]
        assert "frameOfReferenceUid kept" in d.action
    if name == "segment-without-number":
        assert selections[0]["instance"] == [{"uid": "2.25.7", "sopClass": selections[0]["instance"][0]["sopClass"]}]
    if name == "segmentation-frame":
        assert selections[0]["instance"][0]["subset"] == ["1"] and "3" in d.message


def test_an_rwvm_selection_of_rwvm_instances_claims_its_profile() -> None:
    c, _ = mapped(item("CONTAINS", "COMPOSITE", Code("126100", "DCM", "Real World Value Map used for measurement"), SopReference(RWVM, "2.25.8")))
    (sel,) = c.of_type("ImagingSelection")
    assert sel["meta"]["profile"][0].endswith("real-world-value-map") and not c.diagnostics.items


def test_a_region_in_space_keeps_the_true_rtss_uid_and_says_why_it_claims_nothing() -> None:
    roi = item("HAS PROPERTIES", "TEXT", Code("130489", "DCM", "Referenced Region of Interest Identifier"), "7")
    c, region = mapped(item("CONTAINS", "COMPOSITE", Code("130488", "DCM", "Region in Space"), SopReference(RTSS, "2.25.6"), [roi]))
    (sel,) = c.of_type("ImagingSelection")
    assert "profile" not in sel.get("meta", {}) and sel["instance"][0]["subset"] == ["7"] and sel["instance"][0]["sopClass"]["code"] == RTSS  # the true UID (D-25), bare as the IG writes it
    (d,) = c.diagnostics.items
    assert (d.rule, d.path, d.concept, d.action) == ("region-in-space-sop-class-typo", "1.1.1.2", str(region.concept), "ImagingSelection emitted without meta.profile")
    assert "(D-25)" in d.message and "I-9" in d.message and d.message.startswith("region-in-space fixes")


def test_a_roi_identifier_that_is_not_text_is_not_a_subset() -> None:
    """Only the Text Value of 130489 names an ROI (TID 1411 row); another TEXT child is not one."""
    roi = item("HAS PROPERTIES", "TEXT", Code("130489", "DCM", "Referenced Region of Interest Identifier"), "7")
    other = item("HAS PROPERTIES", "TEXT", Code("121106", "DCM", "Comment"), "not an ROI")
    c, _ = mapped(item("CONTAINS", "COMPOSITE", Code("130488", "DCM", "Region in Space"), SopReference(RTSS, "2.25.6"), [roi, other]))
    (sel,) = c.of_type("ImagingSelection")
    assert sel["instance"][0]["subset"] == ["7"]
