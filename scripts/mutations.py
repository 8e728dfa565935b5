"""Mutations of real and generated SR files, for property-based tests and the fuzz campaign.

A mutation takes the bytes of a Part 10 file and a random generator and returns new bytes:
byte flips, truncation, insertion, or structural edits through pydicom (drop, retype, recode,
reorder, junk values, deep nesting).
"""

from __future__ import annotations

import io
import json
import random
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator
from unittest import mock

import pydicom
import pydicom.filewriter
from pydicom.dataset import Dataset

VALUE_TYPES = ["CONTAINER", "NUM", "CODE", "TEXT", "UIDREF", "PNAME", "DATE", "TIME", "DATETIME", "SCOORD", "SCOORD3D", "TCOORD", "IMAGE", "COMPOSITE", "WAVEFORM", "BOGUS", ""]
KEYWORDS = [
    "ValueType", "ConceptNameCodeSequence", "RelationshipType", "MeasuredValueSequence", "ConceptCodeSequence",
    "ReferencedSOPSequence", "GraphicData", "GraphicType", "TextValue", "UID", "ContentSequence",
    "ObservationDateTime", "ReferencedFrameOfReferenceUID", "NumericValueQualifierCodeSequence",
]
JUNK_NUMBERS = ["abc", "NaN", "1e999", "-inf", "", "1.2.3", "  7  ", "0x10", "+", "1E+400", "-0"]
JUNK_TEXT = ["", " ", "\\", "ä", "x" * 300, "TID1500", "1500", "126000", "DCM", "99PRIVATE"]


def content_items(ds: Dataset) -> list[Dataset]:
    out, stack = [], [ds]
    while stack:
        d = stack.pop()
        out.append(d)
        stack.extend(d.get("ContentSequence", []) or [])
    return out


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    if not data:  # truncated to nothing by an earlier round
        return bytes([rng.randrange(256)])
    b = bytearray(data)
    for _ in range(rng.randint(1, 12)):
        i = rng.randrange(132, len(b)) if len(b) > 132 else rng.randrange(len(b))
        b[i] = rng.randrange(256)
    return bytes(b)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, len(data))] if data else data


def insert_bytes(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + data[i:]


@contextmanager
def _plain_exceptions(tag: Any) -> Iterator[None]:
    yield


def _structural(edit: Callable[[Dataset, random.Random], None]) -> Callable[[bytes, random.Random], bytes]:
    def mutate(data: bytes, rng: random.Random) -> bytes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data))
            edit(ds, rng)
            out = io.BytesIO()
            # pydicom's writer re-raises an error at every sequence level with the whole traceback
            # so far in its message: the message doubles per level, and an error 30 levels deep
            # (after `nest`) took 17 GB before the OOM killer stopped the test run. We want the
            # plain error (the mutation then falls back to byte flips).
            with mock.patch.object(pydicom.filewriter, "tag_in_exception", _plain_exceptions):
                ds.save_as(out, enforce_file_format=False)
        return out.getvalue()

    return mutate


def _drop(ds: Dataset, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 4)):
        item = rng.choice(content_items(ds))
        kw = rng.choice(KEYWORDS)
        if kw in item:
            delattr(item, kw)


def _retype(ds: Dataset, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 3)):
        rng.choice(content_items(ds)).ValueType = rng.choice(VALUE_TYPES) or None


def _recode(ds: Dataset, rng: random.Random) -> None:
    items = [i for i in content_items(ds) if "ConceptNameCodeSequence" in i and i.ConceptNameCodeSequence]
    for _ in range(rng.randint(1, 3)):
        if not items:
            return
        c = rng.choice(items).ConceptNameCodeSequence[0]
        choice = rng.randrange(4)
        if choice == 0:
            c.CodeValue = rng.choice(["125007", "126010", "126011", "C0034375", "111030", "121191", "363698007", "G-C0E3", "111001", "111000", "111002", "111003", "122405", "121401", "112039", "112040", rng.choice(JUNK_TEXT)[:16]])
        elif choice == 1:
            c.CodingSchemeDesignator = rng.choice(["DCM", "SCT", "SRT", "UMLS", "99X", ""])
        elif choice == 2:
            del c.CodeValue
            c.LongCodeValue = "126010"
        else:
            c.CodeMeaning = rng.choice(JUNK_TEXT)


