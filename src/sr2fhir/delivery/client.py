"""A small FHIR REST client for delivery: transactions and searches, with retries.

Retries with exponential backoff (and Retry-After) on network errors, 429 and 5xx; never on
other 4xx, whose OperationOutcome is turned into a readable message. Posting the same
transaction again is safe: every entry is a conditional create (D-21).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable

import httpx

from ..errors import Sr2fhirError
from ..fhir.bundle import dumps

FHIR_JSON = "application/fhir+json"
NO_CACHE = {"Cache-Control": "no-cache"}
"""Searches must see what the previous push wrote; servers such as HAPI reuse recent search
results unless told not to."""
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class DeliveryError(Sr2fhirError):
    """A request the server refused or that could not be completed; the message is safe to show.

    `retryable`: the server could not be reached in time (later inputs would fare no better);
    `stop`: no later input can succeed either (credentials refused, TLS certificate not trusted).
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False, stop: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.stop = stop
        self.retry_after = retry_after
        """The server's last Retry-After (seconds), when it gave one."""


LANDED: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}
"""The answer to a request whose own answer was lost but which the server was found to have done."""

STOP_STATUSES = frozenset({401, 403})
"""The server refuses the credentials: every later input would be refused too."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay) * random.uniform(0.8, 1.2)


class BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request

    def secrets(self) -> list[str]:
        return [self.token]


class BasicAuthFromEnv(httpx.BasicAuth):
    """HTTP basic auth; the password from SR2FHIR_PASSWORD (never on the command line)."""

    def __init__(self, user: str, env: str = "SR2FHIR_PASSWORD") -> None:
        password = os.environ.get(env)
        if password is None:
            raise DeliveryError(f"--basic-user needs the password in the environment variable {env}")
        super().__init__(user, password)
        self._secrets = [password, base64.b64encode(f"{user}:{password}".encode()).decode("ascii")]

    def secrets(self) -> list[str]:
        return list(self._secrets)


def bearer_from(env: str | None = None, file: str | None = None) -> BearerAuth:
    """A bearer token from an environment variable or a file (never from the command line)."""
    token = os.environ.get(env, "") if env else Path(file).read_text(encoding="utf-8") if file else ""
    token = token.strip()
    if not token:
        raise DeliveryError(f"no bearer token in {'environment variable ' + env if env else 'file ' + str(file)}")
    return BearerAuth(token)


def outcome_text(body: Any, limit: int = 5) -> str:
    """The issues of an OperationOutcome as one readable line: errors first, the rest counted."""
    if not (isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"):
        return ""
    issues = body.get("issue", [])
    serious = [i for i in issues if i.get("severity") in ("fatal", "error")]
    shown = (serious or issues)[:limit]
    parts = []
    for i in shown:
        where = ", ".join(i.get("expression", []) or i.get("location", []))
        text = i.get("diagnostics") or i.get("details", {}).get("text", "")
        parts.append(f"{i.get('severity')}: {text}{' at ' + where if where else ''}")
    rest = len(issues) - len(shown)
    if rest:
        parts.append(f"and {rest} more issue(s){' (warnings and information)' if serious and len(serious) <= limit else ''}")
    return "; ".join(parts) or "empty OperationOutcome"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def mask_secrets(text: str, secrets: list[str]) -> str:
    """The text with every credential replaced (a server may echo the request's headers, issue 10.12)."""
    for s in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(s, "[credential]")
    return text


def _tls_failure(exc: BaseException) -> bool:
    """A TLS certificate that is not trusted (not a network error: retrying cannot help)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class FhirClient:
    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        verify: bool | str = True,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`timeout`: the most one request may take, from sending to the last byte of the answer
        (a server that trickles its answer is cut off there); `connect_timeout`: for the connection."""
        self.retry = retry
        self.sleep = sleep
        self.clock = clock
        self.timeout = timeout
        self.auth = auth
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            auth=auth,
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            transport=transport,
            headers={"Accept": FHIR_JSON, "User-Agent": "sr2fhir"},
        )

    def _secrets(self) -> list[str]:
        get = getattr(self.auth, "secrets", None)
        return list(get()) if callable(get) else []

    def _where(self, url: str) -> str:
        """The request's URL without its query (a search names a Patient ID there)."""
        return str(self.http.base_url.join(url).copy_with(query=None))

    def _send(self, method: str, url: str, **kw: Any) -> tuple[httpx.Response, bytes]:
        """One request, read to its end within the overall deadline (issue 10.2)."""
        deadline = self.clock() + self.timeout
        with self.http.stream(method, url, **kw) as response:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if self.clock() > deadline:
                    raise httpx.ReadTimeout(f"no complete answer within {self.timeout:g} s")
            return response, b"".join(chunks)

    def absolute(self, relative: str) -> str:
        """The absolute URL of a server resource (`Type/id`)."""
        return str(self.http.base_url.join(relative))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "FhirClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, url: str, *, landed: Callable[[], bool] | None = None, **kw: Any) -> Any:
        """Send with retries; return the JSON body; raise DeliveryError when it cannot succeed.

        `landed`, for a request that is not idempotent in time (a large transaction): after an
        answer that did not come in time, and before sending again, whether the server has in
        fact done what was asked; if it has, the request is not sent again and LANDED is returned.
        """
        try:
            return self._request(method, url, landed=landed, **kw)
        except DeliveryError as exc:
            raise DeliveryError(mask_secrets(str(exc), self._secrets()), status=exc.status, retryable=exc.retryable, stop=exc.stop, retry_after=exc.retry_after) from None

    def _request(self, method: str, url: str, *, landed: Callable[[], bool] | None = None, **kw: Any) -> Any:
        where = f"{method} {self._where(url)}"
        last = ""
        for attempt in range(1, self.retry.attempts + 1):
            retry_after = None
            answer_lost = False
            try:
                response, content = self._send(method, url, **kw)
            except httpx.TransportError as exc:
                if _tls_failure(exc):
                    raise DeliveryError(f"{where}: the server's TLS certificate is not trusted (give its CA with --ca-bundle)", stop=True) from None
                kind = "no answer in time" if isinstance(exc, httpx.TimeoutException) else "network error"
                last = f"{kind} ({type(exc).__name__}{': ' + str(exc) if isinstance(exc, httpx.ReadTimeout) and str(exc).startswith('no complete') else ''})"
                # The request was sent whole: the server may be working on it, or have done it.
                answer_lost = isinstance(exc, httpx.ReadTimeout)
            except httpx.HTTPError as exc:  # a body that cannot be decoded (bad gzip), too many redirects ...
                raise DeliveryError(f"{where}: the answer could not be read ({type(exc).__name__}); the server may have committed the request") from None
            else:
                if response.status_code < 300:
                    try:
                        return json.loads(content, parse_float=Decimal) if content else None
                    except ValueError:
                        raise DeliveryError(
                            f"{where}: HTTP {response.status_code} with a body that is not JSON ({len(content)} bytes); the server may have committed the request",
                            status=response.status_code,
                        ) from None
                try:
                    body = json.loads(content, parse_float=Decimal) if content else None
                except ValueError:
                    body = None
                detail = outcome_text(body) or response.reason_phrase
                last = f"HTTP {response.status_code}: {detail}"
                if response.status_code in STOP_STATUSES:
                    raise DeliveryError(f"{where}: {last} (the server refuses the credentials)", status=response.status_code, stop=True)
                if response.status_code not in RETRY_STATUSES:
                    raise DeliveryError(f"{where}: {last}", status=response.status_code)
                retry_after = _retry_after(response)
            check = landed is not None and answer_lost
            if attempt < self.retry.attempts or check:
                self.sleep(self.retry.delay(attempt, retry_after))
            if check and self._landed(landed):
                return LANDED
        tries = f"{self.retry.attempts} attempt{'s' if self.retry.attempts != 1 else ''}"
        raise DeliveryError(f"{where}: gave up after {tries}: {last}", retryable=True, retry_after=retry_after)

    @staticmethod
    def _landed(landed: Callable[[], bool] | None) -> bool:
        try:
            return landed is not None and landed()
        except DeliveryError:
            return False  # not known: send again (every entry is conditional)

    def transaction(self, bundle: dict[str, Any], body: str | None = None, landed: Callable[[], bool] | None = None) -> dict[str, Any]:
        """POST a transaction; `landed` as in `request` (then the answer is LANDED, with no entries)."""
        content = body if body is not None else dumps(bundle)
        response = self.request("POST", "", content=content.encode("utf-8"), headers={"Content-Type": FHIR_JSON}, landed=landed)
        if not (isinstance(response, dict) and response.get("resourceType") == "Bundle"):
            got = response.get("resourceType", "an object without resourceType") if isinstance(response, dict) else type(response).__name__
            raise DeliveryError(f"POST {self._where('')}: the transaction's answer is {got}, not a Bundle; the server may have committed the transaction")
        return response

    def search(self, resource_type: str, *, max_pages: int = 1000, **params: str) -> list[dict[str, Any]]:
        """Every resource matching the search, following the Bundle's next links."""
        found: list[dict[str, Any]] = []
        page = self.request("GET", resource_type, params=params, headers=NO_CACHE)
        for _ in range(max_pages):
            found += [e["resource"] for e in (page or {}).get("entry", []) if "resource" in e]
            nxt = next((link["url"] for link in (page or {}).get("link", []) if link.get("relation") == "next"), None)
            if not nxt:
                return found
            page = self.request("GET", nxt, headers=NO_CACHE)
        raise DeliveryError(f"search {resource_type}: more than {max_pages} pages")

    def answers(self) -> bool:
        """The server's CapabilityStatement answers (with anything below 500), once, without retries: it is up."""
        try:
            return self.http.get("metadata", timeout=min(self.timeout, 10.0)).status_code < 500
        except httpx.HTTPError:
            return False

    def server_fhir_version(self) -> str | None:
        """The server's CapabilityStatement.fhirVersion (once, without retries); None when unknown."""
        try:
            answer = self.http.get("metadata", timeout=min(self.timeout, 10.0))
            version = answer.json().get("fhirVersion") if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return version if isinstance(version, str) else None

    def count(self, resource_type: str, **params: str) -> int:
        """How many resources match (`_summary=count`)."""
        result = self.request("GET", resource_type, params={**params, "_summary": "count"}, headers=NO_CACHE)
        return int((result or {}).get("total", 0))


def version_mismatch(server_version: str | None, fhir_version: str) -> str | None:
    """Why output of `fhir_version` (R5 or R4) does not suit a server of `server_version`, or None
    (also when the server did not say). R4 output suits 4.x servers (R4B takes it too)."""
    if not server_version:
        return None
    major = server_version.split(".", 1)[0]
    if major == fhir_version[1:]:
        return None
    suggestion = {"4": " (give --fhir-version R4)", "5": " (give --fhir-version R5)"}.get(major, "")
    return f"the FHIR server is FHIR {server_version} (CapabilityStatement.fhirVersion), the output is {fhir_version}{suggestion}"
