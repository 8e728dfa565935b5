"""pytest wiring: parametrisation over ../shared/data and session fixtures (helpers: tests/helpers.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import FIXTURES, IG_EXAMPLE, IG_RESOURCES, SHARED, Converted, convert_one


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
