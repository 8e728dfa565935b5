"""Durable whole-file writes (files.py): all or nothing, permissions, bytes and text."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

import pytest

from sr2fhir.files import replace_file, usual_mode


def test_text_and_bytes_replace_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("an older, longer content")
    replace_file(target, ["{", '"a":"é"', "}"], text=True)
    assert target.read_bytes() == '{"a":"é"}'.encode("utf-8")
    replace_file(target, [b"\x00\x01", b"\xff"], sync_folder=True)
    assert target.read_bytes() == b"\x00\x01\xff"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_permissions_private_by_default_or_as_asked(tmp_path: Path) -> None:
    kept = tmp_path / "kept.dcm"
    replace_file(kept, [b"report"])
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # copies of reports hold patient data
    out = tmp_path / "out.json"
    replace_file(out, ["{}"], text=True, mode=usual_mode())
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()


def test_a_failure_midway_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("whole")

    def pieces() -> Iterator[str]:
        yield "half"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        replace_file(target, pieces(), text=True)
    assert target.read_text() == "whole"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
