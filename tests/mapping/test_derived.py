"""DerivedImagingMeasurement (TID 1420, ConceptMap 06)."""

from __future__ import annotations

from typing import Any

from sr2fhir.dicom.content import Code, MeasuredValue
from tests.helpers import Converted, codings, convert_doc, document, group, item

DERIVED = Code("126011", "DCM", "Derived Imaging Measurements")
PEAK = Code("126031", "DCM", "Peak Value Within ROI")


def test_derived_with_nested_group(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1501_containers"]
    exp = manifest["fixtures"]["tid1501_containers"]["derived"]
    d = c.one("derived-imaging-measurement")
    assert codings(d["code"])[0][1] == exp["code"]
    assert float(d["valueQuantity"]["value"]) == exp["value"] and d["valueQuantity"]["code"] == exp["unit"]
    assert d["category"][0]["coding"][0] == {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "126011", "display": "Derived Imaging Measurements"}
    (src,) = [c.resolve(r) for r in d["derivedFrom"]]
    assert src["meta"]["profile"][0].endswith("imaging-measurement-group")
    (nested,) = [c.resolve(m) for m in src["hasMember"]]
    assert float(nested["valueQuantity"]["value"]) == exp["nested_diameter"]
    # The participant device is not allowed here (profile): general equipment instead (D-7).
    assert c.resolve(d["device"])["meta"]["profile"][0].endswith("dicom-general-equipment")


def test_by_reference_group() -> None:
    """A derived NUM that points at a group by reference (Q-26) derives from that group's Observation."""
    g = group(item("CONTAINS", "NUM", Code("81827009", "SCT", "Diameter"), MeasuredValue("3")))
    ref = item("INFERRED FROM", None, None, reference=[1, 1, 1])  # type: ignore[arg-type]
    num = item("CONTAINS", "NUM", PEAK, MeasuredValue("7"), [ref])
    doc = document(g)
    derived = item("CONTAINS", "CONTAINER", DERIVED, children=[num])
    doc.root.children.append(derived)
    derived.path, num.path, ref.path = "1.2", "1.2.1", "1.2.1.1"
    c = convert_doc(doc)
    d = c.one("derived-imaging-measurement")
    assert [c.resolve(r) for r in d["derivedFrom"]] == [c.one("imaging-measurement-group")]


def test_derived_without_groups_drops_the_profile_claim() -> None:
    num = item("CONTAINS", "NUM", PEAK, MeasuredValue("7"))
    doc = document(item("CONTAINS", "CONTAINER", DERIVED, children=[num]), measurements=False)
    c = convert_doc(doc)
    (obs,) = c.of_type("Observation")
    assert "profile" not in obs.get("meta", {}) and "derived-without-groups" in c.rules()
