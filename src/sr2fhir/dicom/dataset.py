"""Our own data set: what the reader hands the tree builder (PS3.5 7.1 data elements, 7.5 nesting).

A :class:`DataSet` maps a tag (an int, as PS3.6 writes it: group << 16 | element) to
``(VR, value)``. A leaf's value is either the element's raw bytes, exactly as a Part 10 file holds
them (`part10.parse`), or a list of values already decoded (from DICOM JSON through pydicom, see
`reader.dataset_from_pydicom`); a sequence's value is a list of item DataSets. `values.py`
decodes both kinds, so the content tree does not depend on where the data set came from.
"""

from __future__ import annotations

from typing import Any

from .ps3_6 import DICTIONARY


class DataSet(dict[int, tuple[str, Any]]):
    """Elements by tag; `charset` is the Specific Character Set (0008,0005) in force (PS3.5 6.1.2.3),
    `little` the byte order of raw binary values (False only in Explicit VR Big Endian files)."""

    charset: tuple[str, ...] = ()
    little: bool = True


class CorruptElement(ValueError):
    """An element that cannot be what the standard says it is (a sequence that is not one); the
    message names the tag, never the value."""


def keyword(tag: int) -> str:
    """The PS3.6 keyword of a tag, or '' (private and unknown tags)."""
    entry = DICTIONARY.get(tag)
    return entry[1] if entry else ""


def dictionary_vr(tag: int) -> str | None:
    """The PS3.6 VR of a tag (the first where PS3.6 allows several, e.g. 'US or SS'), or None."""
    entry = DICTIONARY.get(tag)
    return entry[0][:2] if entry else None


def tag_of(kw: str) -> int:
    """The tag of a PS3.6 keyword."""
    return _TAGS[kw]


_TAGS: dict[str, int] = {kw: tag for tag, (_, kw) in DICTIONARY.items()}
