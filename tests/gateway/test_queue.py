"""The durable queue: states, duplicates, backoff bookkeeping, operator commands, crash leftovers."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from sr2fhir.gateway.queue import Queue


def add(q: Queue, uid: str, data: bytes = b"object", source: str = "test") -> str:
    return q.add(uid, hashlib.sha256(data).hexdigest(), data, sop_class="1.2.840.10008.5.1.4.1.1.88.33", study_uid="1.2", series_uid="1.3", source=source)


def test_a_report_is_stored_before_it_is_queued_and_survives_reopening(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    assert add(q, "1.2.3", b"payload") == "new"
    assert q.path("1.2.3").read_bytes() == b"payload"
    q.close()
    again = Queue(tmp_path)
    r = again.next_due()
    assert r is not None and (r.sop_uid, r.state, r.attempts, r.source) == ("1.2.3", "received", 0, "test")
    assert not list(tmp_path.glob("objects/.*.part"))


def test_the_same_instance_twice_is_one_report_unless_the_first_is_dead(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    add(q, "1.2.3", b"v1")
    q.delivered("1.2.3")
    assert add(q, "1.2.3", b"v1") == "duplicate"
    assert add(q, "1.2.3", b"v1 in another transfer syntax") == "duplicate"
    r = q.get("1.2.3")
    assert r is not None and r.state == "delivered" and r.times_received == 3 and q.path("1.2.3").read_bytes() == b"v1"
    q.dead("1.2.3", "truncated")
    assert add(q, "1.2.3", b"v1") == "duplicate"  # the same bytes would fail the same way
    assert add(q, "1.2.3", b"v1, whole") == "replaced"
    r = q.get("1.2.3")
    assert r is not None and r.state == "received" and r.reason is None and q.path("1.2.3").read_bytes() == b"v1, whole"


def test_due_order_backoff_and_dead_letter(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    for uid in ("1.1", "1.2", "1.3"):
        add(q, uid)
        time.sleep(0.01)
    assert [q.next_due().sop_uid for _ in range(1)] == ["1.1"]  # type: ignore[union-attr]
    assert q.later("1.1", 60, "HTTP 503") == 1
    assert q.next_due().sop_uid == "1.2"  # type: ignore[union-attr]
    q.dead("1.2", "not a TID 1500 report")
    q.converted("1.3")
    assert q.next_due().sop_uid == "1.3"  # type: ignore[union-attr]
    q.delivered("1.3")
    assert q.next_due() is None
    wait = q.next_wait()
    assert wait is not None and 50 < wait <= 60
    assert q.counts() == {"received": 1, "converted": 0, "delivered": 1, "dead": 1}
    assert q.get("1.2").reason == "not a TID 1500 report"  # type: ignore[union-attr]
    assert q.later("1.1", 0, "again", attempt=False) == 1  # a pause does not count as an attempt


def test_retry_and_purge(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    for uid in ("1.1", "1.2", "1.3"):
        add(q, uid, uid.encode())
    q.dead("1.1", "x")
    q.dead("1.2", "y")
    q.delivered("1.3")
    assert q.retry(["1.1"]) == 1
    assert q.get("1.1").state == "received"  # type: ignore[union-attr]
    assert q.retry(state="dead") == 1
    assert q.counts()["dead"] == 0
    with pytest.raises(ValueError):
        q.purge("received")
    assert q.purge("delivered", older_than=3600) == 0
    assert q.purge("delivered") == 1
    assert q.get("1.3") is None and not q.path("1.3").exists()


def test_cursors_persist(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    assert q.cursor("orthanc") is None
    q.set_cursor("orthanc", "41")
    q.set_cursor("orthanc", "42")
    q.close()
    assert Queue(tmp_path).cursor("orthanc") == "42"


def test_orphans_are_objects_without_a_row_and_partial_files_are_removed(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    add(q, "1.1")
    (q.objects / "9.9.dcm").write_bytes(b"stored, then the process died")
    (q.objects / ".9.8.abc.part").write_bytes(b"half written")
    assert q.orphans() == [q.objects / "9.9.dcm"]
    assert not (q.objects / ".9.8.abc.part").exists()


def test_two_processes_share_the_queue(tmp_path: Path) -> None:
    a, b = Queue(tmp_path), Queue(tmp_path)
    add(a, "1.1")
    assert b.get("1.1") is not None
    b.dead("1.1", "operator")
    assert a.get("1.1").state == "dead"  # type: ignore[union-attr]


def test_a_key_that_is_not_a_uid_never_names_a_file(tmp_path: Path) -> None:
    """A row written by an older gateway under a hostile key: its object, and its purge, stay in `objects/`."""
    state = tmp_path / "x" / "y" / "state"
    q = Queue(state)
    (tmp_path / "victim.dcm").write_bytes(b"precious")
    for key in ("../../../victim", "/tmp/sr2fhir-abs", "1.2\n.3", "unidentified-../../../victim"):
        assert add(q, key, key.encode()) == "new"
        assert q.path(key).parent == q.objects and q.path(key).read_bytes() == key.encode()
        q.dead(key, "test")
    assert q.orphans() == []  # each file is found again from its row
    assert q.purge("dead") == 4
    assert (tmp_path / "victim.dcm").read_bytes() == b"precious" and not list(q.objects.iterdir())
    assert q.path("1.2.3").name == "1.2.3.dcm" and q.path("unidentified-" + "0" * 40).name == "unidentified-" + "0" * 40 + ".dcm"


def test_a_correction_waits_for_its_pending_original(tmp_path: Path) -> None:
    """Issue 24, defect 2: the original is in backoff (a 5xx); its correction, due now, waits until
    the original is delivered or dead (D-42)."""
    q = Queue(tmp_path)
    add(q, "1.1")
    q.later("1.1", 3600, "HTTP 503")
    q.add("1.2", "x", b"c", sop_class="", study_uid=None, series_uid=None, source="test", predecessors=("1.1",))
    add(q, "1.3")  # unrelated: goes on
    r = q.next_due()
    assert r is not None and r.sop_uid == "1.3"
    q.delivered("1.3")
    assert q.next_due() is None
    assert (w := q.next_wait()) is not None and w > 3000  # the correction is not due while it waits
    assert q.next_due(now=time.time() + 7200).sop_uid == "1.1"  # type: ignore[union-attr]
    q.delivered("1.1")
    assert q.next_due().sop_uid == "1.2"  # type: ignore[union-attr]
    # An original that ends dead lets its correction go too.
    add(q, "2.1")
    q.add("2.2", "y", b"d", sop_class="", study_uid=None, series_uid=None, source="test", predecessors=("2.1", "9.9"))  # 9.9: never received
    q.later("2.1", 3600, "HTTP 503")
    assert q.next_due().sop_uid == "1.2"  # type: ignore[union-attr]
    q.delivered("1.2")
    assert q.next_due() is None
    q.dead("2.1", "HTTP 422")
    assert q.next_due().sop_uid == "2.2"  # type: ignore[union-attr]


def test_an_original_delivered_after_its_correction_queues_the_correction_again(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    q.add("1.2", "x", b"c", sop_class="", study_uid=None, series_uid=None, source="test", predecessors=("1.1",))
    assert q.delivered("1.2") == []  # the original was never received: the correction goes alone
    add(q, "1.1")  # it arrives late (or is retried from the dead letter)
    assert q.next_due().sop_uid == "1.1"  # type: ignore[union-attr]
    assert q.delivered("1.1") == ["1.2"]
    again = q.next_due()
    assert again is not None and again.sop_uid == "1.2" and again.state == "received" and "predecessor 1.1" in (again.reason or "")


def test_reports_that_name_each_other_do_not_wait_forever(tmp_path: Path) -> None:
    q = Queue(tmp_path)
    q.add("1.1", "x", b"a", sop_class="", study_uid=None, series_uid=None, source="test", predecessors=("1.2", "1.1"))
    q.add("1.2", "y", b"b", sop_class="", study_uid=None, series_uid=None, source="test", predecessors=("1.1",))
    assert q.next_due() is not None
