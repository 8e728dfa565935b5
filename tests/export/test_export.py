"""`sr2fhir export` end to end, both engines (issue 15).

What is expected comes from the inputs: the NDJSON holds the collection Bundles' resources
(shared ones once), a bad input is a `failures` row and an OperationOutcome, the same SR given
twice counts once, and `--engine spark` writes what `--engine local` writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from sr2fhir import Options
from sr2fhir.batch import convert_path
from sr2fhir.cli import app
from sr2fhir.export.tables import TABLES
from tests.helpers import FIXTURES, IG_EXAMPLE, SHARED, shared_files

runner = CliRunner()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The corpus, the fixtures, the IG example, a report given twice, a dose SR and a truncated SR."""
    d = tmp_path_factory.mktemp("inputs")
    truncated = d / "truncated.dcm"
    data = (FIXTURES / "tid1411_volumetric.dcm").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    again = d / "again.dcm"
    shutil.copy(FIXTURES / "tid1410_planar_regions.dcm", again)
    dose = sorted((SHARED / "data" / "non-tid1500").glob("openrem__CT*.dcm"))[0]
    return [IG_EXAMPLE, *sorted(FIXTURES.glob("*.dcm")), *shared_files("tid1500"), again, dose, truncated]


def export(inputs: list[Path], out: Path, *args: str) -> Any:
    return runner.invoke(app, ["export", *map(str, inputs), "-o", str(out), *args])


