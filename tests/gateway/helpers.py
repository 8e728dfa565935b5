"""Helpers for the gateway's tests: reports made for them, senders (C-STORE, STOW-RS), a gateway
process, an Orthanc server of a test's own, a relay that takes the FHIR server down, and the
exactly-once check."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import httpx
import pydicom
from pydicom.uid import generate_uid

from sr2fhir.delivery.client import FhirClient
from sr2fhir.fhir.references import identifier_token
from sr2fhir.gateway import multipart
from tests.helpers import free_port, sop_uid, transaction_bundles

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def variants(template: Path, dest: Path, n: int, tag: str) -> list[Path]:
    """`n` new reports made from `template`: a new SOP Instance UID, and new UIDs for everything
    the content tree identifies (Observation UIDs, tracking UIDs), so that each is a report the
    FHIR server has never seen; the study, the patient and the images referenced stay."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        ds = pydicom.dcmread(template)
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[tag, str(i), str(ds.SOPInstanceUID)])
        stack = list(ds.get("ContentSequence", []))
        while stack:
            item = stack.pop()
            for el in item:
                if el.VR == "SQ":
                    if el.keyword != "ReferencedSOPSequence":
                        stack.extend(el.value)
                elif el.VR == "UI" and el.value and el.keyword in ("ObservationUID", "UID"):
                    el.value = generate_uid(entropy_srcs=[tag, str(i), str(el.value)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = dest / f"{tag}-{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def c_store(port: int, files: list[Path], calling: str = "SENDER", called: str = "SR2FHIR",
            on_status: Callable[[Path, int], None] | None = None, tls: Any = None) -> dict[Path, int]:
    """Send the files in one association (pynetdicom); the C-STORE status of each (-1: not sent,
    the association was refused or broke; -2: its SOP Class was refused at negotiation)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    from sr2fhir.dicom.dictionary import SR_STORAGE

    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    for uid in SR_STORAGE:
        ae.add_requested_context(uid)
    ae.add_requested_context(Verification)
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")  # CT Image Storage: refused by the gateway
    statuses = {f: -1 for f in files}
    assoc = ae.associate("127.0.0.1", port, ae_title=called, tls_args=(tls, "127.0.0.1") if tls is not None else None)
    if not assoc.is_established:
        return statuses
    try:
        for f in files:
            try:
                status = assoc.send_c_store(pydicom.dcmread(f))
            except ValueError:  # no presentation context was accepted for its SOP Class
                statuses[f] = -2
                continue
            except RuntimeError:  # the association is gone (the peer was killed)
                break
            if not status:  # no answer: the association broke
                break
            statuses[f] = int(status.Status)
            if on_status:
                on_status(f, statuses[f])
    finally:
        if assoc.is_established:
            assoc.release()
    return statuses


def stow(http_port: int, files: list[Path], token: str | None = None, parts: list[multipart.Part] | None = None, tls: Any = None) -> httpx.Response:
    """POST /studies; `tls`: an SSL context (ssl_context()) for a gateway serving HTTPS."""
    body = multipart.build(parts if parts is not None else [multipart.Part("application/dicom", f.read_bytes()) for f in files], "sr2fhirTestBoundary")
    headers = {"Content-Type": 'multipart/related; type="application/dicom"; boundary=sr2fhirTestBoundary', "Accept": "application/dicom+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    scheme = "https" if tls is not None else "http"
    return httpx.post(f"{scheme}://127.0.0.1:{http_port}/studies", content=body, headers=headers, timeout=300, verify=tls if tls is not None else True)


def ssl_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> Any:
    """A client TLS context trusting `ca`, presenting `cert` when given."""
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """Poll until `predicate` gives something true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


class GatewayProcess:
    """`sr2fhir serve` as a real process, on free ports, its log in `state/../gateway.log`."""

    def __init__(self, state: Path, fhir_url: str, *extra: str, wrap: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.env = {**ENV, **(env or {})}
        self.state = state
        self.fhir_url = fhir_url
        self.extra = list(extra)
        self.wrap = wrap or []
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.log = state.parent / f"{state.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client_tls: tuple[Path, Path, Path] | None = None
        """(CA, client certificate, client key) when the gateway runs with TLS: its HTTP port is HTTPS."""
        self.token: str | None = None
        """The bearer token for /metrics and /readyz (`--protect-operations`)."""

    @property
    def http(self) -> str:
        return f"{'https' if self.client_tls else 'http'}://127.0.0.1:{self.http_port}"

    def get(self, path: str, **kw: Any) -> httpx.Response:
        """A request to the gateway's HTTP port (HTTPS with the client certificate when TLS is on)."""
        tls: dict[str, Any] = {}
        if self.client_tls:
            ca, cert, key = self.client_tls
            tls = {"verify": ssl_context(ca, cert, key)}
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.get(self.http + path, timeout=30, headers=headers, **tls, **kw)

    def args(self) -> list[str]:
        return [sys.executable, "-m", "sr2fhir", "serve", "--fhir-url", self.fhir_url, "--state", str(self.state),
                "--dicom-port", str(self.dicom_port), "--http-port", str(self.http_port), "--seed", "--retry-delay", "1",
                "--min-free-mb", "1", *self.extra]

    def start(self, timeout: float = 120) -> "GatewayProcess":
        with open(self.log, "ab") as log:
            if self.wrap:
                cmd = self.wrap[:-1] + [self.wrap[-1] + " exec " + " ".join(f"'{a}'" for a in self.args())]
            else:
                cmd = self.args()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=self.env)
        wait_for("the gateway to answer /healthz", self._healthy, timeout)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the gateway exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
        try:
            return self.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(60)

    def terminate(self, timeout: float = 120) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_text().splitlines() if line.startswith("{")]

    def metrics(self) -> dict[str, float]:
        text = self.get("/metrics").text
        out: dict[str, float] = {}
        for line in text.splitlines():
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def queue(self, *args: str) -> Any:
        r = subprocess.run([sys.executable, "-m", "sr2fhir", "queue", *args, "--state", str(self.state)], capture_output=True, text=True, env=ENV, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout) if "--json" in args else r.stdout + r.stderr

    def counts(self) -> dict[str, int]:
        return dict(self.queue("list", "--json", "--limit", "1")["counts"])

    def drained(self, total: int) -> bool:
        c = self.counts()
        return c["received"] == 0 and c["converted"] == 0 and c["delivered"] + c["dead"] >= total

    def __enter__(self) -> "GatewayProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.alive():
            self.terminate()


