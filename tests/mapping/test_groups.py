"""ImagingMeasurementGroup (ConceptMap 03) from the fixtures and hand-built groups."""

from __future__ import annotations


from sr2fhir.dicom.content import Code, MeasuredValue, SopReference
from sr2fhir.diagnostics import Severity
from tests.helpers import Converted, codings, convert_doc, document, group, item

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"
GROUP_CATEGORY = [{"coding": [{"system": DCM, "code": "125007", "display": "Measurement Group"}]}]


def test_group_rows(fixture_conversions: dict[str, Converted]) -> None:
    c = fixture_conversions["tid1410_planar_regions"]
    for g in c.profile("imaging-measurement-group"):
        assert g["category"] == GROUP_CATEGORY
        assert codings(g["code"]) == [(SCT, "49755003")]  # Finding Category -> code
        assert codings(g["valueCodeableConcept"]) == [(SCT, "27925004")]  # Finding -> value
        assert codings(g["method"]) == [(SCT, "258104002")]  # Measurement Method -> method
        members = [c.resolve(m) for m in g["hasMember"]]
        assert [m["meta"]["profile"][0].rsplit("/", 1)[-1] for m in members] == ["imaging-measurement", "imaging-qualitative-evaluation"]
        assert all(m["method"] == g["method"] for m in members if "valueQuantity" in m)  # inherited (diagram 4_6)


def test_group_code_defaults_to_measurement_group() -> None:
    """No Finding Category: code = DCM 125007 'Measurement Group', category still emitted (Q-20)."""
    num = item("CONTAINS", "NUM", Code("81827009", "SCT", "Diameter"), MeasuredValue("4", unit=Code("mm", "UCUM", "mm")))
    c = convert_doc(document(group(num)))
    g = c.one("imaging-measurement-group")
    assert g["code"] == GROUP_CATEGORY[0] and g["category"] == GROUP_CATEGORY


def test_empty_group_still_an_observation() -> None:
    c = convert_doc(document(group()))
    g = c.one("imaging-measurement-group")
    assert "hasMember" not in g


def test_unknown_group_rows_become_components() -> None:
    """A group row the IG does not map, with a value a component can carry, is kept (D-33)."""
    date = item("CONTAINS", "DATE", Code("111018", "DCM", "Content Date"), "20240101")
    c = convert_doc(document(group(date)))
    g = c.one("imaging-measurement-group")
    assert g["component"] == [{"code": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "111018", "display": "Content Date"}]}, "valueDateTime": "2024-01-01T00:00:00+00:00"}]
    assert "text" not in g["code"]  # a group's code is its Finding Category alone
    assert "not-mapped" not in c.rules()


def test_unmappable_group_rows_are_warnings() -> None:
    """A row that can be neither an IG element nor a component is shown by a default run."""
    source = item("CONTAINS", "IMAGE", Code("260753009", "SCT", "Source"), SopReference("1.2.840.10008.5.1.4.1.1.2", "2.25.9"))
    c = convert_doc(document(group(source)))
    (d,) = [d for d in c.diagnostics.items if d.rule == "not-mapped"]
    assert d.path == "1.1.1.1" and "260753009" in (d.concept or "") and d.severity == Severity.WARNING


def test_group_person_observer_overrides_performer() -> None:
    person = item("HAS OBS CONTEXT", "PNAME", Code("121008", "DCM", "Person Observer Name"), "Other^Olga")
    num = item("CONTAINS", "NUM", Code("81827009", "SCT", "Diameter"), MeasuredValue("4"))
    root_person = item("HAS OBS CONTEXT", "PNAME", Code("121008", "DCM", "Person Observer Name"), "Main^Max")
    doc = document(group(person, num))
    doc.root.children.insert(0, root_person)
    root_person.path = "1.0"
    c = convert_doc(doc)
    g = c.one("imaging-measurement-group")
    assert c.resolve(g["performer"][0])["name"][0]["family"] == "Other"
    assert c.resolve(c.one("imaging-measurement")["performer"][0])["name"][0]["family"] == "Other"

