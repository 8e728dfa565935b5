"""Test tiers: what each service marker needs, and what a test does without it (issue 26).

After a plain `pip install -e .[test]`, `pytest` runs every pure test and skips each test that
needs a service with one clear reason. With SR2FHIR_REQUIRE_SERVICES=1 (CI, and the README's
test command after `scripts/setup.sh`), a missing service fails the test instead: nothing is
skipped where it matters."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess

REQUIRE = "SR2FHIR_REQUIRE_SERVICES"
SETUP = "scripts/setup.sh installs it"


def _tools(*names: str) -> str | None:
    """None if every tool is on PATH (or in /usr/sbin), else what is missing."""
    missing = [n for n in names if shutil.which(n) is None and shutil.which(n, path="/usr/sbin") is None]
    return ", ".join(missing) + " not found" if missing else None


def _hapi() -> str | None:
    if os.environ.get("SR2FHIR_TEST_FHIR_URL") and os.environ.get("SR2FHIR_TEST_FHIR_R4_URL"):
        return None
    return _tools("java", "mvn")


def _spark() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark not installed (pip install -e .[spark])"
    return _tools("java")


def _unshare() -> str | None:
    """The full-disk tests mount a small tmpfs in a user and mount namespace of their own."""
    if _tools("unshare"):
        return _tools("unshare")
    r = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
    return None if r.returncode == 0 else "this machine does not allow user namespaces (unshare -rm)"


SERVICES: dict[str, tuple[str, object]] = {
    "hapi": ("a HAPI FHIR server, built and started by scripts/hapi-server.sh: Java 17 and Maven "
             f"({SETUP}), or SR2FHIR_TEST_FHIR_URL and SR2FHIR_TEST_FHIR_R4_URL naming empty servers", _hapi),
    "java": (f"Java 17 and Maven ({SETUP})", lambda: _tools("java", "mvn")),
    "orthanc": (f"Orthanc ({SETUP})", lambda: _tools("Orthanc")),
    "chromium": (f"Debian's chromium, headless ({SETUP})", lambda: None if shutil.which("chromium") or shutil.which("chromium-browser") else "chromium not found"),
    "spark": (f"PySpark and Java ({SETUP})", _spark),
    "dcmtk": (f"DCMTK's storescu ({SETUP})", lambda: _tools("storescu")),
    "openssl": (f"the openssl command ({SETUP})", lambda: _tools("openssl")),
    "rsyslog": (f"rsyslogd with TLS (rsyslog, rsyslog-openssl; {SETUP})", lambda: _tools("rsyslogd")),
    "unshare": ("util-linux unshare, with user namespaces allowed", _unshare),
    "npm": (f"npm, to fetch FHIR packages from the npm registry ({SETUP})", lambda: _tools("npm")),
}
"""marker -> (what it needs, a check giving None when present or what is missing)."""

FIXTURES = {"fhir_url": "hapi", "fhir_r4_url": "hapi", "fhir": "hapi", "fhir4": "hapi", "orthanc": "orthanc"}
"""Fixtures that start a service: a test that uses one carries its marker without saying so."""


@functools.cache
def missing(marker: str) -> str | None:
    need, check = SERVICES[marker]
    why = check()  # type: ignore[operator]
    return f"needs {need}: {why}" if why else None


def decide(markers: list[str], require: bool) -> tuple[str, str] | None:
    """("skip" or "fail", reason) for a test with these markers, or None to run it."""
    for m in markers:
        if m in SERVICES and (why := missing(m)):
            return ("fail" if require else "skip", why + (f" ({REQUIRE} is set)" if require else ""))
    return None
