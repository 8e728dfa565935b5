"""A small FHIR REST client for delivery: transactions and searches, with retries.

Retries with exponential backoff (and Retry-After) on network errors, 429 and 5xx; never on
other 4xx, whose OperationOutcome is turned into a readable message. Posting the same
transaction again is safe: every entry is a conditional create (D-21).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable

import httpx

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class DeliveryError(Exception):
    """A request the server refused or that could not be completed; the message is safe to show."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return min(self.base_delay * 2 ** (attempt - 1), self.max_delay) * random.uniform(0.8, 1.2)


class BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class BasicAuthFromEnv(httpx.BasicAuth):
    """HTTP basic auth; the password from SR2FHIR_PASSWORD (never on the command line)."""

    def __init__(self, user: str, env: str = "SR2FHIR_PASSWORD") -> None:
        password = os.environ.get(env)
        if password is None:
            raise DeliveryError(f"--basic-user needs the password in the environment variable {env}")
        super().__init__(user, password)


def bearer_from(env: str | None = None, file: str | None = None) -> BearerAuth:
    """A bearer token from an environment variable or a file (never from the command line)."""
    token = os.environ.get(env, "") if env else Path(file).read_text(encoding="utf-8") if file else ""
    token = token.strip()
    if not token:
        raise DeliveryError(f"no bearer token in {'environment variable ' + env if env else 'file ' + str(file)}")
    return BearerAuth(token)


def outcome_text(body: Any) -> str:
    """The issues of an OperationOutcome as one readable line."""
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        parts = []
        for i in body.get("issue", []):
            where = ", ".join(i.get("expression", []) or i.get("location", []))
            text = i.get("diagnostics") or i.get("details", {}).get("text", "")
            parts.append(f"{i.get('severity')}: {text}{' at ' + where if where else ''}")
        return "; ".join(parts) or "empty OperationOutcome"
    return ""


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


class FhirClient:
    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        verify: bool | str = True,
        timeout: float = 120.0,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retry = retry
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            auth=auth,
            verify=verify,
            timeout=timeout,
            transport=transport,
            headers={"Accept": FHIR_JSON, "User-Agent": "sr2fhir"},
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "FhirClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, url: str, **kw: Any) -> Any:
        """Send with retries; return the JSON body; raise DeliveryError when it cannot succeed."""
        last = ""
        for attempt in range(1, self.retry.attempts + 1):
            retry_after = None
            try:
                response = self.http.request(method, url, **kw)
            except httpx.TransportError as exc:
                last = f"network error ({type(exc).__name__})"
            else:
                if response.status_code < 300:
                    return response.json() if response.content else None
                try:
                    body = response.json()
                except ValueError:
                    body = None
                detail = outcome_text(body) or response.reason_phrase
                last = f"HTTP {response.status_code}: {detail}"
                if response.status_code not in RETRY_STATUSES:
                    raise DeliveryError(f"{method} {url}: {last}", status=response.status_code)
                retry_after = _retry_after(response)
            if attempt < self.retry.attempts:
                self.sleep(self.retry.delay(attempt, retry_after))
        raise DeliveryError(f"{method} {url}: gave up after {self.retry.attempts} attempts: {last}", retryable=True)

    def transaction(self, bundle: dict[str, Any], body: str | None = None) -> dict[str, Any]:
        content = body if body is not None else __import__("json").dumps(bundle)
        return self.request("POST", "", content=content.encode("utf-8"), headers={"Content-Type": FHIR_JSON})

    def search(self, resource_type: str, **params: str) -> list[dict[str, Any]]:
        result = self.request("GET", resource_type, params=params)
        return [e["resource"] for e in (result or {}).get("entry", []) if "resource" in e]
