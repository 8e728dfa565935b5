"""Random but valid TID 1500 reports written with highdicom's public API (tests/generated_reports.py):
every item the generator wrote is found, unchanged, in the R5 Bundle, the R4 output and the
export's Parquet rows (issue 25). A seeded few hundred here; scripts/generated_campaign.py runs more."""

from __future__ import annotations

import copy
import io
import os
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sr2fhir
from sr2fhir.export.tables import SCHEMAS, rows
from tests.generated_reports import Record, compare, compare_r4, compare_rows, write

SEEDS = range(int(os.environ.get("SR2FHIR_GENERATED_SEEDS", "200")))
"""200 in the test run; scripts/mutation.sh runs fewer, once per mutant."""


def through_parquet(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The rows written to Parquet with the export's schemas and read back."""
    out = {}
    for name in ("measurements", "regions"):
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(tables[name], schema=SCHEMAS[name]), buf)
        out[name] = pq.read_table(io.BytesIO(buf.getvalue())).to_pylist()
    return out


def converted(path: Path) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    (doc,) = list(sr2fhir.read(str(path)))
    r5 = sr2fhir.convert(doc).resources.resources()
    r4 = sr2fhir.convert(doc, fhir_version="R4").resources.resources()
    return doc, r5, r4


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, Record, Any, list[dict[str, Any]], list[dict[str, Any]]]]:
    folder = tmp_path_factory.mktemp("generated")
    out = []
    for seed in SEEDS:
        record = write(folder / f"{seed}.dcm", random.Random(seed))
        out.append((seed, record, *converted(folder / f"{seed}.dcm")))
    return out


def test_every_generated_item_is_in_the_bundle(campaign: list[Any]) -> None:
    failures = {seed: diffs[:3] for seed, record, _, r5, _ in campaign if (diffs := compare(record, r5))}
    assert not failures, failures
    # The campaign covers what it claims to.
    groups = [g for _, record, *_ in campaign for g in record.groups]
    measured = [m for g in groups for m in g.measurements]
    assert {g.region.dims for g in groups if g.region} == {0, 2, 3} and any(g.region is None for g in groups)
    assert len(measured) > 2.5 * len(SEEDS) and any(m.derivation for m in measured) and any(m.tracking for m in measured)
    assert any(len(m.sites) == 2 for m in measured) and any(len(g.sites) == 2 for g in groups)
    assert any("E" in m.value_text.upper() for m in measured) and any("E" not in m.value_text.upper() for m in measured)


def test_the_r4_output_says_the_same(campaign: list[Any]) -> None:
    failures = {seed: diffs[:3] for seed, _, _, r5, r4 in campaign if (diffs := compare_r4(r5, r4))}
    assert not failures, failures


def test_the_parquet_rows_say_the_same(campaign: list[Any]) -> None:
    failures = {seed: diffs[:3] for seed, record, doc, r5, _ in campaign if (diffs := compare_rows(record, through_parquet(rows(doc, r5))))}
    assert not failures, failures


def test_the_comparison_catches_wrong_output(campaign: list[Any]) -> None:
    """Each kind of wrong output the issue lists, planted in a correct conversion, is caught."""
    seed, record, doc, r5, r4 = next(c for c in campaign if any(g.sites for g in c[1].groups) and any(g.measurements for g in c[1].groups)
                                     and any(g.region and g.region.dims == 3 for g in c[1].groups))

    def planted(change: Any) -> list[str]:
        bad = copy.deepcopy(r5)
        change(bad)
        return compare(record, bad)

    def first(bad: list[dict[str, Any]], pred: Any) -> dict[str, Any]:
        return next(r for r in bad if pred(r))

    measurement = lambda r: r["resourceType"] == "Observation" and "valueQuantity" in r  # noqa: E731
    assert planted(lambda b: first(b, measurement)["valueQuantity"].update(value="1.5E+31"))
    assert planted(lambda b: first(b, measurement)["valueQuantity"].update(code="cm"))
    assert planted(lambda b: first(b, lambda r: r["resourceType"] == "BodyStructure")["includedStructure"].pop())
    assert planted(lambda b: first(b, lambda r: r["resourceType"] == "ImagingSelection" and "extension" in r)["extension"][0]["extension"].pop())
    assert planted(lambda b: b.remove(first(b, measurement)))
    bad_r4 = copy.deepcopy(r4)
    first(bad_r4, measurement)["valueQuantity"]["value"] = "0"
    assert compare_r4(r5, bad_r4)
    tables = through_parquet(rows(doc, r5))
    tables["measurements"][0]["value_exact"] = "1"
    assert compare_rows(record, tables)
