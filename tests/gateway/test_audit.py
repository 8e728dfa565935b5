"""The audit trail (gateway/audit.py): DICOM audit messages (PS3.15 A.5) as RFC 5424 syslog,
received by a real rsyslogd over UDP, TCP and TLS; what a running gateway and the queue commands record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pydicom
import pytest

from sr2fhir.gateway import audit
from tests.gateway.helpers import ENV, GatewayProcess, Pki, SyslogReceiver, c_store, hostile, stow, wait_for
from tests.helpers import FIXTURES, SHARED, LocalServer, free_port, sop_uid

SR = FIXTURES / "tid1410_planar_regions.dcm"
NOT_TID1500 = SHARED / "data" / "non-tid1500" / "pydicom__test-SR.dcm"
ME = audit.Participant("SR2FHIR", audit.ROLE_APPLICATION, False, "127.0.0.1", "SR2FHIR")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture()
def repository(tmp_path: Path, pki: Pki) -> Iterator[SyslogReceiver]:
    r = SyslogReceiver(tmp_path / "rsyslog", pki).start()
    yield r
    r.stop()


def code(el: Any, tag: str) -> str:
    found = el.find(tag)
    assert found is not None, tag
    return str(found.get("csd-code"))


@pytest.mark.rsyslog
@pytest.mark.openssl
def test_a_receipt_names_sender_receiver_study_instance_and_patient() -> None:
    study = audit.Study("1.2.3", "1.2.840.10008.5.1.4.1.1.88.22", ("1.2.3.4",), "PID-7")
    xml = audit.message(audit.receipt(ME, "dimse:MODALITY1", "10.1.2.3", study, None), "sr2fhir@host", "SITE")
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    ident = root.find("EventIdentification")
    assert ident is not None and ident.get("EventActionCode") == "C" and ident.get("EventOutcomeIndicator") == "0"
    assert code(ident, "EventID") == "110104"
    parts = root.findall("ActiveParticipant")
    assert [(p.get("UserID"), p.get("UserIsRequestor"), p.get("AlternativeUserID"), p.get("NetworkAccessPointID"), code(p, "RoleIDCode")) for p in parts] == [
        ("MODALITY1", "true", "AETITLES=MODALITY1", "10.1.2.3", "110153"), ("SR2FHIR", "false", "AETITLES=SR2FHIR", "127.0.0.1", "110152")]
    assert parts[0].get("NetworkAccessPointTypeCode") == "2"
    source = root.find("AuditSourceIdentification")
    assert source is not None and source.get("AuditSourceID") == "sr2fhir@host" and source.get("AuditEnterpriseSiteID") == "SITE"
    objects = root.findall("ParticipantObjectIdentification")
    assert [(o.get("ParticipantObjectID"), o.get("ParticipantObjectTypeCode"), o.get("ParticipantObjectTypeCodeRole"), code(o, "ParticipantObjectIDTypeCode"))
            for o in objects] == [("1.2.3", "2", "3", "110180"), ("PID-7", "1", "1", "2")]
    sop = objects[0].find("SOPClass")
    assert sop is not None and sop.get("NumberOfInstances") == "1" and [i.get("UID") for i in sop.findall("Instance")] == ["1.2.3.4"]
    refused = ET.fromstring(audit.message(audit.receipt(ME, "stow", "10.1.2.4", None, "not an SR"), "x"))
    assert refused.find("EventIdentification").get("EventOutcomeIndicator") == "4"  # type: ignore[union-attr]
    assert refused.findtext("EventIdentification/EventOutcomeDescription") == "not an SR"
    assert "PID-7" not in repr(study)  # the Patient ID never reaches a repr (and so no log line)


@pytest.mark.rsyslog
@pytest.mark.openssl
@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_each_transport_reaches_rsyslog_as_rfc_5424(repository: SyslogReceiver, pki: Pki, transport: str) -> None:
    port = {"udp": repository.udp, "tcp": repository.tcp, "tls": repository.tls}[transport]
    target = audit.Target(f"{transport}://127.0.0.1:{port}", str(pki.ca))
    for start in (True, False):
        audit.send_now(target, audit.application(ME, start))
    got = wait_for("rsyslogd to write both messages", lambda: m if len(m := repository.messages()) == 2 else None, 60, every=0.2)
    assert [(m["pri"], m["version"], m["app"], m["msgid"], m["bom"]) for m in got] == [("85", "1", "sr2fhir", "IHE+DICOM", True)] * 2
    assert [code(m["xml"].find("EventIdentification"), "EventTypeCode") for m in got] == ["110120", "110121"]


@pytest.mark.rsyslog
@pytest.mark.openssl
def test_a_tls_repository_with_an_untrusted_certificate_is_refused(repository: SyslogReceiver, tmp_path: Path) -> None:
    other = Pki(tmp_path / "other")
    with pytest.raises(OSError):
        audit.send_now(audit.Target(f"tls://127.0.0.1:{repository.tls}", str(other.ca)), audit.application(ME, True))


def test_an_unreachable_repository_drops_past_the_bound_and_counts(tmp_path: Path) -> None:
    dropped: list[float] = []

    class Count:
        def inc(self, amount: float = 1) -> None:
            dropped.append(amount)

    a = audit.Auditor(audit.Target(f"tcp://127.0.0.1:{free_port()}"), limit=3, on_drop=Count())
    for _ in range(10):
        a.record(audit.application(ME, True))  # never raises, never blocks
    assert len(dropped) == 7


@pytest.mark.rsyslog
@pytest.mark.openssl
def test_a_running_gateway_and_the_queue_commands_audit_what_happens(tmp_path: Path, pki: Pki, repository: SyslogReceiver) -> None:
    """Issue 24: every receipt (peer, AE, SOP Instance UID), delivery, dead letter and queue
    operation, and the start and stop, reach the repository over TLS; the Patient ID is in the
    audit messages and nowhere in the log."""
    done = b'{"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {"status": "201 Created"}}]}'
    found = b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]}'
    capability = b'{"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"}'

    def fhir(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/fhir+json"}, done if method == "POST" else capability if "metadata" in path else found

    bad = hostile(SR, tmp_path / "bad.dcm", "../x")
    with LocalServer(fhir) as server:
        gw = GatewayProcess(tmp_path / "state", server.url, "--audit-syslog", f"tls://127.0.0.1:{repository.tls}", "--audit-ca", str(pki.ca),
                            "--audit-site", "TEST-SITE")
        with gw:
            assert c_store(gw.dicom_port, [SR, bad, NOT_TID1500]) == {SR: 0, bad: 0xC000, NOT_TID1500: 0}
            assert stow(gw.http_port, [SR]).status_code == 200  # a duplicate, still a receipt
            wait_for("delivery", lambda: gw.counts()["delivered"] == 1 and gw.counts()["dead"] == 2, 300)
        assert json.loads((gw.state / "audit.json").read_text())["url"].startswith("tls://")
        log = gw.log_text()
    r = subprocess.run([sys.executable, "-m", "sr2fhir", "queue", "purge", "--status", "dead", "--state", str(gw.state)],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    messages = wait_for("the audit messages", lambda: m if len(m := repository.messages()) >= 9 else None, 60, every=0.2)
    assert {m["transport"] for m in messages} == {"imtcp"} and all(m["msgid"] == "IHE+DICOM" for m in messages)
    events = [(code(m["xml"].find("EventIdentification"), "EventID"), m["xml"].find("EventIdentification").get("EventOutcomeIndicator")) for m in messages]
    assert events[0] == ("110100", "0") and ("110100", "0") in events[1:]  # start, and stop
    receipts = [m["xml"] for m in messages if code(m["xml"].find("EventIdentification"), "EventID") == "110104"]
    assert sorted(x.find("EventIdentification").get("EventOutcomeIndicator") for x in receipts) == ["0", "0", "0", "4"]
    senders = {(x.find("ActiveParticipant").get("UserID"), x.find("ActiveParticipant").get("NetworkAccessPointID")) for x in receipts}
    assert senders == {("SENDER", "127.0.0.1"), ("stow", "127.0.0.1")}
    instances = {i.get("UID") for x in receipts for i in x.iter("Instance")}
    assert instances == {sop_uid(SR), sop_uid(NOT_TID1500)}
    exports = sorted((m["xml"].find("EventIdentification").get("EventOutcomeIndicator"), next(i.get("UID") for i in m["xml"].iter("Instance")))
                     for m in messages if code(m["xml"].find("EventIdentification"), "EventID") == "110106")
    assert exports == [("0", sop_uid(SR)), ("8", sop_uid(NOT_TID1500))]
    deleted = [m["xml"] for m in messages if code(m["xml"].find("EventIdentification"), "EventID") == "110105"]
    assert len(deleted) == 1 and deleted[0].find("EventIdentification").get("EventActionCode") == "D"
    assert all(m["xml"].find("AuditSourceIdentification").get("AuditEnterpriseSiteID") == "TEST-SITE" for m in messages)
    patient = str(pydicom.dcmread(SR).PatientID)
    assert patient in {o.get("ParticipantObjectID") for m in messages for o in m["xml"].iter("ParticipantObjectIdentification")}
    assert patient not in log