def delivered(state: Path, files: list[Path]) -> bool:
    """Whether the gateway's queue says each of these reports was delivered."""
    from sr2fhir.gateway.queue import Queue

    q = Queue(state)
    try:
        return all((r := q.get(sop_uid(f))) is not None and r.state == "delivered" for f in files)
    finally:
        q.close()


def on_server_once(fhir: FhirClient, path: Path) -> None:
    """Every Observation the report makes is on the server exactly once: the identities (D-21)
    of the Observations the server holds from this report (meta.source, D-29) are those of its
    transaction Bundle, each once."""
    expected: Counter[str] = Counter()
    uid = None
    for b in transaction_bundles(path):
        for e in b["entry"]:
            r = e["resource"]
            if r["resourceType"] == "Observation":
                expected.update(identifier_token(i) for i in r.get("identifier", [])[:1])
                uid = r["meta"]["source"]
    assert uid is not None and expected, path
    found: Counter[str] = Counter(identifier_token(o["identifier"][0]) for o in fhir.search("Observation", _source=uid, _count="500"))
    assert found == expected, f"{path.name}: {sum(found.values())} Observations on the server for {sum(expected.values())} in the report; " \
                              f"twice: {[k for k, v in found.items() if v > 1][:3]}; missing: {list((expected - found).keys())[:3]}"


