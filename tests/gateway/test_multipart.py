"""multipart/related as STOW-RS and WADO-RS carry DICOM (RFC 2387, PS3.18 8.6.1.2)."""

from __future__ import annotations

import pytest

from sr2fhir.gateway.multipart import MultipartError, Part, build, media_type, parse

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
