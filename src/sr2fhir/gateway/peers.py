"""Who may send to the gateway by DICOM, and how much of it one sender may take (`--allowed-ae`,
`--max-associations`, `--max-associations-per-peer`, `--idle-timeout`, `--max-object-mb`); enforced by
gateway/dimse.py and gateway/meter.py."""

from __future__ import annotations

import socket
from dataclasses import dataclass


def split_entry(entry: str) -> tuple[str, str | None]:
    """An `--allowed-ae` entry as (AE title, host or None): `AE` or `AE@HOST`, split at the last `@`."""
    title, at, host = entry.rpartition("@")
    return (title, host) if at else (entry, None)


@dataclass(frozen=True, slots=True)
class Peers:
    """Who may associate: `allowed` holds `AE` or `AE@host` entries (none: any AE from anywhere)."""

    allowed: tuple[str, ...] = ()
    per_peer: int = 8
    maximum: int = 32
    idle: float = 60.0
    max_object: int = 64 << 20

    def titles(self) -> list[str]:
        return sorted({split_entry(entry)[0] for entry in self.allowed})

    def hosts(self) -> dict[str, set[str] | None]:
        """AE title -> the addresses it may call from (None: any). Host names are resolved once, at start."""
        out: dict[str, set[str] | None] = {}
        for entry in self.allowed:
            title, host = split_entry(entry)
            if not host:
                out[title] = None
            elif title not in out or out[title] is not None:
                try:
                    addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
                except OSError as exc:
                    raise ValueError(f"--allowed-ae {entry}: {host} cannot be resolved ({exc})") from None
                out[title] = (out.get(title) or set()) | {str(a) for a in addresses}
        return out
