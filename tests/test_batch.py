"""batch.write_atomic: atomic for regular files, and never destroys what is not one (issue 10.0)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sr2fhir.batch import write_atomic


def test_a_fifo_is_written_as_a_stream_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_atomic(fifo, ["{", "}"])
        assert os.read(r, 100) == b"{}"
    finally:
        os.close(r)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_dev_null_stays_a_device() -> None:
    write_atomic(os.devnull, "{}")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_symlink_stays_a_link_and_its_target_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_dash_is_standard_output(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_atomic("-", ["a", "b"])
    assert capsys.readouterr().out == "ab" and not (tmp_path / "-").exists()


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path, "x")


def test_a_killed_worker_fails_its_file_and_the_batch_goes_on(tmp_path: Path) -> None:
    """Issue 10.8: -j N with a worker killed gave BrokenProcessPool and no summary."""
    from sr2fhir.batch import run_all
    from tests.helpers import FIXTURES, kill_on

    files = []
    for i, name in enumerate(["a.dcm", "b.dcm", "KILL.dcm", "c.dcm", "d.dcm", "e.dcm"]):
        p = tmp_path / name
        p.write_bytes(sorted(FIXTURES.glob("*.dcm"))[i % 5].read_bytes())
        files.append(str(p))
    results = list(run_all(kill_on("KILL"), files, jobs=2))
    assert [r.result.source for r in results] == files  # input order, every file
    bad = results[2].result
    assert bad.error is not None and bad.error.code == "worker-killed" and "was killed" in str(bad.error)
    assert all(r.result.error is None and r.text for i, r in enumerate(results) if i != 2)


def test_failed_files_do_not_keep_their_bytes(tmp_path: Path) -> None:
    """Issue 10.4: each failed result held its exception, whose frames held the file and the dataset."""
    import gc
    import tracemalloc

    from sr2fhir.batch import convert_path
    from tests.helpers import SHARED

    data = (SHARED / "data" / "tid1500" / "dcmqi__sr-example__sr.dcm").read_bytes()
    bad = tmp_path / "cut.dcm"
    bad.write_bytes(data[: len(data) - 1000])
    convert_path(str(bad))  # warm-up: imports and caches
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [convert_path(str(bad)) for _ in range(5)]
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert all(r.error is not None and r.error.code == "truncated" for r in kept)
    assert grown < 5 * 20_000, f"{grown / 5 / 1e3:.0f} kB kept per failed {len(data) // 1000} kB file"


def test_two_workers_share_a_batch_of_four_large_files() -> None:
    """Issue 11.2: with chunksize=4 a batch of four large files ran in one process."""
    from sr2fhir.batch import run_all
    from tests.helpers import pid_after

    done = list(run_all(pid_after, ["a", "b", "c", "d"], jobs=2))
    assert [d.result.source for d in done] == ["a", "b", "c", "d"]
    pids = [d.text for d in done]
    assert len(set(pids)) == 2 and all(pids.count(p) >= 1 for p in set(pids)), pids
