"""Read DICOM SR documents (Part 10 files or DICOM JSON, PS3.18 Annex F) into our content tree.

Reading is lenient: what real writers get wrong (a bare string where DICOM JSON wants an array,
a Long Code Value for a short code, a NUM without a Measured Value Sequence) is read with a
diagnostic, never a traceback. What cannot be read raises :class:`ConversionError` with a
message that names the file and, where there is one, the content item.
"""

from __future__ import annotations

import codecs
import fnmatch
import json
import logging
import os
import struct
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Iterator, Sequence

from . import part10
from .content import SRDocument
from .dataset import DataSet, keyword, tag_of
from .dictionary import uid_name
from .header import SRHeader
from ..diagnostics import Diagnostics
from ..errors import ConversionError
from .limits import Limits
from .tree import TreeBuilder
from .values import BINARY_FORMATS, CONTENT_SEQUENCE, VALUE_TYPE, multi_text, numbers, text

if TYPE_CHECKING:
    from pydicom.dataset import Dataset



# Header attributes the mapping reads, by keyword (PS3.3 C.7, C.17.2).
HEADER_KEYWORDS: tuple[str, ...] = (
    "SpecificCharacterSet",
    "Modality",
    "PatientID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "AccessionNumber",
    "IssuerOfAccessionNumberSequence",
    "Manufacturer",
    "ManufacturerModelName",
    "DeviceSerialNumber",
    "SoftwareVersions",
    "DeviceUID",
    "UDISequence",
    "StationName",
    "InstitutionName",
    "PreliminaryFlag",
    "CompletionFlag",
    "VerificationFlag",
    "ParticipantSequence",
    "ContentDate",
    "ContentTime",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "TimezoneOffsetFromUTC",
    "CurrentRequestedProcedureEvidenceSequence",
    "PertinentOtherEvidenceSequence",
    "PredecessorDocumentsSequence",
    "CodingSchemeIdentificationSequence",
)

NUMERIC_VALUE_JSON_TAG = "0040A30A"
SR_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."


def read(path: str | os.PathLike[str] | Dataset, *, limits: Limits = Limits(), diagnostics: Diagnostics | None = None) -> list[SRDocument]:
    """Read SR documents (``sr2fhir.read``).

    Parameters
    ----------
    path : str, os.PathLike or pydicom.Dataset
        A DICOM Part 10 file (read by sr2fhir's own reader, without pydicom), a DICOM JSON file
        (an object or an array of them), or a pydicom Dataset the caller already has.
    limits : Limits, optional
        Bounds against hostile input: deepest content tree, most content items.
    diagnostics : Diagnostics, optional
        Where to add what the reader repaired or could not read.

    Returns
    -------
    list of SRDocument
        One per SR document: a Part 10 file or a Dataset gives one, a DICOM JSON array one per object.

    Raises
    ------
    ConversionError
        Not a file, not DICOM, truncated or corrupt, not an SR, or a limit exceeded; ``code`` and
        ``exit_code`` say which (docs/diagnostics.md). The message never holds patient data.
    """
    if not isinstance(path, (str, os.PathLike)):
        name = str(getattr(path, "filename", "") or "<dataset>")
        with _quiet_pydicom():
            try:
                ds = dataset_from_pydicom(path)
            except Exception as exc:  # pydicom converts values as they are read
                raise ConversionError(f"{name}: corrupt DICOM data ({_describe(exc)})", code="truncated") from None
            return [document_from_dataset(ds, name, limits=limits, diagnostics=diagnostics if diagnostics is not None else Diagnostics())]
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise ConversionError(f"{name}: no such file", code="not-found")
    if p.is_dir():
        raise ConversionError(f"{name}: a folder that cannot be read (permission denied)", code="not-found")
    if not p.is_file():
        raise ConversionError(f"{name}: not a regular file", code="not-found")
    try:
        with open(p, "rb") as fh:
            return read_stream(fh, name, limits=limits, diagnostics=diagnostics)
    except PermissionError:
        raise ConversionError(f"{name}: permission denied", code="not-found") from None


@contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """pydicom's warnings quote element values (patient names among them): keep them out of logs."""
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def read_stream(fh: BinaryIO, name: str, *, limits: Limits = Limits(), diagnostics: Diagnostics | None = None) -> list[SRDocument]:
    """Read an open binary stream (a file or stdin), sniffing Part 10 vs DICOM JSON."""
    with _quiet_pydicom():
        return _read_stream(fh, name, limits, diagnostics if diagnostics is not None else Diagnostics())


