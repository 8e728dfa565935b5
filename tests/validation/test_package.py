"""The IG profiles sr2fhir ships (src/sr2fhir/ig/): generated from the IG, used when nothing else is given."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from sr2fhir.batch import convert_path, render
from sr2fhir.validation.package import SHIPPED, find_package, load_profiles
from sr2fhir.validation.validator import validate_resources
from tests.helpers import IG_EXAMPLE, ROOT, SHARED


def test_shipped_profiles_are_the_generator_output() -> None:
    """The shipped files equal a fresh run of scripts/make_ig_package.py over ../shared/ig-package."""
    spec = importlib.util.spec_from_file_location("make_ig_package", ROOT / "scripts" / "make_ig_package.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    expected = mod.generate(SHARED / "ig-package")
    shipped = {p.name: p.read_text(encoding="utf-8") for p in SHIPPED.glob("*.json")}
    assert shipped == expected
    assert len([n for n in shipped if n.startswith("StructureDefinition-")]) == 22


def test_shipped_profiles_judge_as_the_full_package_does() -> None:
    full, shipped = load_profiles(SHARED / "ig-package"), load_profiles(SHIPPED)
    assert set(full) == set(shipped)
    bundle = json.loads(render(convert_path(str(IG_EXAMPLE)).conversions, "transaction"))
    resources = [e["resource"] for e in bundle["entry"]]
    index = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    broken = json.loads(json.dumps(resources))
    for r in broken:
        r.pop("subject", None)  # subject 1..1 in every Observation profile
    for rs in (resources, broken):
        a = validate_resources(rs, index, profiles=full)
        b = validate_resources(rs, index, profiles=shipped)
        assert [f.text() for f in a.findings] == [f.text() for f in b.findings]
    assert not validate_resources(broken, index, profiles=shipped).ok


def test_validate_works_on_a_fresh_install(tmp_path: Path) -> None:
    """Issue 9.10: no --ig and no FHIR package cache (a new HOME): the shipped profiles are used."""
    out = tmp_path / "o.json"
    env = {**os.environ, "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "sr2fhir", "convert", str(IG_EXAMPLE), "--validate", "-o", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "sr2fhir", "validate", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "0 error(s)" in r.stdout, r.stdout + r.stderr
    assert find_package(None) in (SHIPPED, Path.home() / ".fhir" / "packages" / "hl7.fhir.uv.dicom-sr#1.0.0" / "package")
