"""TLS for the gateway's two listeners: DICOM (PS3.15 Annex B, the BCP 195 profile: TLS 1.2 or
later) and HTTPS for STOW-RS and the operations endpoints. One certificate serves both; with a CA
bundle, peers may be asked for client certificates (`--tls-verify-client`)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Verify = Literal["none", "optional", "required"]

_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


@dataclass(frozen=True, slots=True)
class Tls:
    cert: str
    key: str
    ca: str | None = None
    verify_client: Verify = "none"

    def check(self) -> None:
        """Raise ValueError naming what is wrong, before anything listens."""
        if self.verify_client != "none" and not self.ca:
            raise ValueError(f"--tls-verify-client {self.verify_client} needs --tls-ca (the CA bundle that signs the peers' certificates)")
        for opt, path in (("--tls-cert", self.cert), ("--tls-key", self.key), ("--tls-ca", self.ca)):
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{opt} {path}: no such file")
        try:
            self.server_context()
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"the TLS certificate, key or CA bundle cannot be used: {exc}") from None

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        if self.ca:
            ctx.load_verify_locations(self.ca)
        ctx.verify_mode = _MODES[self.verify_client]
        return ctx

    def uvicorn(self) -> dict[str, Any]:
        """uvicorn.Config's TLS arguments."""
        return {"ssl_certfile": self.cert, "ssl_keyfile": self.key, "ssl_ca_certs": self.ca, "ssl_cert_reqs": int(_MODES[self.verify_client])}