class FlakyLink:
    """A TCP relay on a loopback port of its own in front of a real FHIR server: the server as a
    client sees it, with outages on demand. `down()` ends every connection in flight (a request
    half sent, an answer half read) and closes the port, so that new connections are refused: a
    server that crashed. `up(starting)` listens again and, for `starting` seconds, answers every
    request 503, as a server still starting does, then relays again. Whatever reached the server
    stays there, as in a server with a durable database."""

    def __init__(self, upstream: str) -> None:
        from urllib.parse import urlsplit

        u = urlsplit(upstream)
        self.target = (u.hostname or "127.0.0.1", u.port or 80)
        self.path = u.path
        self.port = free_port()
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.serving_from = 0.0
        self.refused_503 = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def up(self, starting: float = 0.0) -> None:
        self.serving_from = time.monotonic() + starting
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def down(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            doomed, self.open = list(self.open), set()
        if listener is not None:
            listener.close()
        for conn in doomed:
            # As the kernel closes a killed process's sockets. shutdown() first: a close() alone
            # would wait for the relay thread blocked in recv() on it, and the client would hang.
            try:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed by down()
            with self.lock:
                if self.listener is not listener:
                    conn.close()
                    return
                self.open.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if time.monotonic() < self.serving_from:
            self._unavailable(conn)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)
        with self.lock:
            self.open.add(upstream)
        threading.Thread(target=self._pump, args=(upstream, conn), daemon=True).start()
        self._pump(conn, upstream)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _unavailable(self, conn: socket.socket) -> None:
        """Read one request (head and Content-Length body), answer 503 and close."""
        try:
            conn.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            want = int(m.group(1)) if m else 0
            while len(body) < want and (chunk := conn.recv(65536)):
                body += chunk
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.refused_503 += 1
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self) -> "FlakyLink":
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


