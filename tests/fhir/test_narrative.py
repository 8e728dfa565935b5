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