def _read_stream(fh: BinaryIO, name: str, limits: Limits, diags: Diagnostics) -> list[SRDocument]:
    # The whole input in memory: a corrupt length can then never make pydicom allocate more
    # than the file holds (BytesIO.read(n) stops at the end; a file's read(n) allocates n first).
    data = fh.read()
    if data.startswith(codecs.BOM_UTF8):  # some Windows tools write JSON with a byte order mark
        data = data[len(codecs.BOM_UTF8):]
    if _json_start(data):
        datasets = _datasets_from_json(data, name, diags)
    else:
        datasets = [_dataset_from_part10(data, name)]
        del data
    return [document_from_dataset(ds, name if len(datasets) == 1 else f"{name}[{i}]", limits=limits, diagnostics=diags, release=True)
            for i, ds in enumerate(datasets)]


def _json_start(data: bytes) -> bool:
    return data.lstrip()[:1] in (b"{", b"[")


SNIFF_BYTES = 4096


def plainly_not_dicom(path: str) -> bool:
    """Whether a file is neither Part 10 (DICM at byte 128) nor JSON (first non-blank byte `{` or
    `[`), judged from its first bytes as the reader would judge it whole (a folder walk skips such
    files, issue 27.8). A file that cannot be read, or only blanks so far, is not judged here."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return False
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    if len(head) >= SNIFF_BYTES - len(codecs.BOM_UTF8) and not head.strip():
        return False
    return head[128:132] != b"DICM" and not _json_start(head)


def _dataset_from_part10(data: bytes, name: str) -> DataSet:
    """Parse a Part 10 file with the lean reader (part10.py); refuse one that is not whole."""
    if data[128:132] != b"DICM":
        raise ConversionError(f"{name}: not a DICOM file (no DICM preamble and not DICOM JSON)", code="not-dicom")
    try:
        parsed = part10.parse(data)
    except part10.Incomplete as exc:
        raise ConversionError(f"{name}: truncated DICOM file: {exc}", code="truncated") from None
    except part10.Corrupt as exc:
        raise ConversionError(f"{name}: corrupt DICOM file: {exc}", code="truncated") from None
    except part10.TooLarge as exc:
        raise ConversionError(f"{name}: {exc}", code="too-large") from None
    except (struct.error, IndexError, ValueError):
        raise ConversionError(f"{name}: truncated or corrupt DICOM file (element structure)", code="truncated") from None
    except RecursionError:
        raise ConversionError(f"{name}: sequences nested too deeply to read", code="too-deep") from None
    except MemoryError:
        raise ConversionError(f"{name}: corrupt DICOM file: an element declares more data than can be held", code="too-large") from None
    ds = parsed.dataset
    try:
        sop_class = text(ds, SOP_CLASS_UID) or ""
    except Exception:  # a corrupt element: document_from_dataset reports what it can of it
        sop_class = ""
    top = parsed.top_tags
    if (not sop_class or sop_class.startswith(SR_SOP_CLASS_PREFIX)) and CONTENT_SEQUENCE not in top and (not top or max(top) < CONTENT_SEQUENCE):
        raise ConversionError(
            f"{name}: truncated DICOM file: it ends before the SR content tree (no Content Sequence (0040,A730), and no element after it)",
            code="truncated",
        )
    return ds


SOP_CLASS_UID = tag_of("SOPClassUID")


def dataset_from_pydicom(ds: Dataset) -> DataSet:
    """A pydicom Dataset as our data set, with pydicom's decoded values (DICOM JSON input, a
    Dataset given to `read`, and the oracle of the lean reader's tests)."""
    from pydicom.multival import MultiValue

    out = DataSet()
    for elem in ds:
        v = elem.value
        if elem.VR == "SQ":
            out[int(elem.tag)] = ("SQ", [dataset_from_pydicom(item) for item in (v or [])])
        elif isinstance(v, bytes):
            out[int(elem.tag)] = (elem.VR, v)
        elif v is None or v == "":
            out[int(elem.tag)] = (elem.VR, [])
        else:
            out[int(elem.tag)] = (elem.VR, list(v) if isinstance(v, (list, tuple, MultiValue)) else [v])
    return out


def _describe(exc: BaseException) -> str:
    """The exception's type, and its text only for kinds whose text names positions and tags:
    other pydicom messages can quote element values, patient data among them."""
    if isinstance(exc, (EOFError, OSError, struct.error, json.JSONDecodeError)) and str(exc):
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return type(exc).__name__


