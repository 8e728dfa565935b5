"""Devices: general equipment, participant device, algorithm identification, and device precedence."""

from __future__ import annotations

from typing import Any

from sr2fhir.dicom.content import Code, MeasuredValue
from tests.helpers import Converted, convert_doc, document, group, item

NAME = Code("111001", "DCM", "Algorithm Name")
VERSION = Code("111003", "DCM", "Algorithm Version")


def algorithm(name: str, version: str) -> list[Any]:
    return [item("HAS CONCEPT MOD", "TEXT", NAME, name), item("HAS CONCEPT MOD", "TEXT", VERSION, version)]


def test_algorithm_identification(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1501_containers"]
    exp = manifest["fixtures"]["tid1501_containers"]["algorithm"]
    alg = c.one("algorithm-identification")
    assert alg["displayName"] == exp["name"] and alg["version"] == [{"value": exp["version"]}]
    assert [p["valueString"] for p in alg["property"]] == exp["parameters"]
    assert c.resolve(alg["parent"]) == c.one("dicom-general-equipment")


def test_participant_device(fixture_conversions: dict[str, Converted], manifest: dict[str, Any]) -> None:
    c = fixture_conversions["tid1501_containers"]
    exp = manifest["fixtures"]["tid1501_containers"]["participant_device"]
    dev = c.one("dicom-participant-device")
    assert dev["identifier"][0]["value"] == "urn:oid:" + exp["uid"] and dev["displayName"] == exp["model"]
    assert dev["identifier"][0]["type"]["coding"][0]["code"] == "UDI"


def test_device_precedence_and_dedupe() -> None:
    """Own TID 4019 > group's > container's > equipment; one Device per distinct algorithm (D-7)."""
    n_own = item("CONTAINS", "NUM", Code("1", "SCT", "a"), MeasuredValue("1"), algorithm("Own", "1"))
    n_inh = item("CONTAINS", "NUM", Code("2", "SCT", "b"), MeasuredValue("2"))
    g1 = group(*algorithm("Group", "1"), n_own, n_inh)
    g2 = group(item("CONTAINS", "NUM", Code("3", "SCT", "c"), MeasuredValue("3")))
    container = item("CONTAINS", "CONTAINER", Code("126010", "DCM", "Imaging Measurements"), children=[*algorithm("Container", "1"), g1, g2])
    doc = document(container, measurements=False)
    c = convert_doc(doc)
    names = {o["code"]["coding"][0]["code"]: c.resolve(o["device"]).get("displayName") for o in c.profile("imaging-measurement")}
    assert names == {"1": "Own", "2": "Group", "3": "Container"}
    assert len(c.profile("algorithm-identification")) == 3
    # Same algorithm twice in one report -> one Device.
    twice = document(group(item("CONTAINS", "NUM", Code("1", "SCT", "a"), MeasuredValue("1"), algorithm("A", "1")),
                           item("CONTAINS", "NUM", Code("2", "SCT", "b"), MeasuredValue("2"), algorithm("A", "1"))))
    assert len(convert_doc(twice).profile("algorithm-identification")) == 1


def test_participant_equal_to_equipment_is_not_duplicated() -> None:
    header = {"DeviceUID": "2.25.9", "ParticipantSequence": [{"ObserverType": "DEV", "DeviceUID": "2.25.9"}]}
    c = convert_doc(document(group(), header=header))
    assert not c.profile("dicom-participant-device") and len(c.of_type("Device")) == 1


def test_root_device_observer_is_the_participant_device() -> None:
    """TID 1004 at the root (AI writers record themselves there) -> dicom-participant-device (D-28)."""
    rows = [
        item("HAS OBS CONTEXT", "CODE", Code("121005", "DCM", "Observer Type"), Code("121007", "DCM", "Device")),
        item("HAS OBS CONTEXT", "UIDREF", Code("121012", "DCM", "Device Observer UID"), "2.25.42"),
        item("HAS OBS CONTEXT", "TEXT", Code("121013", "DCM", "Device Observer Name"), "Nodule AI"),
        item("HAS OBS CONTEXT", "TEXT", Code("121014", "DCM", "Device Observer Manufacturer"), "Vendor"),
    ]
    doc = document(group(item("CONTAINS", "NUM", Code("1", "SCT", "a"), MeasuredValue("1"))))
    doc.root.children[:0] = rows
    for i, ch in enumerate(doc.root.children, 1):
        ch.path = f"1.{i}"
    c = convert_doc(doc)
    dev = c.one("dicom-participant-device")
    assert dev["identifier"][0]["value"] == "urn:oid:2.25.42" and dev["manufacturer"] == "Vendor"
    assert dev["name"] == [{"value": "Nodule AI", "type": "user-friendly-name"}]
    assert c.resolve(c.one("imaging-measurement")["device"]) == dev


def _equipment(header: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    c = convert_doc(document(group(), header=header))
    dev = c.one("dicom-general-equipment")
    (entry,) = [e for e in c.conversion.resources if e.resource is dev]
    return dev, entry.condition


def test_equipment_identity_covers_software_versions() -> None:
    """Issue 9.2: two reports from one Device UID with different Software Versions (0018,1020) get two Devices."""
    base = {"DeviceUID": "2.25.77", "Manufacturer": "M", "ManufacturerModelName": "X"}
    v1, c1 = _equipment({**base, "SoftwareVersions": "1.0"})
    v1_again, c1_again = _equipment({**base, "SoftwareVersions": "1.0"})
    v2, c2 = _equipment({**base, "SoftwareVersions": ["2.0", "fw 7"]})
    assert v1["version"] == [{"value": "1.0"}] and v2["version"] == [{"value": "2.0"}, {"value": "fw 7"}]
    assert v1["identifier"] == v2["identifier"] == [{"system": "urn:dicom:uid", "value": "urn:oid:2.25.77"}]
    assert (v1["id"], c1) == (v1_again["id"], c1_again) and v1["id"] != v2["id"] and c1 != c2
    # The conditional create matches the UID and the state fingerprint the Device carries (D-35).
    for dev, cond in ((v1, c1), (v2, c2)):
        (tag,) = dev["meta"]["tag"]
        assert cond == f"identifier=urn:dicom:uid|urn:oid:2.25.77&_tag={tag['system']}|{tag['code']}" and tag["code"] == dev["id"]


def test_equipment_without_uid_identity_covers_everything_it_states() -> None:
    base = {"Manufacturer": "M", "ManufacturerModelName": "X", "DeviceSerialNumber": "S1"}
    a, ca = _equipment({**base, "SoftwareVersions": "1.0"})
    b, cb = _equipment({**base, "SoftwareVersions": "1.1"})
    c, cc = _equipment({**base, "SoftwareVersions": "1.0", "DeviceSerialNumber": "S2"})
    assert len({a["id"], b["id"], c["id"]}) == 3 and len({ca, cb, cc}) == 3
    assert ca == f"identifier=urn:ietf:rfc:3986|urn:uuid:{a['id']}" and "tag" not in a["meta"]


def test_participant_and_algorithm_identities_cover_their_names() -> None:
    """A participant device's name and an algorithm's version are part of their identity too."""
    def participant(name: str) -> str:
        h = {"ParticipantSequence": [{"ObserverType": "DEV", "DeviceUID": "2.25.88", "DeviceObserverName": name, "Manufacturer": "AI"}]}
        c = convert_doc(document(group(), header=h))
        dev = c.one("dicom-participant-device")
        return next(e.condition for e in c.conversion.resources if e.resource is dev) or ""
    assert participant("engine A") != participant("engine B")
    v1 = convert_doc(document(group(*algorithm("Seg", "1")))).one("algorithm-identification")
    v2 = convert_doc(document(group(*algorithm("Seg", "2")))).one("algorithm-identification")
    assert v1["id"] != v2["id"] and v1["identifier"] != v2["identifier"]


def test_algorithm_family_of_the_wrong_value_type_is_reported_not_a_crash() -> None:
    """Issue 9.8: a TID 4019 Algorithm Family (111000) that is a NUM used to raise AttributeError."""
    family = item("HAS CONCEPT MOD", "NUM", Code("111000", "DCM", "Algorithm Family"), MeasuredValue("3"))
    c = convert_doc(document(group(*algorithm("Seg", "1"), family)))
    alg = c.one("algorithm-identification")
    assert "type" not in alg
    (d,) = [d for d in c.diagnostics.items if d.rule == "tid4019-value-type"]
    assert d.path == "1.1.1.3" and "NUM, not CODE" in d.message
