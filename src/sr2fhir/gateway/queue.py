"""The gateway's durable queue: every report it accepted, and where it is on its way to FHIR.

One SQLite database (WAL, synchronous=FULL) in the state folder, beside the objects themselves
(`objects/<SOP Instance UID>.dcm`; a key that is not a valid UID never names a file, see `file_name`). A report is `received` (stored, acknowledged), `converted`,
`delivered`, or `dead` (will not succeed without a person: the reason says why). At-least-once:
whatever is not delivered or dead is picked up again after a crash, and delivering it twice
creates nothing twice (conditional creates, D-21). Safe to open from several processes (the
`sr2fhir queue` commands beside a running gateway).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ..dicom.dictionary import uid_ok
from ..files import replace_file

State = Literal["received", "converted", "delivered", "dead"]
STATES: tuple[State, ...] = ("received", "converted", "delivered", "dead")
PENDING: tuple[State, ...] = ("received", "converted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    sop_uid TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    sop_class TEXT NOT NULL,
    study_uid TEXT,
    series_uid TEXT,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    delivered_at REAL,
    times_received INTEGER NOT NULL DEFAULT 1,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS reports_due ON reports (state, next_at);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS predecessors (sop_uid TEXT NOT NULL, predecessor TEXT NOT NULL, PRIMARY KEY (sop_uid, predecessor));
CREATE INDEX IF NOT EXISTS predecessors_of ON predecessors (predecessor);
"""

_TURN = """state IN ('received', 'converted') AND NOT EXISTS (
    SELECT 1 FROM predecessors p JOIN reports o ON o.sop_uid = p.predecessor
    WHERE p.sop_uid = reports.sop_uid AND o.state IN ('received', 'converted')
      AND NOT EXISTS (SELECT 1 FROM predecessors back WHERE back.sop_uid = o.sop_uid AND back.predecessor = reports.sop_uid))"""
"""A pending report may be delivered unless a predecessor it names (a report it corrects) is
pending too: a correction never overtakes its original (D-42). Two reports that name each other
do not wait for each other."""


@dataclass(frozen=True, slots=True)
class Report:
    sop_uid: str
    sha256: str
    sop_class: str
    study_uid: str | None
    series_uid: str | None
    source: str
    state: State
    attempts: int
    next_at: float
    received_at: float
    updated_at: float
    delivered_at: float | None
    times_received: int
    reason: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


Added = Literal["new", "duplicate", "replaced"]

_UNIDENTIFIED = re.compile(r"unidentified-[0-9a-f]{40}")


def unidentified(sha256: str) -> str:
    """The key of an object whose header gives no valid SOP Instance UID: its bytes' hash."""
    return f"unidentified-{sha256[:40]}"


def file_name(key: str) -> str:
    """The object's file name for a queue key. Only a valid UID (PS3.5 9.1) or an `unidentified-`
    hash names a file as it is; anything else (a key from an older state folder, a hostile one)
    is hashed, so no key can reach outside `objects/`."""
    if uid_ok(key) or _UNIDENTIFIED.fullmatch(key):
        return f"{key}.dcm"
    return f"key-{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}.dcm"


