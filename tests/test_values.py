"""dicom/values.py: the values the tree builder decodes from raw element bytes (PS3.5 6.1
character repertoires, 6.2 value representations and multiplicity, 7.3 byte order), each case
built here from the standard's rules, the encoded bytes made by pydicom where a character set
is involved (issue 25: mutation testing found these rules asserted nowhere)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from pydicom.charset import encode_string
from pydicom.valuerep import PersonName

from sr2fhir.dicom.content import Code
from sr2fhir.dicom.dataset import DataSet, tag_of
from sr2fhir.dicom.values import clear_caches, code, ints, multi_text, numbers, text

TAG = 0x00091001  # a private tag: its VR is the element's own


def element(vr: str, value: Any, charset: tuple[str, ...] = (), little: bool = True) -> DataSet:
    ds = DataSet()
    ds[TAG] = (vr, value)
    if charset:
        ds.charset = charset
    if not little:
        ds.little = False
    return ds


@pytest.mark.parametrize("vr", ["CS", "SH", "LO", "DS", "IS", "UI", "DT", "PN"])
def test_a_multi_valued_string_gives_its_first_value(vr: str) -> None:
    """PS3.5 6.4: values are separated by a backslash; padding (space, NUL) is not part of them."""
    ds = element(vr, b" A1 \\B2\\C3 \x00")
    assert text(ds, TAG) == "A1" and multi_text(ds, TAG) == ["A1", "B2", "C3"]


@pytest.mark.parametrize("vr", ["LT", "ST", "UT", "UR"])
def test_a_text_vr_is_one_value_backslash_and_all(vr: str) -> None:
    """PS3.5 6.2: in LT, ST, UT and UR the backslash is a character, not a delimiter."""
    ds = element(vr, b"a\\b\\c \x00")
    assert text(ds, TAG) == "a\\b\\c" and multi_text(ds, TAG) == ["a\\b\\c"]


def test_blank_and_absent() -> None:
    assert text(element("LO", b"  \x00"), TAG) is None and text(DataSet(), TAG) is None and multi_text(DataSet(), TAG) == []


def test_a_sequence_or_an_empty_value_where_text_is_expected_is_no_text() -> None:
    """Corrupt input: a writer's sequence where the dictionary has text, or a value the reader
    left out (None): no text, never the printed form of a data set."""
    for vr, value in (("SQ", [DataSet()]), ("OB", None)):
        assert text(element(vr, value), TAG) is None and multi_text(element(vr, value), TAG) == [], vr


@pytest.mark.parametrize(("vr", "raw", "charset", "want"), [
    ("LO", b"caf\xe9\\th\xe9 \x00", ("ISO_IR 100",), "caf\u00e9"),                       # Latin-1, the first value
    ("LT", b"caf\xe9\\th\xe9 \x00", ("ISO_IR 100",), "caf\u00e9\\th\u00e9"),              # one value
    ("LO", "\u00e9t\u00e9".encode("utf-8") + b"\x00", ("ISO_IR 192",), "\u00e9t\u00e9"),  # UTF-8, NUL padding
    ("CS", b"\xe9", ("ISO_IR 192",), "\u00e9"),  # a VR of the default repertoire is never in the character set: Latin-1, as pydicom reads it
    ("LO", b"caf\xe9", (), "caf\u00e9"),          # no Specific Character Set: ISO-IR 6, read as Latin-1 when a byte is not ASCII
], ids=["latin1-first-value", "latin1-one-value", "utf8", "default-repertoire-vr", "no-charset"])
def test_non_ascii_text_in_its_character_set(vr: str, raw: bytes, charset: tuple[str, ...], want: str) -> None:
    """PS3.5 6.1.2.3: SH, LO, ST, LT, UC, UT and PN are in the Specific Character Set; the rest
    are the default repertoire."""
    assert text(element(vr, raw, charset), TAG) == want


@pytest.mark.parametrize("vr", ["LO", "PN"])
def test_iso_2022_text_is_decoded_though_its_bytes_are_7_bit(vr: str) -> None:
    """PS3.5 6.1.2.5 and Annex H: ISO 2022 escape sequences are 7-bit, so an ASCII-looking value
    may be Japanese; the bytes are pydicom's encoding of the standard's example."""
    value = "Yamada^Tarou=\u5c71\u7530^\u592a\u90ce=\u3084\u307e\u3060^\u305f\u308d\u3046" if vr == "PN" else "\u5c71\u7530\u592a\u90ce"
    charset = ("", "ISO 2022 IR 87")
    encodings = ["iso8859", "iso2022_jp"]
    raw = PersonName(value).encode(encodings) if vr == "PN" else encode_string(value, encodings)
    assert raw.isascii() and b"\x1b$B" in raw
    assert text(element(vr, raw, charset), TAG) == value
    assert text(element(vr, raw), TAG) == raw.decode("ascii")  # without the character set: the escapes are only characters


def test_binary_numbers_in_either_byte_order_and_by_the_readers_format() -> None:
    """PS3.5 7.3: binary values in the transfer syntax's byte order; UN, OB and OW (a writer's
    VR for a value the dictionary gives another) in the format the reader asks for; a trailing
    piece shorter than one value is not a value."""
    fl = struct.pack("<2f", 1.5, -2.25)
    assert numbers(element("FL", fl + b"\x01"), TAG, "f") == [1.5, -2.25]
    assert numbers(element("FD", struct.pack(">d", 0.1), little=False), TAG, "d") == [0.1]
    for vr in ("UN", "OB", "OW"):
        assert numbers(element(vr, fl), TAG, "f") == [1.5, -2.25], vr
    us = numbers(element("US", struct.pack("<3H", 1, 2, 65535)), TAG, "i")
    assert us == [1, 2, 65535] and all(type(x) is int for x in us)


def test_numbers_written_as_text_or_already_decoded() -> None:
    """IS and DS are text (PS3.5 6.2); DICOM JSON gives decoded values."""
    as_ints = numbers(element("IS", b" 1\\2 \\-3"), TAG, "i")
    assert as_ints == [1, 2, -3] and all(type(x) is int for x in as_ints)
    assert numbers(element("DS", b"1.5\\-2E3 "), TAG, "d") == [1.5, -2000.0]
    decoded = numbers(element("IS", [4, 5]), TAG, "i")
    assert decoded == [4, 5] and all(type(x) is int for x in decoded)
    assert ints(element("UL", struct.pack("<I", 7)), TAG) == [7] and ints(element("IS", b"8"), TAG) == [8] and ints(DataSet(), TAG) == []


def code_item(**elements: bytes) -> DataSet:
    """A Code Sequence holding one item of these elements (by keyword, raw bytes)."""
    item = DataSet()
    for kw, raw in elements.items():
        item[tag_of(kw)] = ({"CodeMeaning": "LO", "CodingSchemeVersion": "SH", "LongCodeValue": "UC", "URNCodeValue": "UR"}.get(kw, "SH"), raw)
    ds = DataSet()
    ds[tag_of("ConceptNameCodeSequence")] = ("SQ", [item])
    return ds


def test_a_code_and_the_cache_that_shares_it() -> None:
    """PS3.3 Table 8.8-1: Code Value, Long Code Value or URN Code Value; the scheme, its version
    and the meaning. The cache gives one object per distinct code, and never one code for another."""
    clear_caches()
    seq = tag_of("ConceptNameCodeSequence")
    base = {"CodeValue": b"126401", "CodingSchemeDesignator": b"DCM", "CodeMeaning": b"SUVbw"}
    assert code(code_item(**base), seq) == Code("126401", "DCM", "SUVbw", None)
    assert code(code_item(**base), seq) is code(code_item(**base), seq)
    variants = [
        {**base, "CodingSchemeDesignator": b"99X"},
        {**base, "CodingSchemeVersion": b"01"},
        {"LongCodeValue": b"a-long-code-value-of-more-than-16-characters", "CodingSchemeDesignator": b"DCM", "CodeMeaning": b"SUVbw"},
        {"LongCodeValue": b"another-long-code-value-of-more-than-16", "CodingSchemeDesignator": b"DCM", "CodeMeaning": b"SUVbw"},
        {"URNCodeValue": b"urn:oid:1.2.3", "CodingSchemeDesignator": b"DCM", "CodeMeaning": b"SUVbw"},
        {"URNCodeValue": b"urn:oid:1.2.4", "CodingSchemeDesignator": b"DCM", "CodeMeaning": b"SUVbw"},
    ]
    got = [code(code_item(**v), seq) for v in variants]
    assert [(c.value, c.scheme, c.version) for c in got if c] == [
        ("126401", "99X", None), ("126401", "DCM", "01"),
        ("a-long-code-value-of-more-than-16-characters", "DCM", None), ("another-long-code-value-of-more-than-16", "DCM", None),
        ("urn:oid:1.2.3", "DCM", None), ("urn:oid:1.2.4", "DCM", None),
    ]


def test_a_code_that_lacks_parts() -> None:
    """What is missing stays empty, never invented; a code with neither value nor scheme is none."""
    seq = tag_of("ConceptNameCodeSequence")
    assert code(code_item(CodingSchemeDesignator=b"DCM", CodeMeaning=b"x"), seq) == Code("", "DCM", "x", None)
    assert code(code_item(CodeValue=b"1", CodeMeaning=b"x"), seq) == Code("1", "", "x", None)
    assert code(code_item(CodeValue=b"1", CodingSchemeDesignator=b"DCM"), seq) == Code("1", "DCM", "", None)
    assert code(code_item(CodeMeaning=b"only a meaning"), seq) is None
    assert code(DataSet(), seq) is None
