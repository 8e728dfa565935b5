"""The command line: outputs, exit codes, batch summary, and no patient data in messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydicom
import pytest
from typer.testing import CliRunner

from sr2fhir.cli import app
from tests.helpers import FIXTURES, IG_EXAMPLE, SHARED

runner = CliRunner()


def run(*args: str, input: bytes | None = None) -> Any:
    return runner.invoke(app, list(args), input=input)


def test_convert_to_stdout_is_a_transaction_bundle() -> None:
    r = run("convert", str(IG_EXAMPLE))
    assert r.exit_code == 0, r.output
    b = json.loads(r.stdout)
    assert b["type"] == "transaction" and all(e["request"]["method"] == "POST" for e in b["entry"])
    assert all(e["fullUrl"].startswith("urn:uuid:") and e["request"]["ifNoneExist"].startswith("identifier=") for e in b["entry"])


def test_same_input_twice_is_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run("convert", str(FIXTURES / "tid1501_containers.dcm"), "-o", str(a)).exit_code == 0
    assert run("convert", str(FIXTURES / "tid1501_containers.dcm"), "-o", str(b)).exit_code == 0
    assert a.read_bytes() == b.read_bytes()


def test_ndjson_uses_relative_references(tmp_path: Path) -> None:
    out = tmp_path / "o.ndjson"
    assert run("convert", str(IG_EXAMPLE), "-b", "ndjson", "-o", str(out)).exit_code == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    ids = {f"{r['resourceType']}/{r['id']}" for r in lines}
    refs = [v for r in lines for v in _refs(r)]
    assert refs and all(not x.startswith("urn:uuid:") for x in refs) and set(refs) <= ids


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["reference"]] if isinstance(node.get("reference"), str) else []) + [x for v in node.values() for x in _refs(v)]
    if isinstance(node, list):
        return [x for v in node for x in _refs(v)]
    return []


def test_collection_and_diagnostic_report() -> None:
    r = run("convert", str(IG_EXAMPLE), "-b", "collection", "--diagnostic-report")
    b = json.loads(r.stdout)
    assert b["type"] == "collection"
    (dr,) = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
    assert dr["code"]["coding"][0]["code"] == "126000" and len(dr["result"]) == 1


def test_stdin(tmp_path: Path) -> None:
    r = run("convert", "-", input=(FIXTURES / "tid1410_planar_regions.dcm").read_bytes())
    assert r.exit_code == 0 and json.loads(r.stdout)["resourceType"] == "Bundle"


def make_ct(path: Path) -> None:
    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "2.25.123"
    ds.PatientID = "X"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize(("kind", "code"), [("missing", 10), ("text", 11), ("json", 11), ("ct", 13), ("rdsr", 14), ("truncated", 12)])
def test_failure_classes_exit_codes_and_no_output(tmp_path: Path, kind: str, code: int) -> None:
    f = tmp_path / f"in-{kind}"
    if kind == "text":
        f.write_text("not dicom\n" * 50)
    elif kind == "json":
        f.write_text('{"00100020": {"vr": "LO", "Value": ["x"]}, ')
    elif kind == "ct":
        make_ct(f)
    elif kind == "rdsr":
        f = SHARED / "data" / "non-tid1500" / "openrem__MG-RDSR-Hologic_2D.dcm"
    elif kind == "truncated":
        data = (FIXTURES / "tid1411_volumetric.dcm").read_bytes()
        f.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.json"
    r = run("convert", str(f), "-o", str(out))
    assert r.exit_code == code, r.output
    assert str(f) in r.stderr and "Traceback" not in r.output + r.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.json.*"))  # no half-written output


def test_batch_goes_on_and_summarises(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.dcm").write_bytes((FIXTURES / "tid1410_planar_regions.dcm").read_bytes()[:1000])  # truncated
    (tmp_path / "in" / "good.dcm").write_bytes((FIXTURES / "tid1410_planar_regions.dcm").read_bytes())
    (tmp_path / "in" / "partial.dcm").write_bytes((FIXTURES / "tid1501_containers.dcm").read_bytes())
    r = run("convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--outcome", str(tmp_path / "oo"))
    assert r.exit_code == 12
    assert "3 file(s): 1 converted, 1 converted with warnings, 1 failed" in r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.json", "partial.json"]
    oo = json.loads((tmp_path / "oo" / "partial.outcome.json").read_text())
    assert oo["resourceType"] == "OperationOutcome" and any("content item 1.5.1.12" in i.get("location", [""])[0] for i in oo["issue"])
    bad = json.loads((tmp_path / "oo" / "bad.outcome.json").read_text())
    assert bad["issue"][0]["severity"] == "fatal"


def test_strict_fails_on_warnings(tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    r = run("convert", "--strict", str(FIXTURES / "tid1501_containers.dcm"), "-o", str(out))
    assert r.exit_code == 3 and not out.exists()
    assert run("convert", "--strict", str(FIXTURES / "tid1410_planar_regions.dcm"), "-o", str(out)).exit_code == 0


def test_no_patient_data_in_messages(tmp_path: Path) -> None:
    """Patient names, IDs and birth dates may be in the FHIR output only, never in stderr or outcomes."""
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    secrets = [manifest["patient"]["PatientID"], manifest["patient"]["PatientBirthDate"], "Patricia", "Fixture^Patricia",
               "PID-11235", "EXAMPLE^MEASUREMENT", "MEASUREMENT", "19670701"]
    inputs = [str(p) for p in sorted(FIXTURES.glob("*.dcm"))] + [str(IG_EXAMPLE)]
    cut = tmp_path / "cut.dcm"
    data = (FIXTURES / "tid1501_containers.dcm").read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 4])
    r = run("convert", "-v", *inputs, str(cut), "-o", str(tmp_path / "out"), "--outcome", str(tmp_path / "oo"))
    text = r.stderr + "".join(p.read_text() for p in (tmp_path / "oo").iterdir())
    assert "content item" in text  # diagnostics were produced ...
    for s in secrets:
        assert s not in text, s  # ... without patient data
    assert manifest["patient"]["PatientID"] in (tmp_path / "out" / "tid1501_containers.json").read_text()


def test_dump() -> None:
    r = run("dump", str(IG_EXAMPLE))
    assert r.exit_code == 0
    assert '    1.4.1.9 CONTAINS NUM (118565006, SCT, "Volume") = 31112.20 mm3' in r.stdout
    assert "RADIOLOGIST" not in run("dump", "--no-names", str(IG_EXAMPLE)).stdout


def test_help_and_module_entry_point() -> None:
    r = subprocess.run([sys.executable, "-m", "sr2fhir", "convert", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--bundle" in r.stdout and "transaction" in r.stdout


def test_convert_validate(tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    r = run("convert", str(IG_EXAMPLE), "--validate", "--ig", str(SHARED / "ig-package"), "-o", str(out))
    assert r.exit_code == 0 and out.exists()
    r = run("convert", str(IG_EXAMPLE), "--validate", "--ig", str(tmp_path / "nowhere"))
    assert r.exit_code == 2 and "no StructureDefinitions" in r.stderr


def test_parallel_jobs_give_the_same_output(tmp_path: Path) -> None:
    inputs = [str(p) for p in sorted(FIXTURES.glob("*.dcm"))] + [str(IG_EXAMPLE)]
    assert run("convert", *inputs, "-o", str(tmp_path / "one")).exit_code == 0
    assert run("convert", "-j", "2", *inputs, "-o", str(tmp_path / "two")).exit_code == 0
    for f in (tmp_path / "one").iterdir():
        assert (tmp_path / "two" / f.name).read_bytes() == f.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token-env", "T", "--basic-user", "u"], "choose one of"),
        (["--smart-client-id", "c"], "needs --smart-key"),
        (["--token-file", "/nonexistent/token"], "No such file"),
    ],
)
def test_push_auth_options_are_checked_before_anything_is_sent(args: list[str], message: str) -> None:
    r = run("push", str(IG_EXAMPLE), "--fhir-url", "http://127.0.0.1:9/fhir", *args)
    assert r.exit_code == 2 and message in r.output, r.output


def test_push_stops_when_the_server_is_unreachable_and_keeps_everything(tmp_path: Path) -> None:
    inputs = [FIXTURES / "tid1410_planar_regions.dcm", FIXTURES / "tid1411_volumetric.dcm", FIXTURES / "tid1501_containers.dcm"]
    spool = tmp_path / "spool"
    r = run("push", *map(str, inputs), "--fhir-url", "http://127.0.0.1:9/fhir", "--retries", "0", "--spool", str(spool))
    assert r.exit_code == 1
    assert "network error" in r.output and "2 more file(s) not attempted" in r.output
    assert "summary: 3 file(s): 0 pushed, 0 pushed with warnings, 3 failed" in r.output
    assert sorted(p.name for p in spool.iterdir()) == sorted(p.name for p in inputs)  # nothing lost


def test_output_names_never_collide(tmp_path: Path) -> None:
    """Issue 10.9: a/x.dcm, b/x.dcm and a/x.DCM all wrote x.json, and the summary said 3 converted."""
    src = FIXTURES / "tid1410_planar_regions.dcm"
    for rel in ("a/x.dcm", "b/x.dcm", "a/x.DCM", "a/sub/y.dcm"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(src.read_bytes())
    out = tmp_path / "out"
    r = run("convert", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out))
    assert r.exit_code == 0, r.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.json"))
    assert len(written) == 4 and "sub/y.json" in written, written
    assert "would write the same output name" in r.stderr
    again = tmp_path / "again"
    run("convert", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(again))
    assert sorted(str(p.relative_to(again)) for p in again.rglob("*.json")) == written  # stable names


def test_dash_output_is_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = run("convert", str(FIXTURES / "tid1410_planar_regions.dcm"), "-o", "-")
    assert r.exit_code == 0 and json.loads(r.stdout)["resourceType"] == "Bundle" and not (tmp_path / "-").exists()


def test_unreadable_folders_fail_with_their_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10.7: an unreadable folder gave '0 file(s)', exit 0."""
    import os

    (tmp_path / "in" / "locked").mkdir(parents=True)
    (tmp_path / "in" / "r.dcm").write_bytes((FIXTURES / "tid1410_planar_regions.dcm").read_bytes())
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:  # root reads every folder: refuse this one as chmod 000 would
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    r = run("convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert r.exit_code == 10 and "1 converted" in r.stderr and "1 failed" in r.stderr, r.stderr
    assert "locked: a folder that cannot be read" in r.stderr
    r = run("convert", str(tmp_path / "in" / "locked"), "-o", str(tmp_path / "out2"))
    assert r.exit_code == 10 and "a folder that cannot be read" in r.stderr, r.stderr


def test_linked_folders_are_followed_once(tmp_path: Path) -> None:
    """Issue 10.7: links to folders were skipped without a word; a loop must not run forever."""
    base = tmp_path / "in"
    (base / "ok").mkdir(parents=True)
    (base / "ok" / "r.dcm").write_bytes((FIXTURES / "tid1410_planar_regions.dcm").read_bytes())
    (base / "link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "s.dcm").write_bytes((FIXTURES / "tid1411_volumetric.dcm").read_bytes())
    (base / "ok" / "loop").symlink_to(base)
    r = run("convert", str(base), "-o", str(tmp_path / "out"))
    assert r.exit_code == 0, r.stderr
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.json")) == ["link/s.json", "ok/r.json"]
    assert "a link to a folder already read" in r.stderr


def test_unwritable_outcome_and_full_stdout_fail_plainly(tmp_path: Path) -> None:
    """Issue 10.5: an unwritable --outcome or a full disk under stdout gave a traceback and stopped the batch."""
    a, b = FIXTURES / "tid1410_planar_regions.dcm", FIXTURES / "tid1411_volumetric.dcm"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = subprocess.run([sys.executable, "-m", "sr2fhir", "convert", str(a), str(b), "-o", str(tmp_path / "out"), "--outcome", str(blocker / "oo")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "2 failed" in r.stderr and len(list((tmp_path / "out").glob("*.json"))) == 2
    assert {line.split(":")[1].strip() for line in r.stderr.splitlines() if line.startswith("error: ") and "cannot write the OperationOutcome" in line} == {str(a), str(b)}
    # /dev/full: every write fails with ENOSPC, as on a full disk.
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "sr2fhir", "convert", str(a), str(b)], stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cannot write to standard output (No space left on device)" in r.stderr and "2 failed" in r.stderr
    r = subprocess.run([sys.executable, "-m", "sr2fhir", "convert", str(a), "-o", str(tmp_path / "o.json"), "--outcome", "/dev/full"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "cannot write the OperationOutcome /dev/full (No space left on device)" in r.stderr, r.stderr


def test_a_failed_reconversion_removes_the_stale_output(tmp_path: Path) -> None:
    good = tmp_path / "r.dcm"
    good.write_bytes((FIXTURES / "tid1410_planar_regions.dcm").read_bytes())
    out = tmp_path / "out"
    assert run("convert", str(good), str(FIXTURES / "tid1411_volumetric.dcm"), "-o", str(out)).exit_code == 0
    assert (out / "r.json").exists()
    good.write_bytes(b"not dicom at all")
    r = run("convert", str(good), str(FIXTURES / "tid1411_volumetric.dcm"), "-o", str(out))
    assert r.exit_code == 11 and not (out / "r.json").exists() and "the output of an earlier run" in r.stderr


def test_control_characters_are_never_printed_raw(tmp_path: Path) -> None:
    """Issue 10.11: escape sequences from SR content or file names reached the terminal raw."""
    ds = pydicom.dcmread(FIXTURES / "tid1501_containers.dcm")
    stack = [ds]
    while stack:  # every concept meaning gets a clear-screen, a recolour and a forged log line
        d = stack.pop()
        for seq in ("ConceptNameCodeSequence", "ContentSequence"):
            for x in d.get(seq, []):
                stack.append(x)
        if "CodeMeaning" in d:
            d.CodeMeaning = f"{d.CodeMeaning}\x1b[2J\x1b[31m\nerror: forged"
    evil = tmp_path / "evil\x1b]0;title\x07\u202ename.dcm"
    ds.save_as(evil)
    p = subprocess.run([sys.executable, "-m", "sr2fhir", "convert", "-v", str(evil), str(tmp_path / "missing\x1b[1m.dcm"), "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=300)
    assert p.stderr and "\x1b" not in p.stderr and "\x07" not in p.stderr and "\u202e" not in p.stderr
    assert "\\x1b[2J" in p.stderr and "missing\\x1b[1m.dcm" in p.stderr
    assert not any(line.startswith("error: forged") for line in p.stderr.splitlines())


def test_the_wrong_kind_of_file_is_named(tmp_path: Path) -> None:
    """Issue 27, item 7: `validate report.dcm` said "cannot read FHIR JSON (UnicodeDecodeError)" and
    `convert bundle.json` "attribute resourceType is not an object"."""
    r = run("validate", str(FIXTURES / "tid1410_planar_regions.dcm"))
    assert r.exit_code == 1 and "this is a DICOM file, not FHIR JSON" in r.output and "UnicodeDecodeError" not in r.output
    bundle = tmp_path / "bundle.json"
    assert run("convert", str(FIXTURES / "tid1410_planar_regions.dcm"), "-o", str(bundle)).exit_code == 0
    r = run("convert", str(bundle), "-o", str(tmp_path / "again.json"))
    assert r.exit_code == 11 and "this is FHIR JSON (Bundle), not DICOM" in r.output and not (tmp_path / "again.json").exists()


def test_validate_outcomes_of_inputs_with_one_stem_do_not_overwrite_each_other(tmp_path: Path) -> None:
    """Issue 26, item 4: a/x.json and b/x.json both wrote x.outcome.json."""
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        assert run("convert", str(FIXTURES / "tid1410_planar_regions.dcm"), "-o", str(tmp_path / sub / "x.json")).exit_code == 0
    (tmp_path / "out").mkdir()
    r = run("validate", str(tmp_path / "a" / "x.json"), str(tmp_path / "b" / "x.json"), "--outcome", str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(names) == 2 and all(n.startswith("x.") and n.endswith(".outcome.json") for n in names)  # output_stems' suffix


@pytest.mark.parametrize("command", ["convert", "validate"])
def test_one_input_with_an_outcome_folder_writes_into_it(tmp_path: Path, command: str) -> None:
    """One helper names outcome files (cli/output.outcome_path): a folder given for one input
    holds <stem>.outcome.json, for every command alike."""
    src = FIXTURES / "tid1410_planar_regions.dcm"
    if command == "validate":
        src = tmp_path / "x.json"
        assert run("convert", str(FIXTURES / "tid1410_planar_regions.dcm"), "-o", str(src)).exit_code == 0
    (tmp_path / "oo").mkdir()
    extra = ["-o", str(tmp_path / "out.json")] if command == "convert" else []
    r = run(command, str(src), *extra, "--outcome", str(tmp_path / "oo"))
    assert r.exit_code == 0, r.output
    stem = "tid1410_planar_regions" if command == "convert" else "x"
    written = json.loads((tmp_path / "oo" / f"{stem}.outcome.json").read_text())
    assert written["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-object-mb", "0"], "--max-object-mb must be at least 1"),
        (["--max-associations-per-peer", "0"], "--max-associations-per-peer"),
        (["--idle-timeout", "0"], "--idle-timeout more than 0"),
    ],
)
def test_serve_limits_are_checked_before_anything_starts(tmp_path: Path, args: list[str], message: str) -> None:
    r = run("serve", "--fhir-url", "http://127.0.0.1:9/fhir", "--state", str(tmp_path / "state"), *args)
    assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "state").exists()


def test_a_folder_walk_skips_what_is_plainly_not_dicom_and_counts_it(tmp_path: Path) -> None:
    """Issue 27.8: `convert DIR` read every file under DIR, a shared library included, and failed on each."""
    src = FIXTURES / "tid1410_planar_regions.dcm"
    (tmp_path / "in" / "lib").mkdir(parents=True)
    (tmp_path / "in" / "a.dcm").write_bytes(src.read_bytes())
    (tmp_path / "in" / "lib" / "x.so").write_bytes(b"\x7fELF" + bytes(300))
    (tmp_path / "in" / "notes.txt").write_text("not a report\n")
    (tmp_path / "in" / "b.json").write_bytes(b"\xef\xbb\xbf \n" + IG_EXAMPLE.read_bytes())  # DICOM JSON, with a byte order mark
    (tmp_path / "in" / "cut.dcm").write_bytes(src.read_bytes()[:1000])  # DICOM, but broken: read, and failed
    r = run("convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q")
    assert "x.so" not in r.output and "notes.txt" not in r.output
    assert "summary: 3 file(s): 1 converted, 1 converted with warnings (hidden by -q), 1 failed; 2 file(s) in folders skipped, not DICOM" in r.output, r.output
    assert "cut.dcm: truncated" in r.output
    named = run("convert", str(tmp_path / "in" / "notes.txt"), "-o", str(tmp_path / "one.json"))
    assert named.exit_code != 0 and "not a DICOM file" in named.output  # a file named on its own is always read


@pytest.mark.parametrize(("globs", "read"), [
    (["*.dcm"], {"a.dcm", "cut.dcm", "c.dcm"}),  # a name matches in every subfolder
    (["a.*", "sub/*"], {"a.dcm", "c.dcm"}),
    (["sub/c.dcm"], {"c.dcm"}),
])
def test_include_globs_choose_the_files_of_a_folder_walk(tmp_path: Path, globs: list[str], read: set[str]) -> None:
    src = FIXTURES / "tid1410_planar_regions.dcm"
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for rel in ("a.dcm", "sub/c.dcm", "b.bin"):
        (tmp_path / "in" / rel).write_bytes(src.read_bytes())
    (tmp_path / "in" / "cut.dcm").write_bytes(src.read_bytes()[:1000])
    args = [a for g in globs for a in ("--include", g)]
    r = run("convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q", *args)
    shown = {Path(p).name for p in (tmp_path / "out").rglob("*.json")} | ({"cut.dcm"} if "cut.dcm: truncated" in r.output else set())
    assert shown == {n.replace(".dcm", ".json") if n != "cut.dcm" else n for n in read}, r.output
