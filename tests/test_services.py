"""Test tiers (tests/services.py): a test that needs a missing service is skipped with its reason,
or fails when SR2FHIR_REQUIRE_SERVICES is set, as CI sets it (issue 26)."""

from __future__ import annotations

import os

import pytest

from tests import services
from tests.helpers import ROOT

TIERED = '''
import pytest

@pytest.mark.npm
def test_needs_npm():
    pass

def test_pure():
    pass
'''


def run(pytester: pytest.Pytester, **env: str) -> pytest.RunResult:
    pytester.makeconftest("from tests.conftest import pytest_configure, pytest_collection_modifyitems, pytest_runtest_setup\n")
    pytester.makepyfile(test_tiered=TIERED)
    # A PATH without npm; the project on sys.path for `tests.conftest`.
    pytester.syspathinsert(ROOT)
    old = {k: os.environ.get(k) for k in ("PATH", services.REQUIRE)}
    os.environ["PATH"] = "/nonexistent"
    os.environ.pop(services.REQUIRE, None)
    os.environ.update(env)
    services.missing.cache_clear()
    try:
        return pytester.runpytest_inprocess("-rs")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        services.missing.cache_clear()


def test_a_missing_service_skips_with_its_reason(pytester: pytest.Pytester) -> None:
    r = run(pytester)
    r.assert_outcomes(passed=1, skipped=1)
    assert "needs npm, to fetch FHIR packages" in r.stdout.str() and "npm not found" in r.stdout.str()


def test_ci_turns_the_skip_into_a_failure(pytester: pytest.Pytester) -> None:
    r = run(pytester, **{services.REQUIRE: "1"})
    r.assert_outcomes(passed=1, errors=1)
    assert f"{services.REQUIRE} is set" in r.stdout.str()


def test_ci_and_the_readme_require_every_service() -> None:
    assert f"{services.REQUIRE}=1" in (ROOT / ".ci" / "run").read_text()
    assert f"{services.REQUIRE}=1" in (ROOT / "README.md").read_text().split("\n## ", 1)[0]


def test_fixtures_that_start_a_service_carry_its_marker() -> None:
    assert set(services.FIXTURES.values()) <= set(services.SERVICES)
