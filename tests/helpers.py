"""Test helpers: where the IG and the real data are, converting, looking up, hand-built trees."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from sr2fhir import Options, convert, read
from sr2fhir.dicom.content import Code, ContentItem, SRDocument
from sr2fhir.dicom.header import SRHeader
from sr2fhir.diagnostics import Diagnostics
from sr2fhir.fhir.bundle import iter_compact_entries
from sr2fhir.mapping.report import Conversion

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SR2FHIR_SHARED", ROOT.parent / "shared"))
FIXTURES = ROOT / "tests" / "fixtures"
IG_EXAMPLE = SHARED / "ig" / "input" / "dicom" / "Example-MeasurementReport.json"
IG_RESOURCES = SHARED / "ig-package" / "resources"
PROFILE = "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"


def shared_files(folder: str) -> list[Path]:
    """The files of ../shared/data/<folder>; fails loudly when the data is missing."""
    d = SHARED / "data" / folder
    if not d.is_dir():
        pytest.fail(f"test data missing: {d} (../shared must sit beside the checkout)")
    return sorted(d.glob("*.dcm"))


class Converted:
    """One converted document, with look-ups by profile and by reference."""

    def __init__(self, conversion: Conversion) -> None:
        self.conversion = conversion
        self.diagnostics = conversion.diagnostics
        self.resources = conversion.resources.resources()
        self.by_url = {f"urn:uuid:{r['id']}": r for r in self.resources}

    def profile(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if PROFILE + name in r.get("meta", {}).get("profile", [])]

    def one(self, name: str) -> dict[str, Any]:
        found = self.profile(name)
        assert len(found) == 1, f"expected one {name}, found {len(found)}"
        return found[0]

    def resolve(self, ref: dict[str, Any]) -> dict[str, Any]:
        return self.by_url[ref["reference"]]

    def of_type(self, rtype: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["resourceType"] == rtype]

    def rules(self) -> list[str]:
        return [d.rule for d in self.diagnostics.items]


def convert_one(path: Path | str, options: Options = Options()) -> Converted:
    diags = Diagnostics()
    docs = read(path, diagnostics=diags)
    assert len(docs) == 1
    return Converted(convert(docs[0], options, diags))


def transaction_bundles(path: Path | str, fhir_version: str = "R5") -> list[dict[str, Any]]:
    """The transaction Bundles of one input, as `push` posts them (before reference resolution)."""
    from sr2fhir.batch import convert_path
    from sr2fhir.fhir import bundle as fhir_bundle

    r = convert_path(str(path), fhir_version=fhir_version)
    assert r.error is None, r.error
    return [fhir_bundle.transaction(c.resources, c.document.sop_instance_uid) for c in r.conversions]


@functools.lru_cache(maxsize=None)
def converted(path: Path) -> Converted:
    """convert_one, once per file for the whole run (tests only read the result)."""
    return convert_one(path)


def validate_r5(resource: dict[str, Any]) -> None:
    """Base R5 structure (types, cardinality, unknown elements) with fhir.resources."""
    from fhir.resources import get_fhir_model_class

    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def codings(cc: dict[str, Any] | None) -> list[tuple[str, str]]:
    return [(c.get("system", ""), c.get("code", "")) for c in (cc or {}).get("coding", [])]


def compact_pieces(bundle: dict[str, Any]) -> list[str]:
    """A whole Bundle written as the CLI writes it, entry by entry (iter_compact_entries)."""
    return list(iter_compact_entries({k: v for k, v in bundle.items() if k != "entry"}, bundle.get("entry", [])))


def walk_json(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, dict):
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)


# --- hand-built content trees, for rules no writer in the wild exercises ------------------------


REPORT_TITLE = Code("126000", "DCM", "Imaging Measurement Report")


def item(rel: str | None, vt: str, concept: Code | None, value: Any = None, children: list[ContentItem] | None = None, **kw: Any) -> ContentItem:
    """A content item; paths are assigned by `document`."""
    return ContentItem(path="", relationship=rel, value_type=vt, concept=concept, value=value, children=children or [], **kw)


def group(*children: ContentItem, **kw: Any) -> ContentItem:
    return item("CONTAINS", "CONTAINER", Code("125007", "DCM", "Measurement Group"), children=list(children), **kw)


def document(*root_children: ContentItem, header: dict[str, Any] | None = None, measurements: bool = True) -> SRDocument:
    """A TID 1500 document around `root_children` (wrapped in Imaging Measurements by default)."""
    kids = [item("CONTAINS", "CONTAINER", Code("126010", "DCM", "Imaging Measurements"), children=list(root_children))] if measurements else list(root_children)
    root = item(None, "CONTAINER", REPORT_TITLE, children=kids, template="1500")
    stack = [(root, "1")]
    while stack:
        node, path = stack.pop()
        node.path = path
        stack.extend((ch, f"{path}.{i}") for i, ch in enumerate(node.children, 1))
    h = {"PatientID": "P-1", "ContentDate": "20240101", "ContentTime": "120000", "Manufacturer": "M", "ManufacturerModelName": "X"}
    h.update(header or {})
    return SRDocument("hand-built", "1.2.840.10008.5.1.4.1.1.88.34", "2.25.1", "2.25.2", "2.25.3", root, SRHeader.from_keywords(h))


def convert_doc(doc: SRDocument, options: Options = Options()) -> Converted:
    diags = Diagnostics()
    return Converted(convert(doc, options, diags))


def kill_on(marker: str) -> Any:
    """A batch `work` function that really kills its own process on inputs whose name holds `marker`
    (as the OOM killer would), and converts the others (for batch.run_all's tests)."""
    return functools.partial(_kill_or_convert, marker)


def _kill_or_convert(marker: str, path: str) -> Any:
    import signal

    from sr2fhir.batch import process
    from sr2fhir.settings import Options
    from sr2fhir.dicom.tree import Limits

    if marker in Path(path).name:
        os.kill(os.getpid(), signal.SIGKILL)
    return process(path, Options(), Limits(), "transaction")


class LocalServer:
    """A tiny HTTP server on 127.0.0.1 for delivery failure tests: `respond(method, path, body)`
    returns (status, headers, body), or None to hold the connection open without answering."""

    def __init__(self, respond: Any) -> None:
        import http.server
        import threading

        outer = self
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append((self.command, self.path))
                answer = respond(self.command, self.path, body)
                if answer is None:
                    outer.release.wait(60)
                    return
                status, headers, content = answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                try:
                    self.wfile.write(content)
                except BrokenPipeError:
                    pass  # the client gave up waiting (a slow-server test)

            do_GET = do_POST = do_PUT = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def pid_after(path: str) -> Any:
    """A run_all work function: wait a little, as a large file would take, and say which process ran it."""
    import time

    from sr2fhir.batch import FileResult, Processed

    time.sleep(0.5)
    return Processed(FileResult(path), str(os.getpid()))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sop_uid(path: Path) -> str:
    """The SOP Instance UID of a DICOM file, read by pydicom (independently of sr2fhir)."""
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)