class Queue:
    """The state folder: `queue.sqlite` and `objects/`."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.objects = state / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.incoming = state / "incoming"
        """STOW-RS bodies while they arrive (gateway/web.py), on the same disk as the objects."""
        self.incoming.mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(state / "queue.sqlite", timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # A small write-ahead log: it lives on the same disk as the objects, under the watermark.
        self._db.execute("PRAGMA wal_autocheckpoint=100")
        self._db.execute("PRAGMA journal_size_limit=1048576")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def path(self, sop_uid: str) -> Path:
        return self.objects / file_name(sop_uid)

    def _write_object(self, sop_uid: str, data: bytes) -> None:
        """Durably: a temporary file, fsync'd, renamed, and the folder fsync'd."""
        replace_file(self.path(sop_uid), [data], sync_folder=True)

    def add(self, sop_uid: str, sha256: str, data: bytes, *, sop_class: str, study_uid: str | None, series_uid: str | None, source: str,
            predecessors: tuple[str, ...] = ()) -> Added:
        """Store one object and queue it; when this returns, it survives a crash (the caller may
        acknowledge it). The same SOP Instance again is a duplicate (queued once), unless the
        one kept is dead: then the new copy replaces it and is tried again (D-36).
        `predecessors`: the reports it corrects, which are delivered first (D-42)."""
        with self._lock:
            row = self._db.execute("SELECT sha256, state FROM reports WHERE sop_uid = ?", (sop_uid,)).fetchone()
            now = time.time()
            if row is not None and self.path(sop_uid).is_file() and (row["sha256"] == sha256 or row["state"] != "dead"):
                # The same SOP Instance, perhaps in another transfer syntax (PS3.5 says a changed
                # object gets a new UID): kept once. Only a dead one is replaced (D-36).
                self._db.execute("UPDATE reports SET times_received = times_received + 1 WHERE sop_uid = ?", (sop_uid,))
                return "duplicate"
            self._write_object(sop_uid, data)
            self._db.execute(
                """INSERT INTO reports (sop_uid, sha256, sop_class, study_uid, series_uid, source, state, attempts, next_at, received_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, 'received', 0, ?, ?, ?)
                   ON CONFLICT (sop_uid) DO UPDATE SET sha256 = excluded.sha256, sop_class = excluded.sop_class,
                     study_uid = excluded.study_uid, series_uid = excluded.series_uid, source = excluded.source, state = 'received',
                     attempts = 0, next_at = excluded.next_at, received_at = excluded.received_at, updated_at = excluded.updated_at,
                     delivered_at = NULL, reason = NULL, times_received = times_received + 1""",
                (sop_uid, sha256, sop_class, study_uid, series_uid, source, now, now, now),
            )
            self._db.execute("DELETE FROM predecessors WHERE sop_uid = ?", (sop_uid,))
            self._db.executemany("INSERT OR IGNORE INTO predecessors (sop_uid, predecessor) VALUES (?, ?)",
                                 [(sop_uid, p) for p in predecessors if p != sop_uid])
            return "new" if row is None else "replaced"

    def known(self, sop_uid: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM reports WHERE sop_uid = ?", (sop_uid,)).fetchone() is not None

    def next_due(self, now: float | None = None) -> Report | None:
        """The pending report whose turn has come, oldest first."""
        with self._lock:
            row = self._db.execute(
                f"SELECT * FROM reports WHERE {_TURN} AND next_at <= ? ORDER BY next_at, received_at LIMIT 1",
                (time.time() if now is None else now,),
            ).fetchone()
        return Report(**row) if row is not None else None

    def next_wait(self) -> float | None:
        """Seconds until the next pending report is due (0 when one is), None when none is pending."""
        with self._lock:
            row = self._db.execute(f"SELECT MIN(next_at) FROM reports WHERE {_TURN}").fetchone()
        return None if row[0] is None else max(0.0, row[0] - time.time())

    def _set(self, sop_uid: str, **values: Any) -> None:
        values["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._lock:
            self._db.execute(f"UPDATE reports SET {cols} WHERE sop_uid = ?", (*values.values(), sop_uid))

    def converted(self, sop_uid: str) -> None:
        self._set(sop_uid, state="converted")

    def delivered(self, sop_uid: str, reason: str | None = None) -> list[str]:
        """Mark it delivered. A correction of it that was delivered before it (it arrived late,
        or was retried from the dead letter) is queued again, so that it supersedes what this one
        just created (D-42); returns those corrections' UIDs."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE reports SET state = 'delivered', delivered_at = ?, updated_at = ?, reason = ? WHERE sop_uid = ?",
                                 (now, now, reason, sop_uid))
                again = [r[0] for r in self._db.execute(
                    "SELECT sop_uid FROM reports WHERE state = 'delivered' AND sop_uid != ? AND sop_uid IN "
                    "(SELECT sop_uid FROM predecessors WHERE predecessor = ?)", (sop_uid, sop_uid))]
                for uid in again:
                    self._db.execute("UPDATE reports SET state = 'received', attempts = 0, next_at = ?, updated_at = ?, reason = ? WHERE sop_uid = ?",
                                     (now, now, f"delivered again: its predecessor {sop_uid} reached the server after it", uid))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (a full disk)
                    self._db.execute("ROLLBACK")
                raise
        return again

    def dead(self, sop_uid: str, reason: str) -> None:
        self._set(sop_uid, state="dead", reason=reason)

    def later(self, sop_uid: str, delay: float, reason: str, *, attempt: bool = True) -> int:
        """Try again in `delay` seconds; `attempt`: this counts as a failed attempt. Returns the attempts so far."""
        with self._lock:
            if attempt:
                self._db.execute("UPDATE reports SET attempts = attempts + 1 WHERE sop_uid = ?", (sop_uid,))
            self._set(sop_uid, next_at=time.time() + delay, reason=reason)
            row = self._db.execute("SELECT attempts FROM reports WHERE sop_uid = ?", (sop_uid,)).fetchone()
        return int(row[0]) if row else 0

    def retry(self, sop_uids: list[str] | None = None, state: State | None = None) -> int:
        """Queue reports again (`sr2fhir queue retry`): these UIDs, or every report in `state`."""
        now = time.time()
        with self._lock:
            if sop_uids:
                marks = ",".join("?" * len(sop_uids))
                cur = self._db.execute(f"UPDATE reports SET state = 'received', attempts = 0, next_at = ?, updated_at = ? WHERE sop_uid IN ({marks})", (now, now, *sop_uids))
            else:
                cur = self._db.execute("UPDATE reports SET state = 'received', attempts = 0, next_at = ?, updated_at = ? WHERE state = ?", (now, now, state or "dead"))
            return cur.rowcount

    def purge(self, state: State, older_than: float = 0.0) -> int:
        """Forget reports in `state` (delivered or dead) last changed more than `older_than` seconds ago, and their objects."""
        return len(self.purged(state, older_than))

    def purged(self, state: State, older_than: float = 0.0) -> list[Report]:
        """As `purge`, returning the reports forgotten (for the audit trail)."""
        if state in PENDING:
            raise ValueError("only delivered or dead reports can be purged")
        cutoff = time.time() - older_than
        with self._lock:
            rows = [Report(**r) for r in self._db.execute("SELECT * FROM reports WHERE state = ? AND updated_at <= ?", (state, cutoff))]
            for r in rows:
                self.path(r.sop_uid).unlink(missing_ok=True)
                self._db.execute("DELETE FROM reports WHERE sop_uid = ?", (r.sop_uid,))
                self._db.execute("DELETE FROM predecessors WHERE sop_uid = ?", (r.sop_uid,))
        return rows

    def get(self, sop_uid: str) -> Report | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM reports WHERE sop_uid = ?", (sop_uid,)).fetchone()
        return Report(**row) if row is not None else None

    def reports(self, state: State | None = None, limit: int = 1000) -> list[Report]:
        with self._lock:
            if state:
                rows = self._db.execute("SELECT * FROM reports WHERE state = ? ORDER BY received_at LIMIT ?", (state, limit)).fetchall()
            else:
                rows = self._db.execute("SELECT * FROM reports ORDER BY received_at LIMIT ?", (limit,)).fetchall()
        return [Report(**r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            found = dict(self._db.execute("SELECT state, COUNT(*) FROM reports GROUP BY state").fetchall())
        return {s: int(found.get(s, 0)) for s in STATES}

    def oldest_pending_age(self) -> float:
        with self._lock:
            row = self._db.execute("SELECT MIN(received_at) FROM reports WHERE state IN ('received', 'converted')").fetchone()
        return 0.0 if row[0] is None else max(0.0, time.time() - row[0])

    def writable(self) -> bool:
        """Whether a write to the queue succeeds now (after the state disk was full)."""
        try:
            self.set_cursor("writable-probe", repr(time.time()))
        except (sqlite3.Error, OSError):
            return False
        return True

    def cursor(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_cursor(self, name: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))

    def orphans(self) -> list[Path]:
        """Objects on disk that no row names: stored, then the process died before the row was
        written (their sender got no Success). Leftover temporary files are removed."""
        for part in [*self.objects.glob(".*.part"), *self.incoming.glob(".*.part")]:
            part.unlink(missing_ok=True)
        with self._lock:
            known = {file_name(r[0]) for r in self._db.execute("SELECT sop_uid FROM reports")}
        return [p for p in self.objects.glob("*.dcm") if p.name not in known]
