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
