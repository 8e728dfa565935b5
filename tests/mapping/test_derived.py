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


# --- what mutation testing found unasserted (issue 25) ------------------------------------------

DIAMETER = Code("81827009", "SCT", "Diameter")
MM = Code("mm", "UCUM", "millimeter")
IMAGING_MEASUREMENTS = Code("126010", "DCM", "Imaging Measurements")


def derived_doc(*derived_children: Any, container_kw: dict[str, Any] | None = None) -> Any:
    """A report with one measurement group (1.1.1, its NUM 1.1.1.1) and a Derived Imaging
    Measurements container (1.2) holding `derived_children`."""
    measurements = item("CONTAINS", "CONTAINER", IMAGING_MEASUREMENTS, children=[group(item("CONTAINS", "NUM", DIAMETER, MeasuredValue("3", unit=MM)))])
    derived = item("CONTAINS", "CONTAINER", DERIVED, children=list(derived_children), **(container_kw or {}))
    return document(measurements, derived, measurements=False)


def diag(c: Converted, rule: str) -> Any:
    (d,) = [d for d in c.diagnostics.items if d.rule == rule]
    return d


def ref_to(path: list[int]) -> Any:
    return item("INFERRED FROM", None, None, reference=path)


def test_observation_datetimes_of_the_container_and_the_num_set_issued() -> None:
    """Observation DateTime (0040,A032) of the container, then of the NUM, overrides the report's time."""
    a = item("CONTAINS", "NUM", PEAK, MeasuredValue("7", unit=MM), [ref_to([1, 1, 1])])
    b = item("CONTAINS", "NUM", PEAK, MeasuredValue("8", unit=MM), [ref_to([1, 1, 1])], observation_datetime="20240302101112")
    c = convert_doc(derived_doc(a, b, container_kw={"observation_datetime": "20240301090000"}))
    da, db = c.profile("derived-imaging-measurement")
    assert (da["issued"], db["issued"]) == ("2024-03-01T09:00:00+00:00", "2024-03-02T10:11:12+00:00")


def test_what_a_derived_container_holds_besides_nums() -> None:
    """TID 1420: a TID 4019 algorithm is the container's device; any other row is reported."""
    alg = item("HAS CONCEPT MOD", "TEXT", Code("111001", "DCM", "Algorithm Name"), "ratio-maker")
    note = item("CONTAINS", "TEXT", Code("121106", "DCM", "Comment"), "a comment")
    num = item("CONTAINS", "NUM", PEAK, MeasuredValue("7", unit=MM), [ref_to([1, 1, 1])])
    c = convert_doc(derived_doc(alg, note, num))
    d = c.one("derived-imaging-measurement")
    assert c.resolve(d["device"])["displayName"] == "ratio-maker"
    not_mapped = diag(c, "not-mapped")
    assert (not_mapped.path, not_mapped.concept, not_mapped.severity.fhir, not_mapped.action) == ("1.2.2", str(note.concept), "warning", "skipped")
    assert "TID 1420" in not_mapped.message and not_mapped.message.startswith("only NUM items")


def test_a_reference_to_what_made_no_group_is_reported() -> None:
    num = item("CONTAINS", "NUM", PEAK, MeasuredValue("7", unit=MM), [ref_to([1, 1, 1]), ref_to([1, 1])])  # 1.1: the container, no group
    c = convert_doc(derived_doc(num))
    d = c.one("derived-imaging-measurement")  # one group still found: the profile holds
    assert d["derivedFrom"] == [{"reference": f"urn:uuid:{c.one('imaging-measurement-group')['id']}", "type": "Observation"}]
    w = diag(c, "unresolved-reference")
    assert (w.path, w.severity.fhir) == ("1.2.1.2", "warning") and "content item 1.1," in w.message and w.action.startswith("reference not mapped")
    assert "component" not in d  # neither reference is a modifier


def test_a_derived_measurement_without_groups_claims_no_profile() -> None:
    num = item("CONTAINS", "NUM", PEAK, MeasuredValue("7", unit=MM))
    c = convert_doc(derived_doc(num))
    (obs,) = [o for o in c.of_type("Observation") if o.get("category", [{}])[0].get("coding", [{}])[0].get("code") == "126011"]
    assert "meta" not in obs or "profile" not in obs["meta"]
    w = diag(c, "derived-without-groups")
    assert (w.path, w.concept, w.severity.fhir) == ("1.2.1", str(PEAK), "warning") and w.action.startswith("Observation emitted without meta.profile")
    assert w.message.startswith("derived measurement without source measurement groups")


