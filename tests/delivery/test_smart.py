"""SMART Backend Services: the signed client assertion, token reuse and renewal (fake server)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sr2fhir.delivery.client import DeliveryError, FhirClient
from sr2fhir.delivery.smart import ASSERTION_TYPE, SmartBackendAuth, discover_token_url

TOKEN_URL = "https://auth.test/token"
FHIR = "https://fhir.test/r5"


def pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class FakeAuthServer:
    """A token endpoint that verifies the client assertion with the client's public key, and a
    FHIR endpoint that accepts only the newest token."""

    def __init__(self, public_key: Any, alg: str) -> None:
        self.public_key, self.alg = public_key, alg
        self.issued: list[str] = []
        self.claims: list[dict[str, Any]] = []
        self.headers: list[dict[str, Any]] = []
        self.refuse = False

    def __call__(self, req: httpx.Request) -> httpx.Response:
        if str(req.url).endswith("/.well-known/smart-configuration"):
            return httpx.Response(200, json={"token_endpoint": TOKEN_URL})
        if str(req.url) == TOKEN_URL:
            if self.refuse:
                return httpx.Response(401, json={"error": "invalid_client", "error_description": "unknown client"})
            form = {k: v[0] for k, v in parse_qs(req.content.decode()).items()}
            assert form["grant_type"] == "client_credentials" and form["client_assertion_type"] == ASSERTION_TYPE
            assert "system/Observation.cruds" in form["scope"]
            self.headers.append(jwt.get_unverified_header(form["client_assertion"]))
            self.claims.append(jwt.decode(form["client_assertion"], self.public_key, algorithms=[self.alg], audience=TOKEN_URL))
            self.issued.append(f"token-{len(self.issued) + 1}")
            return httpx.Response(200, json={"access_token": self.issued[-1], "token_type": "bearer", "expires_in": 300})
        if req.headers.get("Authorization") != f"Bearer {self.issued[-1]}":
            return httpx.Response(401)
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": []})


@pytest.fixture(params=["RS384", "ES384"])
def setup(request: pytest.FixtureRequest) -> tuple[FakeAuthServer, SmartBackendAuth, list[float]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if request.param == "RS384" else ec.generate_private_key(ec.SECP384R1())
    server = FakeAuthServer(key.public_key(), request.param)
    now = [1_800_000_000.0]
    auth = SmartBackendAuth("sr2fhir-test", pem(key), TOKEN_URL, kid="key-1", transport=httpx.MockTransport(server), clock=lambda: now[0])
    return server, auth, now


def client(server: FakeAuthServer, auth: SmartBackendAuth) -> FhirClient:
    return FhirClient(FHIR, auth=auth, transport=httpx.MockTransport(server), sleep=lambda s: None)


def test_signed_assertion_and_token_reuse(setup: tuple[FakeAuthServer, SmartBackendAuth, list[float]]) -> None:
    server, auth, now = setup
    c = client(server, auth)
    c.search("Patient", identifier="x")
    c.search("ImagingStudy", identifier="y")
    assert server.issued == ["token-1"]  # one token for both requests
    claims, header = server.claims[0], server.headers[0]
    assert claims["iss"] == claims["sub"] == "sr2fhir-test" and claims["aud"] == TOKEN_URL
    assert 0 < claims["exp"] - now[0] <= 300 and claims["jti"]
    assert header["alg"] == auth.alg and header["kid"] == "key-1" and header["typ"] == "JWT"


def test_renewed_before_expiry_and_after_401(setup: tuple[FakeAuthServer, SmartBackendAuth, list[float]]) -> None:
    server, auth, now = setup
    c = client(server, auth)
    c.search("Patient")
    now[0] += 250  # within a minute of expiry: renew before sending
    c.search("Patient")
    assert server.issued == ["token-1", "token-2"]
    server.issued.append("token-revoked-elsewhere")  # the server no longer accepts token-2
    server.issued.append("token-4")
    c.search("Patient")  # 401, renewed once, then accepted
    assert len(server.claims) == 3 and server.claims[1]["jti"] != server.claims[2]["jti"]


def test_refused_client_is_a_clear_error(setup: tuple[FakeAuthServer, SmartBackendAuth, list[float]]) -> None:
    server, auth, _ = setup
    server.refuse = True
    with pytest.raises(DeliveryError, match="refused the client: HTTP 401: unknown client"):
        client(server, auth).search("Patient")


def test_token_endpoint_discovered() -> None:
    assert discover_token_url(FHIR, transport=httpx.MockTransport(FakeAuthServer(None, "RS384"))) == TOKEN_URL


def test_key_that_is_not_pem_is_refused() -> None:
    with pytest.raises(DeliveryError, match="not an unencrypted PEM key"):
        SmartBackendAuth("c", b"not a key", TOKEN_URL)


def test_seed_asks_for_create_on_the_pre_existing_resources(tmp_path: Any) -> None:
    from sr2fhir.delivery import smart

    key = tmp_path / "key.pem"
    key.write_bytes(pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    plain = smart.from_options("c", str(key), TOKEN_URL, FHIR, None, None, True)
    seeding = smart.from_options("c", str(key), TOKEN_URL, FHIR, None, None, True, seed=True)
    assert "system/Patient.rs" in plain.scope and "system/Patient.crs" not in plain.scope
    assert {"system/Patient.crs", "system/ImagingStudy.crs", "system/ServiceRequest.crs"} <= set(seeding.scope.split())
    assert smart.from_options("c", str(key), TOKEN_URL, FHIR, "system/*.cruds", None, True, seed=True).scope == "system/*.cruds"
