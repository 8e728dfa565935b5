"""multipart/related as STOW-RS and WADO-RS carry DICOM (RFC 2387, PS3.18 8.6.1.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr2fhir.gateway.multipart import FileBuffer, MultipartError, Part, build, media_type, parse, spans

CT = 'multipart/related; type="application/dicom"; boundary=b0undary'


def test_round_trip_keeps_every_byte() -> None:
    # Binary content holding CR LF and a boundary-like text not preceded by CR LF "--".
    parts = [Part("application/dicom", b"\r\n\x00--b0undar\r\nx" * 50), Part("application/dicom", b""), Part("application/json", b"{}")]
    assert parse(build(parts, "b0undary"), CT) == parts


def test_preamble_epilogue_and_part_without_headers() -> None:
    body = b"preamble\r\n--b0undary\r\n\r\nDATA\r\n--b0undary--\r\nepilogue"
    assert parse(body, CT) == [Part("application/dicom", b"DATA")]  # the type parameter is the default


@pytest.mark.parametrize("body, content_type, message", [
    (b"--b0undary\r\n\r\nDATA", CT, "closing delimiter"),
    (b"DATA", CT, "no part"),
    (b"--x--", 'multipart/related; type="application/dicom"', "no boundary"),
    (b"--x--", "application/dicom", "expected a multipart body"),
])
def test_broken_bodies_are_named(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(MultipartError, match=message):
        parse(body, content_type)


def test_media_type_parameters() -> None:
    assert media_type('Multipart/Related; Type="application/dicom"; boundary="a b"') == ("multipart/related", {"type": "application/dicom", "boundary": "a b"})


@pytest.mark.parametrize("window", [1, 7, 64, 1 << 20])
def test_a_spooled_body_splits_as_the_bytes_do(tmp_path: Path, window: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """STOW-RS reads a body from its spool file a window at a time: a delimiter that straddles two
    windows is found all the same."""
    parts = [Part("application/dicom", b"\r\n\x00--b0undar\r\nx" * 50), Part("application/dicom", b""), Part("application/json", b"{}")]
    body = b"preamble\r\n" + build(parts, "b0undary") + b"epilogue"
    (tmp_path / "body").write_bytes(body)
    monkeypatch.setattr(FileBuffer, "WINDOW", window)
    with open(tmp_path / "body", "rb") as fh:
        buffer = FileBuffer(fh)
        found = spans(buffer, CT)
        assert found == spans(body, CT)
        assert [Part(s.content_type, buffer[s.start : s.end]) for s in found] == parts
