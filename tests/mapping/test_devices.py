"""Devices: general equipment, participant device, algorithm identification, and device precedence."""

from __future__ import annotations

from typing import Any

from sr2fhir.content import Code, MeasuredValue
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