def oracle_read(data: bytes, name: str) -> tuple[list[SRDocument] | None, Diagnostics, str | None]:
    """The content tree as pydicom reads `data` (the lean reader's oracle): pydicom's dcmread and
    its decoded values, through the same tree builder. (documents, diagnostics, error code)."""
    import io
    import warnings

    import pydicom

    from sr2fhir.dicom.reader import dataset_from_pydicom, document_from_dataset
    from sr2fhir.errors import ConversionError

    diags = Diagnostics()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dataset_from_pydicom(pydicom.dcmread(io.BytesIO(data)))
            return [document_from_dataset(ds, name, diagnostics=diags)], diags, None
    except ConversionError as exc:
        return None, diags, exc.code
    except Exception as exc:  # pydicom refuses the bytes
        return None, diags, f"pydicom:{type(exc).__name__}"


def lean_read(data: bytes, name: str) -> tuple[list[SRDocument] | None, Diagnostics, str | None]:
    """The content tree as sr2fhir's lean reader reads `data`: (documents, diagnostics, error code)."""
    import io

    from sr2fhir.dicom.reader import read_stream
    from sr2fhir.errors import ConversionError

    diags = Diagnostics()
    try:
        return read_stream(io.BytesIO(data), name, diagnostics=diags), diags, None
    except ConversionError as exc:
        return None, diags, exc.code


def transcoded(data: bytes, transfer_syntax: str) -> bytes:
    """The same Part 10 file written by pydicom in another transfer syntax (Implicit VR Little
    Endian, Explicit VR Big Endian, Deflated), sequences and items of undefined length."""
    import io
    import warnings

    import pydicom
    from pydicom.filewriter import dcmwrite

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data))
        for elem in ds.iterall():
            if elem.VR == "SQ":
                elem.is_undefined_length = True
                for item in elem.value:
                    item.is_undefined_length_sequence_item = True
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        out = io.BytesIO()
        big, implicit = transfer_syntax == "1.2.840.10008.1.2.2", transfer_syntax == "1.2.840.10008.1.2"
        dcmwrite(out, ds, implicit_vr=implicit, little_endian=not big, force_encoding=big, enforce_file_format=not big)
    return out.getvalue()


def remapped(path: Path, dest: Path, suffix: str) -> Path:
    """A copy whose every instance UID (not the DICOM-defined class UIDs) has `suffix` appended,
    the same way in every file: a fresh original/correction pair the server has never seen."""
    import pydicom

    ds = pydicom.dcmread(path)
    stack = [ds]
    while stack:
        d = stack.pop()
        for el in d:
            if el.VR == "SQ":
                stack.extend(el.value)
            elif el.VR == "UI" and el.value and not str(el.value).startswith("1.2.840.10008"):
                el.value = f"{el.value}{suffix}"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(dest)
    return dest


def highdicom_report(path: Path, *, measurement: dict[str, Any] | None = None, group: dict[str, Any] | None = None) -> Path:
    """A TID 1500 report written with highdicom's public API, on the shared CT image: one group
    (tracking identifier "Kidneys") with one Volume measurement of 150 ml; `measurement` and
    `group` add keyword arguments to highdicom's Measurement and MeasurementsAndQualitativeEvaluations."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    ct = pydicom.dcmread(SHARED / "data" / "referenced" / "highdicom__ct_image.dcm")
    volume = hd.sr.Measurement(name=codes.SCT.Volume, value=150.0, unit=hd.sr.CodedConcept("ml", "UCUM", "milliliter"), **(measurement or {}))
    grp = hd.sr.MeasurementsAndQualitativeEvaluations(tracking_identifier=hd.sr.TrackingIdentifier(identifier="Kidneys"), measurements=[volume], **(group or {}))
    context = hd.sr.ObservationContext(observer_person_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Person, observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Doe^Radiologist")))
    report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=[grp])
    sr = hd.sr.Comprehensive3DSR(evidence=[ct], content=report, series_instance_uid=generate_uid(), series_number=9, sop_instance_uid=generate_uid(),
                                 instance_number=1, manufacturer="sr2fhir tests")
    sr.save_as(path)
    return path
