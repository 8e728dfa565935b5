"""Part 10 structure walk (part10.py): a file that ends before its structure does is truncated (issue 10.3)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from sr2fhir.dicom import part10
from sr2fhir.batch import convert_path
from tests.helpers import FIXTURES, SHARED
from scripts.mutations import check_truncation, element_boundaries

CORPUS = sorted((SHARED / "data").glob("*/*.dcm")) + sorted(FIXTURES.glob("*.dcm"))
REPORTS = sorted((SHARED / "data" / "tid1500").glob("*.dcm")) + sorted(FIXTURES.glob("*.dcm"))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_real_file_is_whole(path: Path) -> None:
    data = path.read_bytes()
    part10.parse(data)
    assert element_boundaries(data)[-1] < len(data)


def test_the_reported_case_is_refused(tmp_path: Path) -> None:
    """`head -c 1014 highdicom__sr_document.dcm` was converted (exit 0) as a report with no Observation."""
    cut = tmp_path / "cut.dcm"
    cut.write_bytes((SHARED / "data" / "tid1500" / "highdicom__sr_document.dcm").read_bytes()[:1014])
    r = convert_path(str(cut))
    assert r.error is not None and (r.error.code, r.error.exit_code) == ("truncated", 12)
    assert "ends before the SR content tree" in str(r.error)


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.name)
def test_truncation_at_element_boundaries(path: Path, tmp_path: Path) -> None:
    """Cut at element boundaries (a sample here; scripts/truncate.py tries every one)."""
    data = path.read_bytes()
    whole = convert_path(str(path))
    n = sum(1 for c in whole.conversions for r in c.resources.resources() if r["resourceType"] == "Observation")
    cuts = element_boundaries(data)
    rng = random.Random(path.name)
    k = 40 if len(data) < 200_000 else 8  # the 1.2 MB report takes about a second a cut
    sample = cuts if len(cuts) <= k else sorted(rng.sample(cuts, k))
    outcomes = [check_truncation(data, c, n, tmp_path) for c in sample + [len(data) - 1, len(data) - 9]]
    assert outcomes.count("truncated") >= len(outcomes) // 2, outcomes


def test_a_corrupt_sop_class_vr_is_a_clear_failure(tmp_path: Path) -> None:
    """Found by scripts/fuzz.py: an unknown VR in SOP Class UID (0008,0016) raised from the completeness check."""
    data = (FIXTURES / "tid1410_planar_regions.dcm").read_bytes()
    tag = b"\x08\x00\x16\x00UI"
    body = data.index(tag, 132 + data[132:].index(b"\x08\x00"))
    bad = tmp_path / "vr.dcm"
    bad.write_bytes(data[:body] + b"\x08\x00\x16\x00U\x8f" + data[body + len(tag):])
    r = convert_path(str(bad))
    assert r.error is not None and r.error.code != "exception", r.error


def deflated_bomb(inflated: int) -> bytes:
    """A Part 10 file whose Deflated data set inflates to `inflated` zero bytes (a deflate bomb)."""
    import struct
    import zlib

    ts = b"1.2.840.10008.1.2.1.99\x00"
    meta = struct.pack("<HH2sH", 2, 0x10, b"UI", len(ts)) + ts
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk, body = bytes(2**20), []
    for _ in range(inflated // 2**20):
        body.append(c.compress(chunk))
    body.append(c.flush())
    return bytes(128) + b"DICM" + meta + b"".join(body)


def test_a_deflate_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    """Issue 26.5: a Deflated data set was inflated whole, whatever it asked for (about 1,000:1)."""
    import tracemalloc

    bomb = deflated_bomb(300 * 2**20)
    assert len(bomb) < 2**20  # under a MiB on the wire
    tracemalloc.start()
    try:
        with pytest.raises(part10.TooLarge, match="more than 256 MiB"):
            part10.parse(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak  # counted in pieces, nothing kept
    small = deflated_bomb(4 * 2**20)
    with pytest.raises(part10.Corrupt, match="invalid VR"):  # within the limit: inflated and read (zero bytes are no element)
        part10.parse(small)
    with pytest.raises(part10.TooLarge, match="more than 2 MiB"):
        part10.parse(small, max_inflated=2 * 2**20)
    (tmp_path / "bomb.dcm").write_bytes(bomb)
    r = convert_path(str(tmp_path / "bomb.dcm"))
    assert r.error is not None and r.error.code == "too-large" and r.error.exit_code == 15 and "inflates to more than 256 MiB" in str(r.error)


def test_the_gateway_refuses_a_deflate_bomb_and_keeps_it(tmp_path: Path) -> None:
    from sr2fhir.dicom.identify import identify
    from sr2fhir.errors import ConversionError

    with pytest.raises(ConversionError, match="inflates to more than 256 MiB") as e:
        identify(deflated_bomb(300 * 2**20), "bomb")
    assert e.value.code == "too-large"
