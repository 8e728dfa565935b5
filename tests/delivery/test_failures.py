"""push on an operator's worst day (issue 10): bad answers, refused credentials, SIGTERM, a full spool.

Real processes and real sockets on 127.0.0.1; the full disk is a 256 kB tmpfs mounted in a private
mount namespace (`unshare`), so the test needs no privileges beyond what unshare grants.
"""

from __future__ import annotations

import pytest

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import FIXTURES, SHARED, LocalServer

INPUTS = [FIXTURES / "tid1410_planar_regions.dcm", FIXTURES / "tid1411_volumetric.dcm", FIXTURES / "tid1501_containers.dcm"]
FOUND = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]}


def sr2fhir(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sr2fhir", *args], capture_output=True, text=True, timeout=300, **kw)


def searches_ok(then: Any) -> Any:
    """Answer searches (the references exist); answer transactions with `then`."""
    def respond(method: str, path: str, body: bytes) -> Any:
        if method == "GET":
            return 200, {"Content-Type": "application/fhir+json"}, json.dumps(FOUND).encode()
        return then(method, path, body)
    return respond


def test_a_2xx_with_a_bad_body_is_spooled_and_the_batch_goes_on(tmp_path: Path) -> None:
    with LocalServer(searches_ok(lambda m, p, b: (200, {"Content-Type": "text/html"}, b"<html>ok</html>"))) as srv:
        r = sr2fhir("push", *map(str, INPUTS), "--fhir-url", srv.url, "--spool", str(tmp_path / "spool"), "--retries", "0")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert sum(1 for line in r.stderr.splitlines() if line.startswith("error: ") and "not JSON" in line) == 3
    assert "summary: 3 file(s): 0 pushed, 0 pushed with warnings, 3 failed" in r.stderr
    assert sorted(p.name for p in (tmp_path / "spool").iterdir()) == sorted(p.name for p in INPUTS)


def test_refused_credentials_stop_the_batch_and_keep_everything(tmp_path: Path) -> None:
    oo = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login", "diagnostics": "expired"}]}
    with LocalServer(lambda m, p, b: (401, {"Content-Type": "application/fhir+json"}, json.dumps(oo).encode())) as srv:
        r = sr2fhir("push", *map(str, INPUTS), "--fhir-url", srv.url, "--spool", str(tmp_path / "spool"))
        # One transaction, then no more (besides the FHIR-version probe of `metadata`).
        asked = len([q for q in srv.requests if "metadata" not in q[1]])
    assert r.returncode == 1 and asked == 1, (asked, r.stderr)
    assert "refuses the credentials" in r.stderr and "no later input can succeed: 2 more file(s) not attempted" in r.stderr
    assert len(list((tmp_path / "spool").iterdir())) == 3


def test_sigterm_keeps_every_input_not_delivered(tmp_path: Path) -> None:
    with LocalServer(searches_ok(lambda m, p, b: None)) as srv:  # transactions never answered
        p = subprocess.Popen([sys.executable, "-m", "sr2fhir", "push", *map(str, INPUTS), "--fhir-url", srv.url, "--spool", str(tmp_path / "spool")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not any(m == "POST" for m, _ in srv.requests) and time.monotonic() < deadline:
            time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        _, stderr = p.communicate(timeout=120)
    assert p.returncode == 143 and "Traceback" not in stderr, stderr
    assert "terminated (SIGTERM): 3 more file(s) not attempted, 3 kept in" in stderr
    assert sorted(q.name for q in (tmp_path / "spool").iterdir()) == sorted(q.name for q in INPUTS)


@pytest.mark.unshare
def test_a_full_spool_is_said_loudly_and_leaves_no_partial_copy(tmp_path: Path) -> None:
    """Issue 10.6: a full disk under --spool gave a traceback, a 0-byte spool file, inputs neither pushed nor kept."""
    big = SHARED / "data" / "tid1500" / "tid1500-fhir__rsna2018-ds3__pyradiomics-1561-features.dcm"  # 1.2 MB: cannot fit
    small = FIXTURES / "tid1410_planar_regions.dcm"
    spool = tmp_path / "spool"
    spool.mkdir()
    assert shutil.which("unshare"), "util-linux unshare is needed for the full-disk test"
    cmd = (f'mount -t tmpfs -o size=256k tmpfs "{spool}" && exec "{sys.executable}" -m sr2fhir push "{small}" "{big}" '
           f'--fhir-url http://127.0.0.1:9/fhir --retries 0 --spool "{spool}"; ls -la "{spool}" >&2')
    r = subprocess.run(["unshare", "-rm", "sh", "-c", cmd.replace("exec ", "") + f'; ls -A "{spool}" > "{tmp_path}/listing"'],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "Traceback" not in r.stderr, r.stderr
    assert "NOT KEPT: the spool" in r.stderr and "No space left on device" in r.stderr
    assert "1 input(s) neither delivered nor kept" in r.stderr and f"not kept: {big}" in r.stderr
    listing = (tmp_path / "listing").read_text().split()
    assert listing == [small.name], listing  # the small one kept whole; no partial copy of the big one


def test_an_untrusted_certificate_is_named_not_retried_and_stops_the_batch(tmp_path: Path) -> None:
    """Issue 10: a certificate failure was a bare 'network error (ConnectError)', retried for every input."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    with LocalServer(lambda m, p, b: (200, {"Content-Type": "application/fhir+json"}, json.dumps(FOUND).encode())) as srv:
        srv.httpd.socket = ctx.wrap_socket(srv.httpd.socket, server_side=True)
        url = srv.url.replace("http://", "https://")
        r = sr2fhir("push", *map(str, INPUTS), "--fhir-url", url, "--spool", str(tmp_path / "spool"))
    assert r.returncode == 1 and "TLS certificate is not trusted" in r.stderr and "--ca-bundle" in r.stderr, r.stderr
    assert "no later input can succeed: 2 more file(s) not attempted" in r.stderr and "gave up" not in r.stderr
    assert len(list((tmp_path / "spool").iterdir())) == 3


class SlowServer:
    """A FHIR server that is slow for some transactions (issue 27.2): it commits each transaction
    as soon as it has read it (unless told not to), answers `_source` counts from what it
    committed, and answers a slow transaction only after `delay` seconds."""

    def __init__(self, slow: int, delay: float, commit_slow: bool = True) -> None:
        self.slow, self.delay, self.commit_slow = slow, delay, commit_slow
        self.posts = 0
        self.committed: dict[tuple[str, str], int] = {}

    def __call__(self, method: str, path: str, body: bytes) -> Any:
        from urllib.parse import parse_qs, urlsplit

        if method == "GET":
            url = urlsplit(path)
            query = parse_qs(url.query)
            if "_source" in query:
                total = self.committed.get((url.path.rsplit("/", 1)[-1], query["_source"][0]), 0)
                return 200, {"Content-Type": "application/fhir+json"}, json.dumps({"resourceType": "Bundle", "type": "searchset", "total": total}).encode()
            return 200, {"Content-Type": "application/fhir+json"}, json.dumps(FOUND).encode()
        self.posts += 1
        bundle = json.loads(body)
        slow = self.posts <= self.slow
        if self.commit_slow or not slow:
            for e in bundle["entry"]:
                key = (e["resource"]["resourceType"], e["resource"].get("meta", {}).get("source", ""))
                self.committed[key] = self.committed.get(key, 0) + 1
        if slow:
            time.sleep(self.delay)
        answer = {"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {"status": "201 Created"}} for _ in bundle["entry"]]}
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(answer).encode()


def test_a_report_committed_by_a_late_answer_is_found_not_sent_again(tmp_path: Path) -> None:
    """Issue 27.2: a slow server committed the first attempt while push timed out and sent it again, six times."""
    server = SlowServer(slow=1, delay=4.0)
    with LocalServer(server) as srv:
        r = sr2fhir("push", *map(str, INPUTS), "--fhir-url", srv.url, "--timeout", "1", "--retries", "3", "--spool", str(tmp_path / "spool"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert server.posts == len(INPUTS)  # the first report was posted once
    first = str(INPUTS[0])
    assert f"{first}: no answer within 1 s: looking for the report on the server before sending it again" in r.stderr
    assert f"{first}: the server had committed it" in r.stderr
    assert f"summary: {len(INPUTS)} file(s): 2 pushed, 1 pushed with warnings, 0 failed" in r.stderr  # INPUTS[2] has warnings
    assert not (tmp_path / "spool").exists()


def test_a_server_too_slow_for_one_report_gets_the_rest_of_the_batch(tmp_path: Path) -> None:
    """Issue 27.2: one report too slow for the server abandoned the rest of the batch, though the server still answered."""
    server = SlowServer(slow=1, delay=3.0, commit_slow=False)
    with LocalServer(server) as srv:
        r = sr2fhir("push", *map(str, INPUTS), "--fhir-url", srv.url, "--timeout", "1", "--retries", "0", "--spool", str(tmp_path / "spool"))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "gave up after 1 attempt: no answer in time" in r.stderr and "not attempted" not in r.stderr
    assert f"summary: {len(INPUTS)} file(s): 1 pushed, 1 pushed with warnings, 1 failed" in r.stderr, r.stderr
    assert [p.name for p in (tmp_path / "spool").iterdir()] == [INPUTS[0].name]  # the one not delivered is kept
