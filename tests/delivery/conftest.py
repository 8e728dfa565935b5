"""A real HAPI FHIR JPA server (R5, IG request validation) for the delivery integration tests.

Started by scripts/hapi-server.sh on a free loopback port, with an in-memory database, once per
test run, and stopped afterwards. SR2FHIR_TEST_FHIR_URL points the tests at a server that is
already running instead: it must be empty and validate requests against the IG, like ours.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from typing import Iterator

import pytest

from sr2fhir.delivery.client import FhirClient, RetryPolicy
from tests.helpers import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def fhir_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("SR2FHIR_TEST_FHIR_URL")
    if given:
        yield given
        return
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"the delivery tests start a HAPI FHIR server and need Java 17 and Maven ({', '.join(missing)} not found): "
            "on Debian `apt-get install openjdk-17-jdk-headless maven`; or set SR2FHIR_TEST_FHIR_URL to an empty FHIR R5 server "
            "that validates requests against the IG"
        )
    env = {**os.environ, "SR2FHIR_HAPI_DIR": str(tmp_path_factory.mktemp("hapi"))}
    env.pop("SR2FHIR_HAPI_DB", None)  # in memory: every run starts empty
    script = str(ROOT / "scripts" / "hapi-server.sh")
    port = _free_port()
    started = subprocess.run([script, "start", str(port)], env=env, capture_output=True, text=True, timeout=1200)
    try:
        if started.returncode != 0:
            pytest.fail(f"the HAPI FHIR server did not start:\n{started.stdout[-2000:]}\n{started.stderr[-3000:]}")
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120)


@pytest.fixture()
def fhir(fhir_url: str) -> Iterator[FhirClient]:
    with FhirClient(fhir_url, retry=RetryPolicy(attempts=3, base_delay=0.2)) as client:
        yield client
