"""The Storage SCP (PS3.4 Annex B) in process, with real associations: pynetdicom and DCMTK's
storescu as senders."""

from __future__ import annotations

import logging
import struct
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pydicom
import pytest

from sr2fhir.batch import convert_path
from sr2fhir.dicom.dictionary import SR_STORAGE
from sr2fhir.gateway.dimse import StorageSCP
from sr2fhir.gateway.intake import Intake
from sr2fhir.gateway.metrics import Metrics
from sr2fhir.gateway.peers import Peers
from sr2fhir.gateway.tls import Tls
from sr2fhir.gateway.queue import Queue
from tests.gateway.helpers import HOSTILE_UIDS, Pki, c_store, hostile, ssl_context, tree, wait_for
from tests.helpers import FIXTURES, SHARED, free_port, shared_files, sop_uid

CT = SHARED / "data" / "referenced" / "highdicom__ct_image.dcm"


class Scp:
    def __init__(self, state: Path, allowed: list[str] | None = None, min_free: int = 0, peers: Peers | None = None) -> None:
        self.queue = Queue(state)
        self.intake = Intake(self.queue, Metrics(self.queue), min_free)
        self.scp = StorageSCP(self.intake, "SR2FHIR", peers or Peers(tuple(allowed or ())))
        self.port = free_port()
        self.scp.start("127.0.0.1", self.port)

    def close(self) -> None:
        self.scp.stop()
        self.queue.close()


@pytest.fixture()
def scp(tmp_path: Path) -> Iterator[Scp]:
    s = Scp(tmp_path / "state")
    yield s
    s.close()


def test_echo(scp: Scp) -> None:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title="SENDER")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="SR2FHIR")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_every_report_is_stored_as_sent_and_queued(scp: Scp) -> None:
    files = shared_files("tid1500") + [FIXTURES / "tid1501_containers.dcm"]
    statuses = c_store(scp.port, files)
    assert set(statuses.values()) == {0x0000}, statuses
    assert scp.queue.counts()["received"] == len(files)
    for f in files:
        assert scp.queue.get(sop_uid(f)).source == "dimse:SENDER"  # type: ignore[union-attr]
        same_fhir(scp.queue.path(sop_uid(f)), f)


def same_fhir(stored: Path, original: Path) -> None:
    """The stored object (as the sender encoded it) converts to what the original file converts to."""
    a, b = convert_path(str(stored)), convert_path(str(original))
    assert a.error is None, a.error
    assert [c.resources.resources() for c in a.conversions] == [c.resources.resources() for c in b.conversions], original.name


def test_a_non_sr_sop_class_is_refused_at_negotiation(scp: Scp) -> None:
    statuses = c_store(scp.port, [CT, FIXTURES / "tid1410_planar_regions.dcm"])
    assert list(statuses.values()) == [-2, 0x0000]
    assert scp.queue.counts()["received"] == 1


def test_only_allowed_calling_ae_titles_associate(tmp_path: Path) -> None:
    s = Scp(tmp_path / "state", allowed=["MODALITY1"])
    try:
        refused = c_store(s.port, [FIXTURES / "tid1410_planar_regions.dcm"], calling="INTRUDER")
        assert set(refused.values()) == {-1}
        assert c_store(s.port, [FIXTURES / "tid1410_planar_regions.dcm"], calling="MODALITY1") == {FIXTURES / "tid1410_planar_regions.dcm": 0}
        assert s.queue.counts()["received"] == 1
        assert s.intake.metrics.refused.labels("dimse", "association-rejected")._value.get() == 1
    finally:
        s.close()


def test_the_wrong_called_ae_title_is_refused(scp: Scp) -> None:
    assert set(c_store(scp.port, [FIXTURES / "tid1410_planar_regions.dcm"], called="SOMEONEELSE").values()) == {-1}