class OrthancServer:
    """Debian's Orthanc, with its DICOMweb plugin, on free loopback ports with its own config."""

    PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")

    def __init__(self, folder: Path, users: dict[str, str] | None = None) -> None:
        """`users`: HTTP basic users and passwords; given, Orthanc refuses every request without one."""
        self.folder = folder
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.users = users
        self.auth = httpx.BasicAuth(*next(iter(users.items()))) if users else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> "OrthancServer":
        binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        if not Path(binary).exists() or not self.PLUGIN.exists():
            raise AssertionError("the archive tests need Debian's orthanc and orthanc-dicomweb (scripts/setup-services.sh installs them)")
        config = {
            "Name": "sr2fhir-test", "StorageDirectory": str(self.folder / "db"), "IndexDirectory": str(self.folder / "db"),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users), "RegisteredUsers": self.users or {},
            "Plugins": [str(self.PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "orthanc.json").write_text(json.dumps(config))
        with open(self.folder / "orthanc.log", "ab") as log:
            self.proc = subprocess.Popen([binary, str(self.folder / "orthanc.json")], stdout=log, stderr=log)
        wait_for("Orthanc to answer", self._up, 120)
        return self

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"Orthanc exited: {(self.folder / 'orthanc.log').read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/system", timeout=5, auth=self.auth).status_code == 200
        except httpx.HTTPError:
            return False

    def upload(self, path: Path) -> dict[str, Any]:
        r = httpx.post(self.url + "/instances", content=path.read_bytes(), timeout=120, auth=self.auth)
        r.raise_for_status()
        return dict(r.json())

    def last_change(self) -> int:
        return int(httpx.get(self.url + "/changes?last", timeout=30, auth=self.auth).json()["Last"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()



HOSTILE_UIDS = ["../../../victim", "../victim", "/tmp/sr2fhir-hostile-absolute", "1.2.3/../../../victim", "..", "1.2.840\n.5", "1.2.\x1b[31m3"]
"""SOP Instance UIDs a hostile peer may send: paths out of the state folder, control characters."""


def hostile(template: Path, dest: Path, uid: str) -> Path:
    """`template` with `uid` as its SOP Instance UID (data set and file meta), written as a sender would."""
    import warnings

    ds = pydicom.dcmread(template)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the invalid UI value, and writes it
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        dest.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(dest, enforce_file_format=True)
    return dest


def tree(root: Path, skip: Path) -> dict[str, bytes]:
    """Every file below `root` but those below `skip`, with its bytes: what a hostile input must not change."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and skip not in p.parents}


class Pki:
    """A test CA (openssl), a certificate for 127.0.0.1/localhost signed by it, a client
    certificate signed by it, and a rogue client certificate signed by another CA."""

    def __init__(self, folder: Path) -> None:
        assert shutil.which("openssl"), "the TLS tests need the openssl command (Debian's openssl)"
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.ca, self.ca_key = self._ca("sr2fhir test CA")
        rogue_ca, rogue_key = self._ca("someone else's CA")
        self.server_cert, self.server_key = self._leaf("server", self.ca, self.ca_key, "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self.client_cert, self.client_key = self._leaf("client", self.ca, self.ca_key, "extendedKeyUsage=clientAuth")
        self.rogue_cert, self.rogue_key = self._leaf("rogue", rogue_ca, rogue_key, "extendedKeyUsage=clientAuth")

    def _run(self, *args: str) -> None:
        r = subprocess.run(["openssl", *args], cwd=self.folder, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr

    def _ca(self, name: str) -> tuple[Path, Path]:
        stem = name.split()[0].replace("'", "")
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                  "-keyout", f"{stem}-ca.key", "-out", f"{stem}-ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return self.folder / f"{stem}-ca.pem", self.folder / f"{stem}-ca.key"

    def _leaf(self, name: str, ca: Path, ca_key: Path, ext: str) -> tuple[Path, Path]:
        self._run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        (self.folder / f"{name}.ext").write_text(ext + "\n")
        self._run("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
                  "-out", f"{name}.pem", "-extfile", f"{name}.ext")
        return self.folder / f"{name}.pem", self.folder / f"{name}.key"

    def server_args(self, verify_client: str = "required") -> list[str]:
        return ["--tls-cert", str(self.server_cert), "--tls-key", str(self.server_key), "--tls-ca", str(self.ca), "--tls-verify-client", verify_client]


class SyslogReceiver:
    """Debian's rsyslogd as an audit repository on loopback: RFC 5424 over UDP, TCP and TLS
    (its openssl driver, with `pki`'s server certificate), every message written raw to a file."""

    def __init__(self, folder: Path, pki: "Pki") -> None:
        binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        assert Path(binary).exists(), "the audit tests need Debian's rsyslog and rsyslog-openssl (scripts/setup-services.sh installs them)"
        self.binary = binary
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.udp, self.tcp, self.tls = free_port(), free_port(), free_port()
        self.out = folder / "received.log"
        self.pki = pki
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "SyslogReceiver":
        conf = f"""
global(workDirectory="{self.folder}" DefaultNetstreamDriverCAFile="{self.pki.ca}"
       DefaultNetstreamDriverCertFile="{self.pki.server_cert}" DefaultNetstreamDriverKeyFile="{self.pki.server_key}")
module(load="imudp")
module(load="imtcp" MaxSessions="50")
input(type="imudp" port="{self.udp}" address="127.0.0.1")
input(type="imtcp" port="{self.tcp}" address="127.0.0.1")
input(type="imtcp" port="{self.tls}" address="127.0.0.1" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
template(name="raw" type="string" string="%pri%|%protocol-version%|%app-name%|%msgid%|%inputname%|%msg%\\n")
*.* action(type="omfile" file="{self.out}" template="raw")
"""
        (self.folder / "rsyslog.conf").write_text(conf)
        with open(self.folder / "rsyslogd.log", "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-n", "-f", str(self.folder / "rsyslog.conf"), "-i", str(self.folder / "rsyslogd.pid")],
                                         stdout=log, stderr=log)
        wait_for("rsyslogd to listen", self._listening, 60, every=0.2)
        return self

    def _listening(self) -> bool:
        import socket

        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"rsyslogd exited: {(self.folder / 'rsyslogd.log').read_text()[-2000:]}")
        try:
            for port in (self.tcp, self.tls):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return True
        except OSError:
            return False

    def messages(self) -> list[dict[str, Any]]:
        """Each message: its RFC 5424 fields as rsyslog parsed them, and the XML's root element."""
        import xml.etree.ElementTree as ET

        out = []
        for line in (self.out.read_text(encoding="utf-8") if self.out.exists() else "").splitlines():
            pri, version, app, msgid, transport, msg = line.split("|", 5)
            out.append({"pri": pri, "version": version, "app": app, "msgid": msgid, "transport": transport, "bom": msg.startswith("\ufeff"),
                        "xml": ET.fromstring(msg.lstrip("\ufeff"))})
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
