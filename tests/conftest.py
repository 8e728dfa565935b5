"""pytest wiring: parametrisation over ../shared/data and session fixtures (helpers: tests/helpers.py).

`fhir_url`: a real HAPI FHIR JPA server (R5, IG request validation) for the delivery and gateway
integration tests, started by scripts/hapi-server.sh on a free loopback port with an in-memory
database, once per test run, and stopped afterwards. It starts in the background as soon as the
tests are collected; the modules that need it run last, so that its start-up overlaps the rest.
SR2FHIR_TEST_FHIR_URL points the tests at a server that is already running instead: it must
validate requests against the IG, like ours.
`fhir_r4_url`: the same in R4 mode (SR2FHIR_TEST_FHIR_R4_URL), for `--fhir-version R4`.

Test tiers (tests/services.py): a test marked with a service (`hapi`, `orthanc`, `chromium`,
`spark`, `java`, `dcmtk`, `openssl`, `rsyslog`, `unshare`, `npm`), or using a fixture that starts
one, is skipped with its reason when the service is missing, and fails instead when
SR2FHIR_REQUIRE_SERVICES is set (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from sr2fhir.delivery.client import FhirClient, RetryPolicy
from tests import services

pytest_plugins = ["pytester"]
from tests.helpers import FIXTURES, IG_EXAMPLE, IG_RESOURCES, ROOT, SHARED, Converted, convert_one, free_port


def pytest_configure(config: pytest.Config) -> None:
    for marker, (need, _) in services.SERVICES.items():
        config.addinivalue_line("markers", f"{marker}: needs {need}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for it in items:
        for fixture, marker in services.FIXTURES.items():
            if fixture in getattr(it, "fixturenames", ()):
                it.add_marker(marker)
    # The modules with a test that needs a HAPI server run last, whole and in their order, so that
    # the servers start while the others run (pytest_collection_finish).
    late = {it.module for it in items if _needs_hapi(it) and getattr(it, "module", None) is not None}
    items[:] = [it for it in items if getattr(it, "module", None) not in late] + [it for it in items if getattr(it, "module", None) in late]


def pytest_runtest_setup(item: pytest.Item) -> None:
    verdict = services.decide([m.name for m in item.iter_markers()], bool(os.environ.get(services.REQUIRE)))
    if verdict is not None:
        (pytest.fail if verdict[0] == "fail" else pytest.skip)(verdict[1])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise `tid1500_file` / `variant_file` / `non_tid1500_file` over ../shared/data."""
    for arg, folder in (("tid1500_file", "tid1500"), ("variant_file", "tid1500-variants"), ("non_tid1500_file", "non-tid1500")):
        if arg in metafunc.fixturenames:
            d = SHARED / "data" / folder
            files = sorted(d.glob("*.dcm")) if d.is_dir() else [d / "MISSING"]
            metafunc.parametrize(arg, files, ids=[f.name for f in files])


@pytest.fixture(scope="session")
def worked_example() -> Converted:
    if not IG_EXAMPLE.exists():
        pytest.fail(f"IG worked example missing: {IG_EXAMPLE}")
    return convert_one(IG_EXAMPLE)


@pytest.fixture(scope="session")
def ig_examples() -> dict[str, dict[str, Any]]:
    """The IG's compiled Example-* instances by id."""
    if not IG_RESOURCES.is_dir():
        pytest.fail(f"IG package missing: {IG_RESOURCES}")
    out = {}
    for f in IG_RESOURCES.glob("*.json"):
        r = json.loads(f.read_text())
        if r.get("resourceType") not in ("StructureDefinition", "CodeSystem", "ConceptMap", "ImplementationGuide"):
            out[r["id"]] = r
    return out


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    return json.loads((FIXTURES / "manifest.json").read_text())


@pytest.fixture(scope="session")
def fixture_conversions() -> dict[str, Converted]:
    return {p.stem: convert_one(p) for p in sorted(FIXTURES.glob("*.dcm"))}


HAPI = {"R5": ("fhir_url", "SR2FHIR_TEST_FHIR_URL"), "R4": ("fhir_r4_url", "SR2FHIR_TEST_FHIR_R4_URL")}
"""The HAPI servers the tests may need: version -> (fixture, environment variable naming a running one)."""