def _datasets_from_json(data: bytes, name: str, diags: Diagnostics) -> list[DataSet]:
    from pydicom.dataset import Dataset

    try:
        obj = json.loads(data, parse_float=Decimal)  # Decimal keeps a DS value's digits
    except RecursionError:
        raise ConversionError(f"{name}: DICOM JSON nested too deeply to read", code="too-deep") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(f"{name}: invalid DICOM JSON ({_describe(exc)})", code="not-dicom") from None
    except ValueError:  # e.g. an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise ConversionError(f"{name}: invalid DICOM JSON (a number too long to read)", code="not-dicom") from None
    objs = obj if isinstance(obj, list) else [obj]
    if not objs or not all(isinstance(o, dict) for o in objs):
        raise ConversionError(f"{name}: invalid DICOM JSON: expected an object or an array of objects", code="not-dicom")
    kinds = {o["resourceType"] for o in objs if isinstance(o.get("resourceType"), str)}
    if kinds:  # DICOM JSON keys are tags (8 hex digits); resourceType is FHIR's
        raise ConversionError(f"{name}: this is FHIR JSON ({', '.join(sorted(kinds))}), not DICOM: `sr2fhir validate` checks FHIR; convert reads DICOM SR (Part 10 or DICOM JSON)", code="not-dicom")
    out = []
    for i, o in enumerate(objs):
        try:
            _repair_json(o, diags, "")
        except ConversionError as exc:
            raise ConversionError(f"{name}: {exc}", code=exc.code, exit_code=exc.exit_code) from None
        try:
            out.append(dataset_from_pydicom(Dataset.from_json(o)))
        except RecursionError:
            raise ConversionError(f"{name}: DICOM JSON nested too deeply", code="too-deep") from None
        except Exception as exc:  # pydicom raises many types on malformed JSON
            raise ConversionError(f"{name}: invalid DICOM JSON in object {i} ({_describe(exc)})", code="not-dicom") from None
    return out


def _repair_json(obj: dict[str, Any], diags: Diagnostics, where: str, depth: int = 0) -> None:
    """Fix, with a warning, the DICOM JSON mistakes seen in the wild (PS3.18 F.2)."""
    if depth > 200:
        raise ConversionError("DICOM JSON nested too deeply", code="too-deep")
    for tag, attr in obj.items():
        if not isinstance(attr, dict):
            raise ConversionError(f"invalid DICOM JSON: attribute {tag}{where} is not an object", code="not-dicom")
        if "Value" in attr and not isinstance(attr["Value"], list):
            diags.warn("json-bare-value", f"DICOM JSON attribute ({tag[:4]},{tag[4:]}){where} has a bare Value, not an array", action="read as a one-element array")
            attr["Value"] = [attr["Value"]]
        vr = attr.get("vr")
        values = attr.get("Value")
        if isinstance(values, list) and any(isinstance(v, Decimal) for v in values):
            attr["Value"] = values = [(str(v) if vr in ("DS", "IS") else float(v)) if isinstance(v, Decimal) else v for v in values]
        if tag.upper() == NUMERIC_VALUE_JSON_TAG and vr == "DS":
            # pydicom's from_json turns DS text into a float and forgets the digits; read
            # Numeric Value (0040,A30A) as text so that "3.111220E+04" keeps its precision.
            attr["vr"] = "LO"
        if vr == "SQ" and isinstance(values, list):
            for k, item in enumerate(values):
                if isinstance(item, dict):
                    _repair_json(item, diags, f"{where} > ({tag[:4]},{tag[4:]})[{k + 1}]", depth + 1)
        elif vr == "PN" and isinstance(values, list):
            attr["Value"] = [{"Alphabetic": v} if isinstance(v, str) else v for v in values]


# --- dataset -> content tree -------------------------------------------------------------


