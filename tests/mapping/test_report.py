"""The TID 1500 walk (mapping/report.py): what is structure, what is clinical, and stable messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sr2fhir.dicom.content import Code, MeasuredValue
from sr2fhir.diagnostics import Severity
from tests.helpers import SHARED, convert_doc, document, group, item

LANGUAGE = Code("121049", "DCM", "Language of Content Item and Descendants")
COUNTRY = Code("121046", "DCM", "Country of Language")


def test_language_of_content_is_reported_as_structure() -> None:
    """Issue 9.4: Language of Content and Country of Language used to vanish without a diagnostic."""
    lang = item("HAS CONCEPT MOD", "CODE", LANGUAGE, Code("en", "RFC5646", "English"), [item("HAS CONCEPT MOD", "CODE", COUNTRY, Code("US", "ISO3166_1", "United States"))])
    doc = document(group())
    doc.root.children.insert(0, lang)
    lang.path, lang.children[0].path = "1.0", "1.0.1"
    c = convert_doc(doc)
    found = {(d.path, d.severity) for d in c.diagnostics.items if d.rule == "not-mapped"}
    assert found == {("1.0", Severity.INFORMATION), ("1.0.1", Severity.INFORMATION)}


def test_unknown_root_content_is_a_warning() -> None:
    doc = document(group())
    comment = item("CONTAINS", "TEXT", Code("121106", "DCM", "Comment"), "see prior")
    doc.root.children.append(comment)
    comment.path = "1.2"
    (d,) = [d for d in convert_doc(doc).diagnostics.items if d.rule == "not-mapped"]
    assert (d.path, d.severity) == ("1.2", Severity.WARNING)


def test_untranslated_snomed_rt_is_a_warning() -> None:
    """Issue 9.5: SRT T-53131 has no SNOMED CT equivalent in PS3.16 Annex O; T-62000 (Liver) has 10200004."""
    site = Code("363698007", "SCT", "Finding Site")
    num = item("CONTAINS", "NUM", Code("81827009", "SCT", "Diameter"), MeasuredValue("4"), [item("HAS CONCEPT MOD", "CODE", site, Code("T-53131", "SRT", "Tonsil"))])
    c = convert_doc(document(group(item("HAS CONCEPT MOD", "CODE", site, Code("T-62000", "SRT", "Liver")), num)))
    assert c.one("imaging-measurement-group")["bodySite"]["coding"][0] == {"system": "http://snomed.info/sct", "code": "10200004", "display": "Liver"}
    assert c.one("imaging-measurement")["bodySite"]["coding"][0] == {"system": "http://snomed.info/srt", "code": "T-53131", "display": "Tonsil"}
    (d,) = [d for d in c.diagnostics.items if d.rule == "snomed-rt-untranslated"]
    assert d.severity == Severity.WARNING and "T-53131" in d.message


def test_messages_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """Issue 9.6: the coding-scheme warnings came out in set order, which PYTHONHASHSEED changes."""
    f = SHARED / "data" / "tid1500" / "tid1500-fhir__rsna2018-ds3__pyradiomics-1561-features.dcm"
    outs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        oo = tmp_path / f"oo-{seed}.json"
        p = subprocess.run([sys.executable, "-m", "sr2fhir", "convert", str(f), "--outcome", str(oo), "-o", str(tmp_path / "out.json")], capture_output=True, text=True, env=env, timeout=300)
        outs.append((p.stderr, oo.read_text()))
    assert "IBSI" in outs[0][0] and "99PYRADIOMICS" in outs[0][0]
    assert outs[0] == outs[1] == outs[2]
