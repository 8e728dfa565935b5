"""The gateway's identification of an arriving object (dicom/identify.py, issue 26 item 5): read
by the project's lean reader, as the conversion reads it, and checked here against pydicom's
reading of the same bytes, the oracle."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import UID

from sr2fhir.dicom.identify import Identity, identify
from sr2fhir.errors import ConversionError
from tests.helpers import FIXTURES, SHARED, transcoded

FILES = sorted((SHARED / "data").glob("*/*.dcm")) + sorted(FIXTURES.glob("*.dcm"))
IMPLICIT_LE, EXPLICIT_BE, DEFLATED = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"


def oracle(data: bytes) -> Identity:
    """What pydicom reads of the same header (PS3.3 C.12.1, C.7.2.1, C.7.3.1, C.17.2.3)."""
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    ok = lambda u: bool(u) and UID(str(u)).is_valid  # noqa: E731
    inst = str(ds.get("SOPInstanceUID") or ds.file_meta.MediaStorageSOPInstanceUID)
    preds = [str(sop.ReferencedSOPInstanceUID) for st in ds.get("PredecessorDocumentsSequence", [])
             for se in st.ReferencedSeriesSequence for sop in se.ReferencedSOPSequence]
    return Identity(
        str(ds.get("SOPClassUID") or ds.file_meta.MediaStorageSOPClassUID), inst,
        str(ds.StudyInstanceUID) if ok(ds.get("StudyInstanceUID")) else None,
        str(ds.SeriesInstanceUID) if ok(ds.get("SeriesInstanceUID")) else None,
        tuple(dict.fromkeys(p for p in preds if ok(p) and p != inst)),
        str(ds.PatientID).strip() or None if "PatientID" in ds else None,
    )


def same(got: Identity, want: Identity) -> None:
    assert got == want
    assert got.patient_id == want.patient_id  # not part of == (repr=False keeps it out of logs, not of eq)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_file_is_identified_as_pydicom_reads_it(path: Path) -> None:
    data = path.read_bytes()
    same(identify(data, path.name), oracle(data))


@pytest.mark.parametrize("ts", [IMPLICIT_LE, EXPLICIT_BE, DEFLATED], ids=["implicit-le", "explicit-be", "deflated"])
@pytest.mark.parametrize("path", [FIXTURES / "tid1410_planar_regions_corrected.dcm", SHARED / "data" / "tid1500" / "dcmqi__sr-example__sr.dcm"], ids=lambda p: p.name)
def test_other_transfer_syntaxes(path: Path, ts: str) -> None:
    data = transcoded(path.read_bytes(), ts)
    same(identify(data, path.name), oracle(path.read_bytes()))


def test_a_report_cut_in_its_content_tree_is_still_identified() -> None:
    """The gateway files it, and its conversion tells why it is dead (tests/gateway/test_service.py)."""
    data = (FIXTURES / "tid1411_volumetric.dcm").read_bytes()
    same(identify(data[:3000], "cut"), oracle(data))


def test_a_report_cut_in_its_header_is_refused_as_truncated() -> None:
    data = (FIXTURES / "tid1411_volumetric.dcm").read_bytes()
    ds = pydicom.dcmread(io.BytesIO(data))
    # Cut inside the Study Instance UID's value: the SOP UIDs before it are whole, the header is not.
    at = data.index(ds.StudyInstanceUID.encode()) + 5
    with pytest.raises(ConversionError, match=r"cut: truncated DICOM header: element \(0020,000D\) declares") as e:
        identify(data[:at], "cut")
    assert e.value.code == "truncated"


def test_not_part_10() -> None:
    with pytest.raises(ConversionError, match="x: not a DICOM Part 10 object") as e:
        identify(b"\x00" * 200, "x")
    assert e.value.code == "not-dicom"


def test_the_file_meta_identifies_a_data_set_without_sop_uids() -> None:
    """PS3.10 7.1: Media Storage SOP Class and Instance UIDs stand in when the data set lacks them."""
    ds = pydicom.dcmread(FIXTURES / "tid1411_volumetric.dcm")
    cls, inst = ds.SOPClassUID, ds.SOPInstanceUID
    del ds.SOPClassUID, ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    got = identify(out.getvalue(), "meta")
    assert (got.sop_class_uid, got.sop_instance_uid) == (cls, inst)


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_invalid_uids_are_refused() -> None:
    ds = pydicom.dcmread(FIXTURES / "tid1411_volumetric.dcm")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.abc"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    with pytest.raises(ConversionError, match=r"bad: no valid SOP Class UID and SOP Instance UID \(0008,0016/0018\)"):
        identify(out.getvalue(), "bad")


def test_mutated_objects_are_identified_or_refused_by_name() -> None:
    """What a hostile or broken sender may send (scripts/mutations.py: bytes flipped, cut, lengths
    changed): identify answers an Identity or a ConversionError naming the object, never anything
    else (the gateway files what it cannot identify in the dead letter, with the reason)."""
    import random

    from scripts.mutations import mutate

    rng = random.Random(26)
    seeds = [p.read_bytes() for p in FILES if p.parent.name == "tid1500"][:5]
    outcomes = set()
    for i in range(100):
        data = seeds[i % len(seeds)]
        for _ in range(rng.randrange(1, 4)):
            _, data = mutate(data, rng)
        try:
            identify(data, "m.dcm")
            outcomes.add("identified")
        except ConversionError as exc:
            assert str(exc).startswith("m.dcm: ") and exc.code in ("truncated", "not-dicom", "too-large"), (exc.code, str(exc))
            outcomes.add(exc.code)
    assert "identified" in outcomes and "truncated" in outcomes  # both kinds were met
