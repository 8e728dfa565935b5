"""dicom/ps3_6.py and dicom/ps3_16_snomed.py are generated from pydicom's copy of the standard
(scripts/make_dicom_tables.py), and answer as pydicom does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom.uid
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.sr.coding import snomed_mapping

from sr2fhir.dicom.dataset import dictionary_vr, keyword, tag_of
from sr2fhir.dicom.dictionary import SR_STORAGE, srt_to_sct, uid_name
from tests.helpers import ROOT


def test_the_modules_are_the_generator_output(tmp_path: Path) -> None:
    # A process of its own: pynetdicom, imported by other tests, adds UIDs to pydicom's table.
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_dicom_tables.py"), "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for name in ("ps3_6.py", "ps3_16_snomed.py"):
        assert (ROOT / "src" / "sr2fhir" / "dicom" / name).read_text() == (tmp_path / name).read_text(), name


def test_the_tables_answer_as_pydicom() -> None:
    for tag in (0x0040A730, 0x00700022, 0x0040A30A, 0x00081199, 0x00080005, 0x0040A160):
        assert keyword(tag) == keyword_for_tag(tag) and dictionary_vr(tag) == dictionary_VR(tag)[:2]
    assert keyword(0x00091001) == "" and dictionary_vr(0x00091001) is None  # private
    assert tag_of("ContentSequence") == 0x0040A730
    assert uid_name("1.2.840.10008.5.1.4.1.1.88.22") == pydicom.uid.UID("1.2.840.10008.5.1.4.1.1.88.22").name == "Enhanced SR Storage"
    assert uid_name("1.2.3.4") is None
    assert SR_STORAGE[str(pydicom.uid.ComprehensiveSRStorage)] == "ComprehensiveSRStorage" and len(SR_STORAGE) == 5
    srt, sct = next(iter(snomed_mapping["SRT"].items()))
    assert srt_to_sct(srt) == sct and srt_to_sct("not-a-code") is None
