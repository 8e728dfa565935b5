"""Durable whole-file writes: all or nothing, and on disk when they return.

The content goes to a temporary file beside the target (`.NAME.XXXX.part`), is fsync'd, and is
renamed over the target; a failure (a full disk, a kill) leaves the target as it was and removes
the temporary file. Outputs (batch.write_atomic), the push spool, the gateway's queue and the
export manifest all write this way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Literal, overload


@overload
def replace_file(target: Path, pieces: Iterable[str], *, text: Literal[True], mode: int | None = None, sync_folder: bool = False) -> None: ...
@overload
def replace_file(target: Path, pieces: Iterable[bytes], *, text: Literal[False] = False, mode: int | None = None, sync_folder: bool = False) -> None: ...
def replace_file(target: Path, pieces: Iterable[str] | Iterable[bytes], *, text: bool = False, mode: int | None = None, sync_folder: bool = False) -> None:
    """Write `pieces` (str if `text`, as UTF-8; else bytes) as the whole of `target`, durably.

    `mode`: the file's permissions; by default mkstemp's 0600 (copies of reports hold patient
    data). `sync_folder`: fsync the folder as well, so that the rename itself survives a power cut
    (what a caller that then acknowledges the data needs)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        fh: IO[Any] = os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")
        with fh:
            for piece in pieces:
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync_folder:
        fsync_folder(target.parent)


def usual_mode() -> int:
    """The permissions `open` gives a new file (0666 less the umask): for outputs meant to be read."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_folder(path: Path) -> None:
    """fsync a folder: its entries (a rename, a new file) are on disk when this returns."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