def document_from_dataset(
    ds: DataSet, name: str, *, limits: Limits = Limits(), diagnostics: Diagnostics | None = None, release: bool = False
) -> SRDocument:
    """Build an :class:`SRDocument` from our data set, or raise ConversionError.

    `release` lets the data set's Content Sequences go as they are read (the reader's own data sets).
    """
    diags = diagnostics if diagnostics is not None else Diagnostics()
    try:
        sop_class = text(ds, SOP_CLASS_UID) or ""
        if VALUE_TYPE not in ds and CONTENT_SEQUENCE not in ds:
            kind = _sop_class_name(sop_class) if sop_class else "no SOP Class UID"
            raise ConversionError(f"{name}: DICOM but not a Structured Report ({kind}): no SR content tree", code="not-sr")
        builder = TreeBuilder(name, limits, diags, release=release)
        root = builder.build(ds)

        def uid(kw: str) -> str | None:
            return builder.uid(text(ds, tag_of(kw)), root, f"{kw} of the SR header")

        return SRDocument(
            source=name,
            sop_class_uid=uid("SOPClassUID") or "",
            sop_instance_uid=uid("SOPInstanceUID") or "",
            series_instance_uid=uid("SeriesInstanceUID"),
            study_instance_uid=uid("StudyInstanceUID"),
            root=root,
            header=sr_header(ds),
        )
    except ConversionError:
        raise
    except RecursionError:
        raise ConversionError(f"{name}: content tree nested too deeply to read", code="too-deep") from None
    except Exception as exc:  # a value that cannot be what its element says (corrupt data)
        raise ConversionError(
            f"{name}: truncated or corrupt DICOM data ({_describe(exc)})",
            code="truncated",
        ) from None


def _sop_class_name(uid: str) -> str:
    name = uid_name(uid)
    return f"{name} {uid}" if name else uid


_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
_HEADER_TAGS = tuple((kw, tag_of(kw)) for kw in HEADER_KEYWORDS)


def sr_header(ds: DataSet) -> SRHeader:
    """The header attributes the mapping reads (HEADER_KEYWORDS), typed."""
    return SRHeader.from_keywords({kw: _plain_element(ds, tag) for kw, tag in _HEADER_TAGS if tag in ds})


def _plain_element(ds: DataSet, tag: int) -> Any:
    """One element as plain Python: a string (a list if several), a number (a list if several),
    a sequence as a list of {keyword: value}; None for what the header never reads (bytes)."""
    vr, v = ds[tag]
    if vr == "SQ":
        return [{kw: _plain_element(item, t) for t in item if (kw := keyword(t))} for item in v]
    if vr in _STRING_VRS:
        values = multi_text(ds, tag) if vr not in ("LT", "ST", "UT") else [x for x in [text(ds, tag)] if x]
        return values[0] if len(values) == 1 else (values or None)
    if type(v) is bytes and vr not in BINARY_FORMATS:
        return None
    nums = numbers(ds, tag, "d") if vr in ("FL", "FD", "OF", "OD") else numbers(ds, tag, "i")
    return nums[0] if len(nums) == 1 else (nums or None)


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input: its path, and its name relative to the folder given on the command line."""

    path: str
    relative: str


def iter_inputs(
    inputs: Iterable[str], notes: list[str] | None = None, include: Sequence[str] = (), skipped: list[str] | None = None,
) -> Iterator[InputFile]:
    """Expand folders (recursively, sorted, following links) into files; '-' stays as stdin.

    A folder that cannot be read is yielded itself, so that it fails with its reason; a link
    back to a folder already walked is skipped, with a note (issue 10.7). In a folder, only files
    whose name or relative path matches one of the `include` globs (all files when none) are
    read, and a file that is plainly not DICOM is left out and added to `skipped` (issue 27.8);
    a file named on its own is always read.
    """
    for inp in inputs:
        if inp == "-" or not os.path.isdir(inp):
            yield InputFile(inp, os.path.basename(inp) or inp)
            continue
        seen: set[str] = set()
        unreadable: list[str] = []
        for root, dirs, files in os.walk(inp, followlinks=True, onerror=lambda e: unreadable.append(str(e.filename))):
            real = os.path.realpath(root)
            if real in seen:
                dirs[:] = []
                if notes is not None:
                    notes.append(f"{root}: a link to a folder already read (a loop or a second path to it): skipped")
                continue
            seen.add(real)
            dirs.sort()
            for f in sorted(files):
                if not f.startswith("."):
                    full = os.path.join(root, f)
                    rel = os.path.relpath(full, inp)
                    if include and not any(fnmatch.fnmatchcase(f, g) or fnmatch.fnmatchcase(rel, g) for g in include):
                        continue
                    if plainly_not_dicom(full):
                        if skipped is not None:
                            skipped.append(full)
                        continue
                    yield InputFile(full, rel)
            while unreadable:
                bad = unreadable.pop(0)
                yield InputFile(bad, os.path.relpath(bad, inp))
        while unreadable:
            bad = unreadable.pop(0)
            yield InputFile(bad, os.path.relpath(bad, inp) if bad != inp else os.path.basename(bad.rstrip(os.sep)))
