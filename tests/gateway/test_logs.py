"""The gateway's log (gateway/logs.py): one JSON object a line, whatever writes it, with the
peer's address and no patient data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pydicom

from sr2fhir.gateway.logs import JsonLines
from tests.gateway.helpers import GatewayProcess, c_store, hostile, stow
from tests.helpers import FIXTURES, free_port, sop_uid

SR = FIXTURES / "tid1410_planar_regions.dcm"


def test_a_library_record_is_a_json_line_without_its_quoted_values() -> None:
    record = logging.LogRecord("pydicom", logging.WARNING, __file__, 1, "Invalid value for VR PN: 'Doe^Jane'\nmore", None, None)
    line = json.loads(JsonLines().format(record))
    assert line["event"] == "library" and line["logger"] == "pydicom" and line["level"] == "warning"
    assert "Doe" not in line["reason"] and line["reason"].startswith("Invalid value for VR PN")
    try:
        raise ValueError("Patient 'Doe^Jane' broke it")
    except ValueError:
        import sys

        exc = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application", None, sys.exc_info())
    line = json.loads(JsonLines().format(exc))
    assert line["error"] == "ValueError" and line["where"].startswith("test_logs.py:") and "Doe" not in json.dumps(line)


def test_every_line_of_a_running_gateway_is_json_and_names_the_peer(tmp_path: Path) -> None:
    """Issue 24, defect 6: pydicom warnings and uvicorn tracebacks were mixed into the JSON lines,
    and no line named the sender's address."""
    bad = hostile(SR, tmp_path / "bad.dcm", "../../x")  # pydicom warns of the invalid UI value
    ds = pydicom.dcmread(SR)
    with GatewayProcess(tmp_path / "state", f"http://127.0.0.1:{free_port()}/fhir") as gw:
        assert c_store(gw.dicom_port, [SR, bad]) == {SR: 0, bad: 0xC000}
        assert stow(gw.http_port, [SR]).status_code == 200
        # Malformed HTTP: uvicorn's own complaint goes through the same lines.
        import socket

        with socket.create_connection(("127.0.0.1", gw.http_port), timeout=30) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            sock.recv(1024)
    text = gw.log_text()
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # fails on any line that is not one JSON object
    received = [p for p in parsed if p["event"] == "received"]
    assert {p["sop_uid"] for p in received} == {sop_uid(SR)}
    assert all(p["peer"] == "127.0.0.1" for p in received) and {p["source"] for p in received} == {"dimse:SENDER", "stow"}
    refused = [p for p in parsed if p["event"] == "refused"]
    assert refused and refused[0]["peer"] == "127.0.0.1"
    for value in (str(ds.PatientID), str(ds.PatientName)):
        assert value not in text
    assert "../../x" not in text