@dataclass
class _HapiStart:
    """A HAPI server being started in the background (scripts/hapi-server.sh start)."""

    version: str
    folder: Path
    port: int = field(default_factory=free_port)
    done: threading.Event = field(default_factory=threading.Event)
    result: "subprocess.CompletedProcess[str] | None" = None

    def run(self) -> None:
        env = {**os.environ, "SR2FHIR_HAPI_DIR": str(self.folder)}
        env.pop("SR2FHIR_HAPI_DB", None)  # in memory: every run starts empty
        try:
            self.result = subprocess.run([str(ROOT / "scripts" / "hapi-server.sh"), "start", str(self.port), "--fhir-version", self.version],
                                         env=env, capture_output=True, text=True, timeout=1200)
        finally:
            self.done.set()

    def stop(self) -> None:
        env = {**os.environ, "SR2FHIR_HAPI_DIR": str(self.folder)}
        subprocess.run([str(ROOT / "scripts" / "hapi-server.sh"), "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(self.folder, ignore_errors=True)


_STARTS: dict[str, _HapiStart] = {}


def _needs_hapi(item: pytest.Item) -> bool:
    return any(fixture in getattr(item, "fixturenames", ()) for fixture, _ in HAPI.values())


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the HAPI servers the selected tests need at once, one after the other in a thread
    (each start may build with Maven), while the tests that need none run: those come first
    (pytest_collection_modifyitems), so that the servers' minutes of start-up overlap them."""
    if any(shutil.which(tool) is None for tool in ("java", "mvn")):
        return  # the fixture says why
    wanted = [v for v, (fixture, env) in HAPI.items()
              if not os.environ.get(env) and any(fixture in getattr(i, "fixturenames", ()) for i in session.items)]
    for v in wanted:
        _STARTS[v] = _HapiStart(v, Path(tempfile.mkdtemp(prefix=f"sr2fhir-hapi-{v}-")))
    if wanted:
        threading.Thread(target=lambda: [s.run() for s in [_STARTS[v] for v in wanted]], daemon=True, name="hapi-start").start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    for s in _STARTS.values():
        s.done.wait(1300)
        s.stop()


def _hapi(version: str, given: str | None) -> Iterator[str]:
    """A HAPI FHIR server of `version` for the session (or the one `given` names)."""
    if given:
        yield given
        return
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"the delivery tests start a HAPI FHIR server and need Java 17 and Maven ({', '.join(missing)} not found): "
            "on Debian `apt-get install openjdk-17-jdk-headless maven`; or set SR2FHIR_TEST_FHIR_URL (R5, validating against "
            "the IG) and SR2FHIR_TEST_FHIR_R4_URL (R4) to empty servers"
        )
    start = _STARTS.get(version)
    if start is None:  # not foreseen at collection (a test asked for it dynamically): start it now
        start = _STARTS[version] = _HapiStart(version, Path(tempfile.mkdtemp(prefix=f"sr2fhir-hapi-{version}-")))
        start.run()
    start.done.wait(1300)
    r = start.result
    if r is None or r.returncode != 0:
        pytest.fail(f"the HAPI FHIR {version} server did not start:\n{(r.stdout if r else '')[-2000:]}\n{(r.stderr if r else 'timed out')[-3000:]}")
    yield f"http://127.0.0.1:{start.port}/fhir"


@pytest.fixture(scope="session")
def fhir_url() -> Iterator[str]:
    yield from _hapi("R5", os.environ.get("SR2FHIR_TEST_FHIR_URL"))


@pytest.fixture(scope="session")
def fhir_r4_url() -> Iterator[str]:
    """An R4 HAPI server (R4 core request validation) for the --fhir-version R4 tests (issue 14)."""
    yield from _hapi("R4", os.environ.get("SR2FHIR_TEST_FHIR_R4_URL"))


@pytest.fixture()
def fhir(fhir_url: str) -> Iterator[FhirClient]:
    with FhirClient(fhir_url, retry=RetryPolicy(attempts=3, base_delay=0.2)) as client:
        yield client