@pytest.fixture(scope="module")
def local(inputs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local")
    result = export(inputs, out, "-j", "2", "-q")
    assert result.exit_code == 1, result.output  # two inputs failed; the export completed
    return out


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def assert_same_export(a: Path, b: Path) -> None:
    """The same NDJSON bytes, the same table rows in the same order, the same manifest (its time and
    command line aside)."""
    for f in sorted(a.glob("*.ndjson")):
        assert f.read_bytes() == (b / f.name).read_bytes(), f.name
    for t in TABLES:
        assert ds.dataset(a / t).to_table().to_pylist() == ds.dataset(b / t).to_table().to_pylist(), t
        # One naming whatever the engine (issue 27.6): part-00000.parquet, part-00001.parquet ...
        for d in (a, b):
            names = sorted(p.name for p in (d / t).iterdir())
            assert names == [f"part-{n:05d}.parquet" for n in range(len(names))], (d, t, names)
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert {k: v for k, v in ma.items() if k not in ("transactionTime", "request")} == {k: v for k, v in mb.items() if k not in ("transactionTime", "request")}


def test_ndjson_is_the_collection_bundles_resources_once(local: Path, inputs: list[Path]) -> None:
    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for p in inputs[:-3]:  # the report given twice, the dose SR and the truncated file aside
        r = convert_path(str(p), Options(conditional_references=False))
        bundle_resources = {e.resource["id"]: e.resource for c in r.conversions for e in c.resources}
        urls = {f"urn:uuid:{rid}": f"{res['resourceType']}/{rid}" for rid, res in bundle_resources.items()}
        for rid, res in bundle_resources.items():
            expected.setdefault((res["resourceType"], rid), relative(json.loads(json.dumps(res, default=str)), urls))
    manifest = json.loads((local / "manifest.json").read_text())
    got: dict[tuple[str, str], dict[str, Any]] = {}
    for o in manifest["output"]:
        rows = lines(local / o["url"])
        assert len(rows) == o["count"] and {r["resourceType"] for r in rows} == {o["type"]}
        for r in rows:
            assert (r["resourceType"], r["id"]) not in got, "written twice"
            got[(r["resourceType"], r["id"])] = r
    assert got.keys() == expected.keys()
    for key, res in got.items():
        assert _same_numbers(res, expected[key]), key


def relative(node: Any, urls: dict[str, str]) -> Any:
    """References to the report's own resources as Type/id, as Bulk NDJSON writes them."""
    if isinstance(node, dict):
        return {k: (urls.get(v, v) if k == "reference" and isinstance(v, str) else relative(v, urls)) for k, v in node.items()}
    if isinstance(node, list):
        return [relative(x, urls) for x in node]
    return node


def _same_numbers(a: Any, b: Any) -> bool:
    """Equal, reading Decimals (str in `expected`) as the numbers JSON wrote."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_numbers(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_numbers(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, str):
        return float(b) == a
    return bool(a == b)


def test_failures_are_rows_and_outcomes_not_a_failed_job(local: Path, inputs: list[Path]) -> None:
    failures = ds.dataset(local / "failures").to_table().to_pylist()
    assert sorted(Path(f["source"]).name for f in failures) == sorted([inputs[-2].name, "truncated.dcm"])
    assert all(f["reason"] and f["code"] for f in failures)
    manifest = json.loads((local / "manifest.json").read_text())
    assert manifest["error"] == [{"type": "OperationOutcome", "url": "OperationOutcome.ndjson", "count": 2}]
    assert all(o["resourceType"] == "OperationOutcome" for o in lines(local / "OperationOutcome.ndjson"))
    assert manifest["extension"]["urn:sr2fhir:duplicate-reports"] == 1
    # The report given twice is in the tables once.
    groups = ds.dataset(local / "measurement_groups").to_table().to_pylist()
    assert len({(g["sop_instance_uid"], g["fhir_id"]) for g in groups}) == len(groups)
    for t in manifest["extension"]["urn:sr2fhir:tables"]:
        assert ds.dataset(local / t["table"]).count_rows() == t["rows"]


def test_a_rerun_gives_the_same_output(local: Path, inputs: list[Path], tmp_path: Path) -> None:
    again = tmp_path / "again"
    shutil.copytree(local, again)
    (again / "stale.ndjson").write_text("{}\n")  # an earlier export's type that is gone now
    assert export(inputs, again, "-q").exit_code == 1  # -j 1 this time
    assert not (again / "stale.ndjson").exists() and not (again / ".staging").exists()
    assert_same_export(local, again)


@pytest.mark.spark
def test_spark_writes_what_local_writes(local: Path, inputs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "spark"
    result = export(inputs, out, "--engine", "spark", "-j", "2", "-q")
    assert result.exit_code == 1, result.output[-3000:]
    assert_same_export(local, out)


def test_r4_ndjson_and_formats(tmp_path: Path) -> None:
    out = tmp_path / "r4"
    result = export([FIXTURES / "tid1410_planar_regions.dcm"], out, "--format", "ndjson", "--fhir-version", "R4")
    assert result.exit_code == 0, result.output
    assert (out / "Basic.ndjson").exists() and not (out / "ImagingSelection.ndjson").exists()
    assert not any((out / t).exists() for t in TABLES)
    assert export([FIXTURES / "tid1410_planar_regions.dcm"], out, "--format", "csv").exit_code == 2


@pytest.mark.spark
def test_the_same_command_runs_under_spark_submit(tmp_path: Path) -> None:
    """spark-submit gives the master (local[2] here, a cluster's URL in production)."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    out = tmp_path / "submitted"
    submit = Path(sys.executable).parent / "spark-submit"
    r = subprocess.run([str(submit), "--master", "local[2]", str(ROOT / "scripts" / "spark_export.py"), "export",
                        str(FIXTURES / "tid1410_planar_regions.dcm"), "-o", str(out), "--engine", "spark", "-q"],
                       capture_output=True, text=True, timeout=600, env={**__import__("os").environ, "PYSPARK_PYTHON": sys.executable})
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    made = convert_path(str(FIXTURES / "tid1410_planar_regions.dcm")).conversions[0].resources.resources()
    assert {o["type"]: o["count"] for o in manifest["output"]}["Observation"] == sum(r["resourceType"] == "Observation" for r in made)


@pytest.mark.unshare
def test_a_full_disk_is_said_plainly_and_leaves_no_manifest(tmp_path: Path) -> None:
    """A 1 MiB tmpfs (a private mount namespace) cannot hold the 1,561-feature report's export."""
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    big = SHARED / "data" / "tid1500" / "tid1500-fhir__rsna2018-ds3__pyradiomics-1561-features.dcm"
    assert shutil.which("unshare"), "util-linux unshare is needed for the full-disk test"
    cmd = f'mount -t tmpfs -o size=1m tmpfs "{out}" && "{sys.executable}" -m sr2fhir export "{big}" -o "{out}" -q; echo "exit=$?"; ls -A "{out}"'
    r = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "could not be written (No space left on device)" in r.stderr, r.stderr[-2000:]
    assert "exit=1" in r.stdout and "manifest.json" not in r.stdout.split("exit=1", 1)[1], r.stdout


def test_an_exports_ndjson_files_validate_as_one_set(local: Path) -> None:
    """Issue 27.6: `validate export/*.ndjson` reported thousands of unresolved references, because
    the files of one export reference each other; the folder itself is taken too."""
    files = sorted(local.glob("*.ndjson"))
    by_files = runner.invoke(app, ["validate", *map(str, files)])
    by_folder = runner.invoke(app, ["validate", str(local)])
    for r in (by_files, by_folder):
        assert "unresolved-reference" not in r.stdout and "[orphan]" not in r.stdout and "orphan" not in r.stdout, r.stdout[-3000:]
        assert sum(1 for line in r.stdout.splitlines() if " resource(s): " in line) == len(files)
    assert by_files.stdout == by_folder.stdout
    # Each file alone still misses what the others hold: the check is not simply off.
    alone = runner.invoke(app, ["validate", str(local / "Observation.ndjson")])
    assert "unresolved-reference" in alone.stdout