def test_past_the_watermark_c_store_is_out_of_resources(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = Scp(tmp_path / "state", min_free=1 << 62)
    try:
        with caplog.at_level(logging.WARNING, "sr2fhir.gateway"):
            assert list(c_store(s.port, [FIXTURES / "tid1410_planar_regions.dcm"]).values()) == [0xA700]
        assert s.queue.counts()["received"] == 0 and not list(s.queue.objects.iterdir())
        # The refusal names the report by its (validated) SOP Instance UID, not by a hash.
        assert [getattr(r, "sop_uid", None) for r in caplog.records if r.getMessage() == "refused"] == [sop_uid(FIXTURES / "tid1410_planar_regions.dcm")]
    finally:
        s.close()


@pytest.mark.dcmtk
@pytest.mark.parametrize("syntax", ["-xi", "-xe", "-xb", "-xd"])
def test_storescu_in_each_standard_transfer_syntax(scp: Scp, syntax: str) -> None:
    """DCMTK's storescu proposing only implicit, explicit little, explicit big endian, or deflated:
    the object is kept in that encoding and converts to the same FHIR as the original."""
    assert shutil.which("storescu"), "DCMTK's storescu is needed (scripts/setup-services.sh installs dcmtk)"
    f = FIXTURES / "tid1410_planar_regions.dcm"
    r = subprocess.run(["storescu", "-R", syntax, "-aet", "SENDER", "-aec", "SR2FHIR", "127.0.0.1", str(scp.port), str(f)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    stored = scp.queue.path(sop_uid(f))
    expected_ts = {"-xi": "1.2.840.10008.1.2", "-xe": "1.2.840.10008.1.2.1", "-xb": "1.2.840.10008.1.2.2", "-xd": "1.2.840.10008.1.2.1.99"}[syntax]
    assert pydicom.dcmread(stored).file_meta.TransferSyntaxUID == expected_ts
    same_fhir(stored, f)


def test_a_hostile_sop_instance_uid_writes_nothing_outside_the_state_folder(tmp_path: Path) -> None:
    """Issue 24, defect 1: the data set's SOP Instance UID fails validation, so intake once keyed the
    object by the command's Affected SOP Instance UID, which nobody validated: `../../../victim`
    overwrote a file three folders up, and `queue purge` deleted it."""
    root = tmp_path / "a" / "b" / "c"
    state = root / "state"
    root.mkdir(parents=True)
    for rel in ("victim.dcm", "../victim.dcm", "../../victim.dcm", "../../../victim.dcm", "state-sibling.dcm"):
        (root / rel).write_bytes(b"precious")
    s = Scp(state)
    try:
        before = tree(tmp_path, state)
        sent = [hostile(FIXTURES / "tid1410_planar_regions.dcm", tmp_path / "send" / f"{i}.dcm", uid) for i, uid in enumerate(HOSTILE_UIDS)]
        statuses = c_store(s.port, sent)
        assert set(statuses.values()) == {0xC000}, statuses  # Cannot understand: no valid SOP Instance UID
        assert tree(tmp_path, state) == before | {str(p.relative_to(tmp_path)): p.read_bytes() for p in sent}
        dead = s.queue.reports("dead")
        assert len(dead) == len(HOSTILE_UIDS) and all(r.sop_uid.startswith("unidentified-") for r in dead)
        assert {p.name for p in s.queue.objects.iterdir()} == {f"{r.sop_uid}.dcm" for r in dead}
        assert s.queue.purge("dead") == len(HOSTILE_UIDS)
        assert tree(tmp_path, state) == before | {str(p.relative_to(tmp_path)): p.read_bytes() for p in sent}
        assert not list(s.queue.objects.iterdir())
    finally:
        s.close()


def associate(port: int, source: str = "127.0.0.1", calling: str = "SENDER") -> Any:
    """An association from `source` (any loopback address: another peer) proposing SR and Verification."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    ae.add_requested_context(Verification)
    for uid in SR_STORAGE:
        ae.add_requested_context(uid)
    return ae.associate("127.0.0.1", port, ae_title="SR2FHIR", bind_address=(source, 0))


def test_one_peer_cannot_take_every_association_and_idle_ones_are_aborted(tmp_path: Path) -> None:
    """Issue 24, defect 5: 16 idle associations, kept alive by C-ECHO, once locked out every sender
    for 120 s. Now one address holds at most its share (the next is rejected, transient, local
    limit exceeded), another address still gets in, and associations that store nothing are
    aborted after the idle timeout even while they echo."""
    s = Scp(tmp_path / "state", peers=Peers(per_peer=3, maximum=32, idle=3.0))
    held: list[Any] = []
    try:
        held = [associate(s.port) for _ in range(3)]
        assert all(a.is_established for a in held)
        extra = associate(s.port)
        assert extra.is_rejected and not extra.is_established
        assert (extra.acceptor.primitive.result, extra.acceptor.primitive.result_source, extra.acceptor.primitive.diagnostic) == (2, 3, 2)
        other = associate(s.port, source="127.0.0.2")  # another peer is not locked out
        assert other.is_established
        report = FIXTURES / "tid1410_planar_regions.dcm"
        assert other.send_c_store(pydicom.dcmread(report)).Status == 0
        other.release()
        # Keep the three alive with C-ECHO: they store nothing, so they are aborted all the same.
        deadline = time.monotonic() + 30
        while any(a.is_established for a in held) and time.monotonic() < deadline:
            for a in held:
                if a.is_established:
                    a.send_c_echo()
            time.sleep(0.5)
        assert not any(a.is_established for a in held) and all(a.is_aborted for a in held)
        # The address has its share back (once the gateway's side of the aborted ones has ended).
        again = wait_for("a new association from the same address", lambda: a if (a := associate(s.port)).is_established else None, 30, every=0.5)
        again.release()
        assert s.queue.get(sop_uid(report)) is not None
    finally:
        for a in held:
            if a.is_established:
                a.abort()
        s.close()


def test_an_ae_title_bound_to_a_host_is_refused_from_another(tmp_path: Path) -> None:
    """`--allowed-ae MODALITY1@127.0.0.2`: the title is accepted from that address only (calling AE title not recognised)."""
    s = Scp(tmp_path / "state", peers=Peers(("MODALITY1@127.0.0.2", "ANYWHERE")))
    try:
        wrong = associate(s.port, source="127.0.0.1", calling="MODALITY1")
        assert wrong.is_rejected and wrong.acceptor.primitive.diagnostic == 3
        for source, calling in (("127.0.0.2", "MODALITY1"), ("127.0.0.1", "ANYWHERE"), ("127.0.0.3", "ANYWHERE")):
            ok = associate(s.port, source=source, calling=calling)
            assert ok.is_established, (source, calling)
            ok.release()
        assert associate(s.port, calling="INTRUDER").is_rejected
        assert s.intake.metrics.refused.labels("dimse", "association-rejected")._value.get() == 2
    finally:
        s.close()


def storescu(port: int, f: Path, *tls: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which("storescu"), "DCMTK's storescu is needed (scripts/setup-services.sh installs dcmtk)"
    return subprocess.run(["storescu", *tls, "-R", "-aet", "SENDER", "-aec", "SR2FHIR", "127.0.0.1", str(port), str(f)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.openssl
@pytest.mark.dcmtk
def test_dicom_tls_with_client_certificates(tmp_path: Path) -> None:
    """PS3.15 Annex B: DCMTK's `storescu +tls` with a client certificate signed by the gateway's CA
    stores; without TLS, or with a certificate from another CA, nothing is stored."""
    pki = Pki(tmp_path / "pki")
    tls = Tls(str(pki.server_cert), str(pki.server_key), str(pki.ca), "required")
    queue = Queue(tmp_path / "state")
    scp = StorageSCP(Intake(queue, Metrics(queue), 0), "SR2FHIR", tls=tls)
    port = free_port()
    scp.start("127.0.0.1", port)
    try:
        f = FIXTURES / "tid1410_planar_regions.dcm"
        assert storescu(port, f).returncode != 0  # plain TCP to a TLS port
        rogue = storescu(port, f, "+tls", str(pki.rogue_key), str(pki.rogue_cert), "+cf", str(pki.ca))
        assert rogue.returncode != 0
        assert queue.counts()["received"] == 0
        ok = storescu(port, f, "+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca))
        assert ok.returncode == 0, ok.stderr
        same_fhir(queue.path(sop_uid(f)), f)
        # pynetdicom as a TLS sender too.
        other = FIXTURES / "tid1411_volumetric.dcm"
        assert c_store(port, [other], tls=ssl_context(pki.ca, pki.client_cert, pki.client_key)) == {other: 0}
        assert queue.counts()["received"] == 2
    finally:
        scp.stop()
        queue.close()


def closed_within(sock: Any, seconds: float) -> float | None:
    """Seconds until the peer closes `sock` (reads give b"" or a reset), None if it stays open."""
    import socket

    start = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - start < seconds:
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def test_an_object_larger_than_the_limit_ends_its_association(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`--max-object-mb`: pynetdicom holds a C-STORE's data set in memory as it arrives. The
    1.2 MB pyradiomics report against a 1 MiB limit ends its association while it is sent
    (nothing queued, counted as refused, the peer's address logged); a report within the limit
    is stored on the next association."""
    big = SHARED / "data" / "tid1500" / "tid1500-fhir__rsna2018-ds3__pyradiomics-1561-features.dcm"
    assert big.stat().st_size > 1 << 20
    s = Scp(tmp_path / "state", peers=Peers(max_object=1 << 20))
    try:
        with caplog.at_level(logging.WARNING, logger="sr2fhir.gateway"):
            assert c_store(s.port, [big]) == {big: -1}
        assert s.queue.counts()["received"] == 0 and s.queue.get(sop_uid(big)) is None
        assert s.intake.metrics.refused.labels("dimse", "too-large")._value.get() == 1
        assert any("more than 1 MiB" in r.getMessage() or "more than 1 MiB" in str(getattr(r, "reason", "")) for r in caplog.records)
        small = FIXTURES / "tid1410_planar_regions.dcm"
        assert c_store(s.port, [small]) == {small: 0}
    finally:
        s.close()


def test_a_pdu_header_that_claims_gigabytes_closes_the_connection_at_once(tmp_path: Path) -> None:
    """pynetdicom would read the 4 GiB the header claims (until the peer stops sending); the
    gateway closes the connection after the 6-byte header, and other senders are served."""
    import socket

    s = Scp(tmp_path / "state", peers=Peers(idle=60.0))
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
            raw.sendall(bytes([0x01, 0x00]) + b"\xff\xff\xff\xff" + b"\x00" * 1000)
            took = closed_within(raw, 20)
        assert took is not None and took < 10, took
        assert s.intake.metrics.refused.labels("dimse", "too-large")._value.get() == 1
        small = FIXTURES / "tid1410_planar_regions.dcm"
        assert c_store(s.port, [small]) == {small: 0}
    finally:
        s.close()


def test_a_peer_that_stalls_inside_a_pdu_is_dropped_after_the_idle_timeout(tmp_path: Path) -> None:
    """A PDU header that promises 1,000 bytes, then 10 of them and silence: without a timeout on
    the read, pynetdicom's reader would wait for the rest for ever."""
    import socket

    s = Scp(tmp_path / "state", peers=Peers(idle=2.0))
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
            raw.sendall(bytes([0x01, 0x00]) + struct.pack(">L", 1000) + b"\x00" * 10)
            took = closed_within(raw, 30)
        assert took is not None and 1.0 < took < 20, took
    finally:
        s.close()


@pytest.mark.openssl
def test_a_silent_tls_client_does_not_hold_up_the_others(tmp_path: Path) -> None:
    """pynetdicom runs the TLS handshake in the one thread that accepts connections, with no
    timeout: one client that connects and says nothing stopped every other. Now the handshake
    runs in the connection's own thread: a TLS sender stores while the silent one waits, and the
    silent one is dropped after the idle timeout."""
    import socket

    pki = Pki(tmp_path / "pki")
    queue = Queue(tmp_path / "state")
    scp = StorageSCP(Intake(queue, Metrics(queue), 0), "SR2FHIR", Peers(idle=3.0), tls=Tls(str(pki.server_cert), str(pki.server_key), None, "none"))
    port = free_port()
    scp.start("127.0.0.1", port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
            time.sleep(0.5)  # accepted; its handshake never starts
            f = FIXTURES / "tid1410_planar_regions.dcm"
            start = time.monotonic()
            assert c_store(port, [f], tls=ssl_context(pki.ca)) == {f: 0}
            assert time.monotonic() - start < 2.5  # before the silent one's timeout could free the acceptor
            took = closed_within(silent, 30)
        assert took is not None, "the silent TLS connection was never closed"
    finally:
        scp.stop()
        queue.close()