def test_a_derived_nums_children_modifiers_groups_and_other_containers() -> None:
    """Nested groups, references and TID 4019 rows are consumed; a Derivation is a component (D-33);
    a container that is not a measurement group is reported, never taken for one."""
    derivation = item("HAS CONCEPT MOD", "CODE", Code("121401", "DCM", "Derivation"), Code("255619001", "SCT", "Total"))
    nested = group(item("CONTAINS", "NUM", DIAMETER, MeasuredValue("4", unit=MM)))
    other = item("CONTAINS", "CONTAINER", Code("111028", "DCM", "Image Library"))
    alg = item("HAS CONCEPT MOD", "TEXT", Code("111001", "DCM", "Algorithm Name"), "own-alg")
    num = item("CONTAINS", "NUM", PEAK, MeasuredValue("7", unit=MM), [derivation, nested, ref_to([1, 1, 1]), alg, other], observation_uid="2.25.55")
    c = convert_doc(derived_doc(num))
    d = c.one("derived-imaging-measurement")
    assert [codings(x["code"])[0][1] for x in d["component"]] == ["121401"]
    assert len(d["derivedFrom"]) == 3  # the nested group, the referenced group, the NUM's own SR content item
    groups = [c.resolve(r) for r in d["derivedFrom"] if r.get("type") == "Observation"]
    assert len(groups) == 2 and all("imaging-measurement-group" in g["meta"]["profile"][0] for g in groups)
    assert c.resolve(d["device"])["displayName"] == "own-alg"
    assert d["identifier"][0]["value"] == "urn:oid:2.25.55"
    assert c.conversion.sources[d["id"]] == ["1.2.1"]
    w = diag(c, "not-mapped")
    assert (w.path, w.concept) == ("1.2.1.5", str(other.concept))


def test_a_derived_num_without_a_concept_is_reported() -> None:
    num = item("CONTAINS", "NUM", None, MeasuredValue("7", unit=MM), [ref_to([1, 1, 1])])
    c = convert_doc(derived_doc(num))
    assert not c.profile("derived-imaging-measurement")
    w = diag(c, "num-without-concept")
    assert (w.path, w.action) == ("1.2.1", "skipped")


def test_a_derived_vital_sign_follows_r5s_profile() -> None:
    """D-52 holds for derived measurements too: a LOINC heart rate gets the vital-signs category."""
    hr = item("CONTAINS", "NUM", Code("8867-4", "LN", "Heart rate"), MeasuredValue("60", unit=Code("/min", "UCUM", "per minute")), [ref_to([1, 1, 1])])
    per_second = item("CONTAINS", "NUM", Code("8867-4", "LN", "Heart rate"), MeasuredValue("1", unit=Code("/s", "UCUM", "per second")), [ref_to([1, 1, 1])])
    c = convert_doc(derived_doc(hr, per_second))
    obs = next(o for o in c.of_type("Observation") if codings(o["code"])[0][1] == "8867-4")
    cats = {cc["code"] for cat in obs["category"] for cc in cat["coding"]}
    assert {"vital-signs", "126011"} <= cats
    assert [d.path for d in c.diagnostics.items if d.rule == "vital-sign-not-conformant"] == ["1.2.2"]  # /s: not a unit the profile allows


def test_a_derived_measurement_is_created_on_its_identity_and_listed_in_the_report() -> None:
    """The transaction entry is a conditional create on the Observation UID (D-21), and
    --diagnostic-report lists the derived measurement among its results (D-24)."""
    from sr2fhir import Options
    from sr2fhir.fhir import bundle as fhir_bundle

    num = item("CONTAINS", "NUM", PEAK, MeasuredValue("7", unit=MM), [ref_to([1, 1, 1])], observation_uid="2.25.66")
    c = convert_doc(derived_doc(num), Options(diagnostic_report=True))
    d = c.one("derived-imaging-measurement")
    (entry,) = [e for e in fhir_bundle.transaction(c.conversion.resources, "2.25.3")["entry"] if e["resource"] is d]
    assert entry["request"]["ifNoneExist"] == "identifier=urn:dicom:uid|urn:oid:2.25.66"
    (report,) = c.of_type("DiagnosticReport")
    assert {"reference": f"urn:uuid:{d['id']}", "type": "Observation"} in report["result"]
