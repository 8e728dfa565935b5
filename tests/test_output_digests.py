"""The output of every tested input is byte-identical to the stored digests (issue 13).

A refactoring must not change what sr2fhir writes. A deliberate mapping change updates the
digests with scripts/output_digests.py, in the same commit, which says what changed and why.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.helpers import FIXTURES, ROOT

spec = importlib.util.spec_from_file_location("output_digests", ROOT / "scripts" / "output_digests.py")
assert spec and spec.loader
digests_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(digests_script)
STORED = json.loads((FIXTURES / "output-digests.json").read_text())


def test_every_input_has_a_stored_digest() -> None:
    assert set(digests_script.inputs()) == set(STORED)


@pytest.mark.parametrize("name", sorted(STORED))
def test_output_is_unchanged(name: str) -> None:
    assert digests_script.digests(digests_script.inputs()[name]) == STORED[name], f"{name}: the output changed"
