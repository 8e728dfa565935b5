"""The lean reader (dicom/part10.py, dicom/values.py) against pydicom, its oracle (issue 16).

The same bytes are read twice: by the lean reader, and by pydicom's dcmread with pydicom's
decoded values handed to the same tree builder. Both must give the same content tree, the same
header and the same diagnostics: on every file of ../shared/data and every fixture, on each of
them written in the other transfer syntaxes, in other character sets, and on the fuzzer's
mutations.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import FIXTURES, SHARED, lean_read, oracle_read, transcoded
from scripts.mutations import mutate

FILES = sorted((SHARED / "data").glob("*/*.dcm")) + sorted(FIXTURES.glob("*.dcm"))
REPORTS = sorted((SHARED / "data" / "tid1500").glob("*.dcm")) + sorted(FIXTURES.glob("*.dcm"))
OTHER_SRS = [p for p in sorted((SHARED / "data" / "non-tid1500").glob("*.dcm")) if "not-SR" not in p.name]
OTHER_SRS = [p for p in sorted((SHARED / "data" / "non-tid1500").glob("*.dcm")) if "not-SR" not in p.name]
IMPLICIT_LE, EXPLICIT_BE, DEFLATED = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"


def same(data: bytes, name: str) -> None:
    docs, diags, error = lean_read(data, name)
    want, want_diags, want_error = oracle_read(data, name)
    assert error == want_error
    assert docs == want
    assert [(d.rule, d.path, d.message) for d in diags.items] == [(d.rule, d.path, d.message) for d in want_diags.items]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_file_reads_as_pydicom_reads_it(path: Path) -> None:
    docs, _, error = lean_read(path.read_bytes(), path.name)
    if "not-SR" not in path.name and path.parent.name != "referenced":
        assert error is None and docs and docs[0].root.children, error
    same(path.read_bytes(), path.name)


@pytest.mark.parametrize("ts", [IMPLICIT_LE, EXPLICIT_BE, DEFLATED], ids=["implicit-le", "explicit-be", "deflated"])
@pytest.mark.parametrize("path", REPORTS + OTHER_SRS, ids=lambda p: p.name)
def test_other_transfer_syntaxes_and_undefined_lengths(path: Path, ts: str) -> None:
    data = transcoded(path.read_bytes(), ts)
    docs, _, error = lean_read(data, path.name)
    assert error is None and docs
    original, _, _ = lean_read(path.read_bytes(), path.name)
    assert docs == original  # the transfer syntax changes nothing in the tree
    same(data, path.name)


@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO_IR 192", "ISO_IR 101", "ISO 2022 IR 6\\ISO 2022 IR 87"])
def test_character_sets(charset: str) -> None:
    """Non-ASCII text is decoded in the Specific Character Set, in items as at the top level."""
    import io

    import pydicom

    meaning = {"ISO_IR 100": "Größe", "ISO_IR 192": "直径 Größe", "ISO_IR 101": "Průměr", "ISO 2022 IR 6\\ISO 2022 IR 87": "直径"}[charset]
    ds = pydicom.dcmread(FIXTURES / "tid1501_containers.dcm")
    ds.SpecificCharacterSet = charset.split("\\") if "\\" in charset else charset
    ds.ContentSequence[0].ConceptNameCodeSequence[0].CodeMeaning = meaning
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    docs, _, error = lean_read(out.getvalue(), "charset.dcm")
    assert error is None and docs and docs[0].root.children[0].concept is not None
    assert docs[0].root.children[0].concept.meaning == meaning
    same(out.getvalue(), "charset.dcm")


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(REPORTS[:5] + REPORTS[6:]), rng_seed=st.integers(0, 2**32 - 1), rounds=st.integers(1, 3))
def test_mutations_read_as_pydicom_reads_them(seed: Path, rng_seed: int, rounds: int) -> None:
    """On a mutated file both readers give the same tree; where one refuses the file, it is the
    lean reader refusing a file that pydicom reads only partly or with an invalid VR (pydicom reads
    a file cut between elements as if whole: issue 10.3), or pydicom refusing what cannot be
    read at all."""
    rng = random.Random(rng_seed)
    data = seed.read_bytes()
    for _ in range(rounds):
        _, data = mutate(data, rng)
    docs, diags, error = lean_read(data, "m.dcm")
    want, want_diags, want_error = oracle_read(data, "m.dcm")
    if error is None and want_error is None:
        assert docs == want
        assert [(d.rule, d.path) for d in diags.items] == [(d.rule, d.path) for d in want_diags.items]
    elif error is None:
        assert want_error is not None and want_error.startswith("pydicom:"), want_error
    else:
        assert error in ("truncated", "not-dicom", "too-deep", "too-large", "not-sr", "too-many"), error


@pytest.mark.parametrize("vr", ["FD", "DS", "OF"])
def test_a_value_written_in_another_vr(vr: str) -> None:
    """Graphic Data (FL in PS3.6) written as FD, DS or OF is read by the VR the file gives, as pydicom reads it."""
    import io

    import pydicom

    ds = pydicom.dcmread(FIXTURES / "tid1410_planar_regions.dcm")
    changed = 0
    for elem in ds.iterall():
        if elem.keyword == "GraphicData":
            values = [float(x) for x in elem.value]
            elem.VR = vr
            elem.value = values if vr != "OF" else __import__("array").array("f", values).tobytes()
            changed += 1
    assert changed
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    docs, _, error = lean_read(out.getvalue(), "vr.dcm")
    original, _, _ = lean_read((FIXTURES / "tid1410_planar_regions.dcm").read_bytes(), "vr.dcm")
    assert error is None and docs == original  # the same coordinates, whatever the VR
    same(out.getvalue(), "vr.dcm")
