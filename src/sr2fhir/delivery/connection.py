"""How to reach and authenticate to a FHIR server: the settings `push` and `serve` share. Light:
the HTTP client is loaded when a connection is made, not when its defaults are read (cli/)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from .client import FhirClient


@dataclass(frozen=True)
class Connection:
    """How to reach and authenticate to the FHIR server."""

    fhir_url: str
    token_env: str | None = None
    token_file: str | None = None
    basic_user: str | None = None
    smart_client_id: str | None = None
    smart_key: str | None = None
    smart_token_url: str | None = None
    smart_scope: str | None = None
    smart_kid: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False
    retries: int = 5
    seed: bool = False
    timeout: float = 120.0
    connect_timeout: float = 10.0

    @property
    def verify(self) -> bool | str:
        return False if self.insecure else (self.ca_bundle or True)

    def auth(self) -> Any:
        """The httpx auth the options ask for.

        Raises ValueError for options that contradict each other, DeliveryError (or OSError) when
        the credentials cannot be had (no token, no key file)."""
        from .client import BasicAuthFromEnv, DeliveryError, bearer_from

        chosen = [bool(self.token_env or self.token_file), bool(self.basic_user), bool(self.smart_client_id)]
        if sum(chosen) > 1:
            raise ValueError("choose one of bearer token (--token-env/--token-file), --basic-user and SMART (--smart-client-id)")
        if self.token_env or self.token_file:
            return bearer_from(self.token_env, self.token_file)
        if self.basic_user:
            return BasicAuthFromEnv(self.basic_user)
        if self.smart_client_id:
            if not self.smart_key:
                raise DeliveryError("--smart-client-id needs --smart-key (a PEM private key file)")
            from .smart import from_options

            return from_options(self.smart_client_id, self.smart_key, self.smart_token_url, self.fhir_url, self.smart_scope, self.smart_kid, self.verify, seed=self.seed)
        return None

    @contextmanager
    def client(self, auth: Any = None) -> Iterator[FhirClient]:
        """A FhirClient with these settings and `auth` (from auth(), made first so that its errors
        come before any request)."""
        from .client import FhirClient, RetryPolicy

        with FhirClient(self.fhir_url, auth=auth, verify=self.verify, retry=RetryPolicy(attempts=self.retries + 1), timeout=self.timeout, connect_timeout=self.connect_timeout) as client:
            yield client
