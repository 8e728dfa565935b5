"""Known IG defects (known_ig_defects.json): told apart from problems of the input, in every tool.

Issue 9.7: `--strict` refused every SR with an RT Structure Set reference (IG-2) and `--validate`
every report with derived measurements (IG-1), although neither is a problem of the input.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydicom
from typer.testing import CliRunner

from sr2fhir import ig_defects
from sr2fhir.cli import app
from tests.helpers import FIXTURES, ROOT

runner = CliRunner()
DEMO = ROOT / "examples" / "measurement-report.dcm"


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def without_item(src: Path, path: str, dst: Path) -> Path:
    """A copy of `src` without the content item at `path` (so that only the IG defect remains)."""
    ds = pydicom.dcmread(src)
    *parents, last = [int(p) for p in path.split(".")[1:]]
    node = ds
    for p in parents:
        node = node.ContentSequence[p - 1]
    del node.ContentSequence[last - 1]
    ds.save_as(dst)
    return dst


def test_the_list_names_what_each_tool_reports() -> None:
    ids = [d.id for d in ig_defects.defects()]
    assert ids == ["IG-1", "IG-2", "R4-1", "R4-2"]
    assert ig_defects.for_rule("region-in-space-sop-class-typo") == "IG-2" and ig_defects.for_rule("num-without-value") is None
    # The HL7 validator's wording (as the CI check and the HAPI launcher see it) and ours.
    assert ig_defects.for_message("Observation.derivedFrom: derived-imaging-measurement|1.0.0, Element matches more than one slice - imagingMeasurementGroupRef, sourceSRContentItem") == "IG-1"
    # R4 core's outdated DICOM code system, in the HL7 validator's and HAPI's wording (docs/r4.md).
    assert ig_defects.for_message("Unknown code '130401' in the CodeSystem 'http://dicom.nema.org/resources/ontology/DCM' version '01'") == "R4-1"
    assert ig_defects.for_message("Unknown code 'http://dicom.nema.org/resources/ontology/DCM#130401'") == "R4-1"
    assert ig_defects.for_message("Unknown code '130401' in the CodeSystem 'http://snomed.info/sct'") is None
    assert ig_defects.for_message("Wrong Display Name 'Standardized Added Metabolic Activity' for http://dicom.nema.org/resources/ontology/DCM#126037. "
                                  "Valid display is 'Standardized Added Metabolic Activity (SAM)' (for the language(s) 'en')") == "R4-1"
    # Issue 25, item 8: only those four codes. A genuinely wrong display, or another unknown DCM code, is not excused.
    assert ig_defects.for_message("Wrong Display Name 'Standardized Uptake Value body weight' for http://dicom.nema.org/resources/ontology/DCM#126401. Valid display is 'SUVbw'") is None
    assert ig_defects.for_message("Wrong Display Name 'Mean' for http://dicom.nema.org/resources/ontology/DCM#126037. Valid display is 'Standardized Added Metabolic Activity (SAM)'") is None
    assert ig_defects.for_message("Unknown code '999999' in the CodeSystem 'http://dicom.nema.org/resources/ontology/DCM' version '01'") is None
    assert ig_defects.for_message("Unknown code 'http://dicom.nema.org/resources/ontology/DCM#999999'") is None
    # The CI script and the HAPI launcher read this very file.
    assert "known_ig_defects.json" in (ROOT / "scripts" / "official-validator.sh").read_text()
    assert "src/sr2fhir/known_ig_defects.json" in (ROOT / "scripts" / "hapi-server.sh").read_text()


def test_strict_passes_a_report_whose_only_finding_is_an_ig_defect(tmp_path: Path) -> None:
    # tid1501_containers: an RT Structure Set region (IG-2) and a NaN NUM at 1.5.1.12 (a real warning).
    only_defect = without_item(FIXTURES / "tid1501_containers.dcm", "1.5.1.12", tmp_path / "rtss.dcm")
    out = tmp_path / "o.json"
    r = run("convert", "--strict", str(only_defect), "-o", str(out))
    assert r.exit_code == 0 and out.exists(), r.stderr
    assert "[region-in-space-sop-class-typo] (known IG defect IG-2, docs/conformance.md)" in r.stderr
    out.unlink()
    r = run("convert", "--strict", "--fail-on-ig-defects", str(only_defect), "-o", str(out))
    assert r.exit_code == 3 and not out.exists()
    # A real warning still fails --strict.
    assert run("convert", "--strict", str(FIXTURES / "tid1501_containers.dcm"), "-o", str(out)).exit_code == 3


def test_validate_passes_derived_measurements(tmp_path: Path) -> None:
    """The README's own demo report has derived measurements: --validate used to refuse it (exit 4)."""
    out = tmp_path / "demo.json"
    r = run("convert", str(DEMO), "--validate", "-o", str(out))
    assert r.exit_code == 0 and out.exists(), r.stderr
    line = next(l for l in r.stderr.splitlines() if "validate-ambiguous-slice" in l)
    # Located in the output, not "header"; shown as a warning; named as the known defect.
    assert re.search(r": warning: output Observation/[0-9a-f-]{36} Observation\.derivedFrom: ", line), line
    assert "(known IG defect IG-1, docs/conformance.md)" in line
    r = run("convert", str(DEMO), "--validate", "--fail-on-ig-defects", "-o", str(tmp_path / "no.json"))
    assert r.exit_code == 4 and not (tmp_path / "no.json").exists()
    r = run("validate", str(out))
    # One vocabulary: what does not fail the run is not labelled error (issue 27, item 3).
    assert r.exit_code == 0 and "0 error(s), 1 known IG defect(s) (not failing, docs/conformance.md)" in r.stdout
    assert not [l for l in r.stdout.splitlines() if ": error:" in l] and "warning: Observation/" in r.stdout
    assert run("validate", "--fail-on-ig-defects", str(out)).exit_code == 1
