"""Generated narratives (D-18): text from the SR is escaped, so the div stays well-formed XHTML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sr2fhir.fhir.narrative import add_narrative


def test_markup_in_sr_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script> & <b>'
    r = {"resourceType": "Observation", "code": {"text": hostile}, "valueCodeableConcept": {"text": "a<b"}, "status": "final"}
    add_narrative(r, "Imaging <Measurement>")
    div = r["text"]["div"]
    assert "<script>" not in div and "<b>" not in div.replace("<p><b>", "").replace("</b></p>", "")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in div
    # Well-formed XHTML whose text is exactly what the SR said.
    root = ET.fromstring(div)
    texts = [td.text for td in root.iter("{http://www.w3.org/1999/xhtml}td")]
    assert hostile in texts and "a<b" in texts
    assert root.find("{http://www.w3.org/1999/xhtml}p/{http://www.w3.org/1999/xhtml}b").text == "Imaging <Measurement>"  # type: ignore[union-attr]


def test_escape_is_html_escape() -> None:
    """The fast path skips only text html.escape would leave as it is (the library is the oracle)."""
    import html
    import random

    from sr2fhir.fhir.narrative import escape

    rng = random.Random(7)
    for _ in range(3000):
        s = "".join(rng.choice("ab <>&\"'é;#x") for _ in range(rng.randrange(0, 12)))
        assert escape(s) == html.escape(s)


def cells(r: dict[str, object]) -> list[tuple[str | None, str | None]]:
    root = ET.fromstring(r["text"]["div"])  # type: ignore[index]
    x = "{http://www.w3.org/1999/xhtml}"
    return [(tr.find(f"{x}th").text, tr.find(f"{x}td").text) for tr in root.iter(f"{x}tr")]  # type: ignore[union-attr]


def test_a_device_says_every_name_its_serial_number_and_uid() -> None:
    """Issue 27, item 5: the pyradiomics reader showed its version as its only name."""
    r = {"resourceType": "Device", "displayName": "2.1.0.post36", "name": [{"value": "pyradiomics", "type": "user-friendly-name"}],
         "serialNumber": "SN-7", "version": [{"value": "2.1.0.post36"}],
         "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}]}
    add_narrative(r, "Participant Device")
    assert cells(r) == [("Name", "2.1.0.post36"), ("Name", "pyradiomics"), ("Serial number", "SN-7"), ("Version", "2.1.0.post36"), ("UID", "1.2.3.4")]


def test_a_device_that_states_nothing_has_no_empty_table() -> None:
    r = {"resourceType": "Device", "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:x"}]}
    add_narrative(r, "General Equipment")
    assert "<table" not in r["text"]["div"] and ET.fromstring(r["text"]["div"]) is not None  # type: ignore[index]


def test_a_selection_names_its_3d_regions() -> None:
    from sr2fhir.fhir.extensions import image_region_3d

    r = {"resourceType": "ImagingSelection", "frameOfReferenceUid": "1.2.3", "extension": [image_region_3d("polygon", [1.0] * 12)]}
    add_narrative(r, "Image Region")
    assert ("3D region", "polygon (12 values, mm)") in cells(r)
