"""`sr2fhir serve` and `sr2fhir queue` as a user meets them: options, the TOML config, clear
errors (no traceback), the operator's view of the queue."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from sr2fhir.gateway.queue import Queue
from tests.gateway.helpers import ENV, wait_for
from tests.helpers import free_port


def sr2fhir(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sr2fhir", *args], capture_output=True, text=True, env=ENV, timeout=timeout)


def test_the_config_file_sets_options_and_the_command_line_wins(tmp_path: Path) -> None:
    dicom, http = free_port(), free_port()
    (tmp_path / "gw.toml").write_text(f'fhir-url = "http://127.0.0.1:9/fhir"\nstate = "{tmp_path / "st"}"\n'
                                      f'dicom-port = {dicom}\nhttp_port = 1\nallowed-ae = ["MOD1", "MOD2"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "sr2fhir", "serve", "--config", str(tmp_path / "gw.toml"), "--http-port", str(http)],
                            stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{http}/readyz", timeout=5).json()["ready"] is True
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                return False
        wait_for("the gateway", up, 120)
        assert (tmp_path / "st" / "queue.sqlite").is_file()
        with socket.create_connection(("127.0.0.1", dicom), timeout=10):
            pass  # the DICOM port came from the file
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0  # SIGTERM: a clean stop
    err = proc.stderr.read() if proc.stderr else ""
    assert '"event": "stopping", "reason": "SIGTERM"' in err


def test_a_wrong_setting_is_named(tmp_path: Path) -> None:
    (tmp_path / "gw.toml").write_text('fhir-url = "http://x/fhir"\ndicom-prot = 104\n')
    r = sr2fhir("serve", "--config", str(tmp_path / "gw.toml"))
    assert r.returncode == 2 and "unknown setting 'dicom-prot'" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "bad.toml").write_text("fhir-url = \n")
    r = sr2fhir("serve", "--config", str(tmp_path / "bad.toml"))
    assert r.returncode == 2 and "not valid TOML" in r.stderr


def test_usage_errors(tmp_path: Path) -> None:
    for args, message in [
        (["--fhir-url", "localhost:8080"], "expected the server's base URL"),
        (["--fhir-url", "http://x/fhir", "--max-attempts", "0"], "--max-attempts must be at least 1"),
        (["--fhir-url", "http://x/fhir", "--ae-title", "A" * 17], "AE titles have 1 to 16 characters"),
        (["--fhir-url", "http://x/fhir", "--stow-token-env", "SR2FHIR_NO_SUCH_VARIABLE"], "SR2FHIR_NO_SUCH_VARIABLE"),
        (["--fhir-url", "http://x/fhir", "--follow-orthanc", "orthanc:8042"], "expected an http(s) base URL"),
    ]:
        r = sr2fhir("serve", *args, "--state", str(tmp_path / "s"))
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)


def test_a_taken_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = sr2fhir("serve", "--fhir-url", "http://127.0.0.1:9/fhir", "--state", str(tmp_path / "s"), "--dicom-port", str(port), "--http-port", str(free_port()))
        assert r.returncode == 2 and f"cannot listen for DICOM on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
        r = sr2fhir("serve", "--fhir-url", "http://127.0.0.1:9/fhir", "--state", str(tmp_path / "s"), "--dicom-port", str(free_port()), "--http-port", str(port))
        assert r.returncode == 2 and f"cannot listen for HTTP on 127.0.0.1:{port}" in r.stderr


def test_queue_commands(tmp_path: Path) -> None:
    assert sr2fhir("queue", "list", "--state", str(tmp_path)).returncode == 2  # not a state folder
    q = Queue(tmp_path)
    for uid in ("1.2.1", "1.2.2"):
        q.add(uid, hashlib.sha256(uid.encode()).hexdigest(), uid.encode(), sop_class="1.2.840.10008.5.1.4.1.1.88.33", study_uid=None, series_uid=None, source="stow")
    q.dead("1.2.1", f"{q.path('1.2.1')}: not a TID 1500 Measurement Report")  # as a failed conversion words it
    q.delivered("1.2.2")
    listing = json.loads(sr2fhir("queue", "list", "--state", str(tmp_path), "--json").stdout)
    assert listing["counts"] == {"received": 0, "converted": 0, "delivered": 1, "dead": 1}
    text = sr2fhir("queue", "list", "--state", str(tmp_path), "--status", "dead").stdout
    assert "1.2.1" in text and "not a TID 1500" in text and "1.2.2" not in text
    assert str(q.path("1.2.1")) not in text  # the UID column says which; the path is not repeated
    assert text.splitlines()[0].split()[:4] == ["STATE", "RECEIVED", "(UTC)", "TRIES"]  # column headings
    shown = json.loads(sr2fhir("queue", "show", "1.2.1", "--state", str(tmp_path), "--json").stdout)
    assert shown["state"] == "dead" and shown["object"].endswith("1.2.1.dcm")
    assert sr2fhir("queue", "show", "9.9", "--state", str(tmp_path)).returncode == 2
    assert "1 report(s) queued again" in sr2fhir("queue", "retry", "--state", str(tmp_path)).stderr
    assert q.get("1.2.1").state == "received"  # type: ignore[union-attr]
    assert "1 report(s) purged" in sr2fhir("queue", "purge", "--status", "delivered", "--state", str(tmp_path)).stderr
    assert q.get("1.2.2") is None and not q.path("1.2.2").exists()
    r = sr2fhir("queue", "purge", "--status", "received", "--state", str(tmp_path))
    assert r.returncode == 2 and "'received' is not one of 'delivered', 'dead'" in " ".join(r.stderr.split())  # the choices it offers are those it takes


def test_queue_commands_refuse_what_would_mislead(tmp_path: Path) -> None:
    """Issue 24, defect 6: a negative age once purged everything, an unknown UID was "queued again"
    with exit 0, and a key holding control characters (an older state folder's) reached the terminal raw."""
    q = Queue(tmp_path)
    for uid in ("1.2.1", "1.2.\x1b[31m9"):
        q.add(uid, hashlib.sha256(uid.encode()).hexdigest(), uid.encode(), sop_class="1.2.840.10008.5.1.4.1.1.88.33", study_uid=None, series_uid=None, source="stow")
        q.dead(uid, "reason with a \x07 bell")
    r = sr2fhir("queue", "purge", "--status", "dead", "--older-than-days", "-5", "--state", str(tmp_path))
    assert r.returncode == 2 and "must be 0 or more" in r.stderr and q.counts()["dead"] == 2
    r = sr2fhir("queue", "retry", "1.2.1", "9.9.9", "--state", str(tmp_path))
    assert r.returncode == 2 and "9.9.9" in r.stderr and q.get("1.2.1").state == "dead"  # type: ignore[union-attr]
    listing = sr2fhir("queue", "list", "--state", str(tmp_path))
    assert listing.returncode == 0 and "\x1b" not in listing.stdout and "\x07" not in listing.stdout
    assert "1.2.\\x1b[31m9" in listing.stdout and "\\x07 bell" in listing.stdout
    shown = sr2fhir("queue", "show", "1.2.\x1b[31m9", "--state", str(tmp_path))
    assert shown.returncode == 0 and "\x1b" not in shown.stdout
    assert sr2fhir("queue", "retry", "1.2.1", "--state", str(tmp_path)).returncode == 0 and q.get("1.2.1").state == "received"  # type: ignore[union-attr]
