"""SMART Backend Services authorization (HL7 SMART App Launch 2.x, "Backend Services").

The client authenticates with a JWT signed by its private key (RS384 or ES384), exchanges it at
the token endpoint for an access token (OAuth 2.0 client credentials), and sends that token as a
bearer. The token is reused until shortly before it expires, and renewed once when the FHIR
server answers 401.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Generator

import httpx

from .client import DeliveryError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_SCOPE = "system/Patient.rs system/ImagingStudy.rs system/ServiceRequest.rs system/Observation.cruds system/ImagingSelection.cruds system/Basic.cruds system/Device.crs system/BodyStructure.crs system/Practitioner.crs"
"""What `push` does: search the pre-existing resources, create and update what a report makes."""
SEED_SCOPE = DEFAULT_SCOPE.replace("Patient.rs", "Patient.crs").replace("ImagingStudy.rs", "ImagingStudy.crs").replace("ServiceRequest.rs", "ServiceRequest.crs")
"""`push --seed` also creates the Patient, ImagingStudy and ServiceRequest."""


def discover_token_url(fhir_url: str, verify: bool | str = True, transport: httpx.BaseTransport | None = None) -> str:
    """The token endpoint from the server's .well-known/smart-configuration."""
    url = fhir_url.rstrip("/") + "/.well-known/smart-configuration"
    try:
        with httpx.Client(verify=verify, transport=transport, timeout=30) as http:
            r = http.get(url, headers={"Accept": "application/json"})
        r.raise_for_status()
        return str(r.json()["token_endpoint"])
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise DeliveryError(f"no SMART token endpoint at {url} ({type(exc).__name__}); give it with --smart-token-url") from None


class SmartBackendAuth(httpx.Auth):
    """httpx auth that obtains and renews SMART Backend Services access tokens."""

    def __init__(
        self,
        client_id: str,
        private_key_pem: bytes,
        token_url: str,
        *,
        scope: str = DEFAULT_SCOPE,
        kid: str | None = None,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import jwt  # only when SMART is used: keeps the conversion path free of crypto imports

        self._jwt = jwt
        try:
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            key = load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise DeliveryError(f"the SMART private key is not an unencrypted PEM key ({exc.__class__.__name__})") from None
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if isinstance(key, rsa.RSAPrivateKey):
            self.alg = "RS384"
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            self.alg = "ES384"
        else:
            raise DeliveryError("the SMART private key must be RSA (RS384) or EC P-384 (ES384)")
        self.key = key
        self.client_id, self.token_url, self.scope, self.kid = client_id, token_url, scope, kid
        self.clock = clock
        self._http = httpx.Client(verify=verify, transport=transport, timeout=60)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def assertion(self) -> str:
        """The signed client assertion (SMART Backend Services, "Protocol details")."""
        now = int(self.clock())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.token_url, "exp": now + 300, "jti": str(uuid.uuid4())}
        headers = {"typ": "JWT", **({"kid": self.kid} if self.kid else {})}
        return str(self._jwt.encode(claims, self.key, algorithm=self.alg, headers=headers))

    def token(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or self._token is None or self.clock() >= self._expires:
                self._fetch()
            assert self._token is not None
            return self._token

    def _fetch(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        try:
            r = self._http.post(self.token_url, data=form, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise DeliveryError(f"SMART token endpoint {self.token_url}: network error ({type(exc).__name__})", retryable=True) from None
        body: Any = None
        try:
            body = r.json()
        except ValueError:
            pass
        if r.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            reason = (body.get("error_description") or body.get("error")) if isinstance(body, dict) else None
            raise DeliveryError(f"SMART token endpoint {self.token_url} refused the client: HTTP {r.status_code}{': ' + str(reason) if reason else ''}", status=r.status_code)
        self._token = str(body["access_token"])
        # Renew a minute early so that a token never expires in flight.
        self._expires = self.clock() + max(0, int(body.get("expires_in", 300)) - 60)

    def secrets(self) -> list[str]:
        """What must never be shown: the access token in use."""
        return [self._token] if self._token else []

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.token(renew=True)}"
            yield request


def from_options(client_id: str, key_file: str, token_url: str | None, fhir_url: str, scope: str | None, kid: str | None, verify: bool | str, *, seed: bool = False) -> SmartBackendAuth:
    """SmartBackendAuth from the command-line options (the key is read from a file)."""
    pem = Path(key_file).read_bytes()
    url = token_url or discover_token_url(fhir_url, verify)
    return SmartBackendAuth(client_id, pem, url, scope=scope or (SEED_SCOPE if seed else DEFAULT_SCOPE), kid=kid, verify=verify)
