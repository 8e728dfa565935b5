"""Reading Part 10 and DICOM JSON into the content tree, leniently, with precise errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pydicom
import pytest

from sr2fhir.dicom.content import MeasuredValue, SpatialCoordinates
from sr2fhir.diagnostics import Diagnostics
from sr2fhir.errors import ConversionError
from sr2fhir.dicom.limits import Limits
from sr2fhir.dicom.reader import read
from tests.helpers import FIXTURES, IG_EXAMPLE, SHARED


def test_paths_and_values_of_the_worked_example() -> None:
    (doc,) = read(IG_EXAMPLE)
    assert doc.root.template == "1500"
    group = doc.find("1.4.1")
    assert group is not None and group.concept and group.concept.value == "125007"
    num = doc.find("1.4.1.9")
    assert num is not None and isinstance(num.value, MeasuredValue)
    assert num.value.numeric == "31112.20"  # JSON 3.111220E+04: all seven digits kept
    assert num.value.unit is not None and (num.value.unit.value, num.value.unit.scheme) == ("mm3", "UCUM")
    assert [c.value for c in num.children][:1] == ["pylidc"]


def test_json_array_gives_one_document_per_object(tmp_path: Path) -> None:
    obj = json.loads(IG_EXAMPLE.read_text())
    f = tmp_path / "two.json"
    f.write_text(json.dumps([obj, obj]))
    docs = read(f)
    assert [d.source for d in docs] == [f"{f}[0]", f"{f}[1]"]


def test_graphic_data_keeps_float32_digits() -> None:
    (doc,) = read(FIXTURES / "tid1410_planar_regions.dcm")
    (polyline,) = [i.value for i in doc.root.walk() if isinstance(i.value, SpatialCoordinates) and i.value.graphic_type == "POLYLINE"]
    assert polyline.graphic_data[:4] == [0.25, 0.25, 0.75, 0.25]


def test_long_code_value_is_read_as_the_code() -> None:
    path = SHARED / "data" / "tid1500-variants" / "highdicom__sr_document__6d55e3c4_LongCodeValue.dcm"
    ds = pydicom.dcmread(path)
    lang = ds.ContentSequence[0].ConceptNameCodeSequence[0]
    assert "LongCodeValue" in lang and "CodeValue" not in lang
    (doc,) = read(path)
    assert doc.root.children[0].concept and doc.root.children[0].concept.value == str(lang.LongCodeValue)


@pytest.mark.parametrize(("content", "code", "exit_code"), [
    (None, "not-found", 10),
    (b"hello, this is not DICOM at all" * 10, "not-dicom", 11),
    (b"{ not json", "not-dicom", 11),
    (b'{"00100010": 5}', "not-dicom", 11),
])
def test_unreadable_inputs(tmp_path: Path, content: bytes | None, code: str, exit_code: int) -> None:
    f = tmp_path / "input"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(ConversionError) as e:
        read(f)
    assert (e.value.code, e.value.exit_code) == (code, exit_code)
    assert str(f) in str(e.value)


def test_truncated_part10(tmp_path: Path) -> None:
    data = (FIXTURES / "tid1501_containers.dcm").read_bytes()
    f = tmp_path / "cut.dcm"
    f.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ConversionError) as e:
        read(f)
    assert e.value.code == "truncated" and e.value.exit_code == 12


def test_depth_and_item_limits() -> None:
    with pytest.raises(ConversionError) as e:
        read(FIXTURES / "tid1501_containers.dcm", limits=Limits(max_depth=3))
    assert e.value.code == "too-deep"
    # The message names an item at the third level that has children (the fourth level is refused).
    m = re.search(r"content tree deeper than 3 levels at content item ([0-9.]+)$", str(e.value))
    assert m is not None, str(e.value)
    (whole,) = read(FIXTURES / "tid1501_containers.dcm")
    deepest_allowed = whole.find(m.group(1))
    assert m.group(1).count(".") == 2 and deepest_allowed is not None and deepest_allowed.children
    with pytest.raises(ConversionError) as e2:
        read(FIXTURES / "tid1501_containers.dcm", limits=Limits(max_items=5))
    assert e2.value.code == "too-many"


def test_bare_value_warning_names_the_tag() -> None:
    d = Diagnostics()
    read(IG_EXAMPLE, diagnostics=d)
    (w,) = [x for x in d.items if x.rule == "json-bare-value"]
    assert "(0008,0050)" in w.message


def test_hostile_dicom_json(tmp_path: Path) -> None:
    """Issue 10.13: deep brackets, deep sequences and huge integers were internal errors; a BOM was 'not DICOM'."""
    base = json.loads(IG_EXAMPLE.read_text())
    base = base[0] if isinstance(base, list) else base
    # 500 nested Content Sequences, written as text (json.dumps itself would recurse too deeply).
    deep = '{"vr": "SQ", "Value": [{"0040A730": ' * 500 + '{"vr": "SQ", "Value": []}' + "}]}" * 500
    whole = json.dumps({**base, "0040A730": "DEEP"}).replace('"DEEP"', deep)
    cases = {
        "brackets.json": ("[" * 10000 + "]" * 10000).encode(),
        "sequences.json": whole.encode(),
        "bigint.json": json.dumps(base).replace("{", '{"00091001": {"vr": "IS", "Value": [' + "9" * 5000 + "]},", 1).encode(),
    }
    expected = {"brackets.json": ("too-deep", 15), "sequences.json": ("too-deep", 15), "bigint.json": ("not-dicom", 11)}
    for name, data in cases.items():
        f = tmp_path / name
        f.write_bytes(data)
        with pytest.raises(ConversionError) as e:
            read(f)
        assert (e.value.code, e.value.exit_code) == expected[name], (name, str(e.value))
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + IG_EXAMPLE.read_bytes())
    (doc,) = read(bom)
    assert doc.root.concept is not None and doc.root.concept.value == "126000"


@pytest.mark.parametrize("occurrence, path", [(0, r"1"), (1, r"1(\.[0-9]+)+")])
def test_an_element_that_is_not_what_it_must_be_names_the_content_item(tmp_path: Path, occurrence: int, path: str) -> None:
    """A content item's Concept Name Code Sequence written as OB (the root's, the first in the file,
    and another's): a plain error naming the item and the element, never a traceback or the value."""
    data = (FIXTURES / "tid1501_containers.dcm").read_bytes()
    sq = b"\x40\x00\x43\xa0SQ\x00\x00"  # (0040,A043) SQ, explicit VR little endian
    at = data.index(sq)
    for _ in range(occurrence):
        at = data.index(sq, at + 1)
    f = tmp_path / "ob.dcm"
    f.write_bytes(data[:at] + b"\x40\x00\x43\xa0OB\x00\x00" + data[at + len(sq):])
    with pytest.raises(ConversionError) as e:
        read(f)
    assert (e.value.code, e.value.exit_code) == ("truncated", 12)
    assert re.search(rf"corrupt DICOM data at content item {path}: element \(0040,A043\) is not a sequence$", str(e.value)), str(e.value)
    assert str(f) in str(e.value)