def _junk_values(ds: Dataset, rng: random.Random) -> None:
    for item in content_items(ds):
        if rng.random() < 0.3:
            mvs = item.get("MeasuredValueSequence")
            if mvs:
                mvs[0].NumericValue = rng.choice(JUNK_NUMBERS) if rng.random() < 0.5 else mvs[0].NumericValue
            if "GraphicData" in item:
                item.GraphicData = [rng.uniform(-1e6, 1e6) for _ in range(rng.randrange(0, 9))]
            if "ObservationDateTime" in item or rng.random() < 0.1:
                item.ObservationDateTime = rng.choice(["20240230", "2024", "20241301120000", "nonsense", "20240101120000+9999"])
    if rng.random() < 0.3:
        ds.ContentDate = rng.choice(["", "2024", "20241399"])
    if rng.random() < 0.3:
        ds.PreliminaryFlag = rng.choice(["PRELIMINARY", "FINAL", "MAYBE"])


def _reorder(ds: Dataset, rng: random.Random) -> None:
    for item in content_items(ds):
        seq = item.get("ContentSequence")
        if seq and rng.random() < 0.5:
            items = list(seq)
            rng.shuffle(items)
            item.ContentSequence = items


def _nest(ds: Dataset, rng: random.Random) -> None:
    """Wrap a subtree in many containers (deep trees)."""
    items = [i for i in content_items(ds) if i.get("ContentSequence")]
    if not items:
        return
    target = rng.choice(items)
    inner = target.ContentSequence
    for _ in range(rng.randint(5, 80)):
        c = Dataset()
        c.RelationshipType, c.ValueType = "CONTAINS", "CONTAINER"
        c.ContentSequence = inner
        inner = [c]
    target.ContentSequence = inner


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "flip": flip_bytes,
    "truncate": truncate,
    "insert": insert_bytes,
    "drop": _structural(_drop),
    "retype": _structural(_retype),
    "recode": _structural(_recode),
    "junk": _structural(_junk_values),
    "reorder": _structural(_reorder),
    "nest": _structural(_nest),
}


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random mutation (structural ones fall back to byte flips on unreadable input)."""
    name = rng.choice(list(MUTATIONS))
    try:
        return name, MUTATIONS[name](data, rng)
    except Exception:
        return "flip", flip_bytes(data, rng)


def check_result(result: Any) -> None:
    """What every conversion must satisfy, whatever the input."""
    from fhir.resources import get_fhir_model_class

    from sr2fhir.fhir.bundle import dumps, stdlib_dumps

    if result.error is not None:
        assert result.error.code != "exception", f"internal error: {result.error}"
        assert str(result.error)
        return
    for conv in result.conversions:
        for r in conv.resources.resources():
            get_fhir_model_class(r["resourceType"]).model_validate(r)
            # orjson's text reads back as the json module's (its oracle, D-41), and is UTF-8
            assert json.loads(dumps(r).encode("utf-8")) == json.loads(stdlib_dumps(r)), r["id"]
    for d in result.diagnostics.items:
        if d.path is not None:
            assert d.path == "1" or d.path.startswith("1."), d.path


def element_boundaries(data: bytes) -> list[int]:
    """The byte offset of every element of a Part 10 file (file meta, data set, nested items)."""
    from sr2fhir.dicom import part10

    found: list[int] = []
    part10.parse(data, boundaries=found)
    return sorted(set(found))


def check_truncation(data: bytes, cut: int, whole_observations: int, tmp: Any) -> str:
    """Convert `data[:cut]`: it must fail, or yield every Observation the whole file yields, or warn
    that the report is incomplete (issue 10.3). Returns the outcome ('truncated', 'whole', ...)."""
    from sr2fhir.batch import convert_path

    f = tmp / "cut.dcm"
    f.write_bytes(data[:cut])
    result = convert_path(str(f))
    check_result(result)
    if result.error is not None:
        return result.error.code
    n = sum(1 for c in result.conversions for r in c.resources.resources() if r["resourceType"] == "Observation")
    incomplete = any(d.rule == "incomplete-report" for d in result.diagnostics.items)
    assert n == whole_observations or incomplete, f"cut at {cut}: {n} of {whole_observations} Observations, accepted without a word"
    return "whole" if n == whole_observations else "incomplete-warned"
