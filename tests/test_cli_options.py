"""The command line a newcomer trusts (issue 11): option checks, -q/-v, outputs that are what
they say, validate's edge cases, help, and push with the same conversion options as convert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sr2fhir.cli import app
from tests.helpers import FIXTURES, IG_EXAMPLE, SHARED, LocalServer

runner = CliRunner()
GOOD, WARNS = FIXTURES / "tid1410_planar_regions.dcm", FIXTURES / "tid1501_containers.dcm"


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("zone", ["garbage", "5", "Europe/Berlin", "+99:99", "+01:60"])
def test_bad_timezones_are_usage_errors(zone: str, tmp_path: Path) -> None:
    r = run("convert", str(GOOD), "--timezone", zone, "-o", str(tmp_path / "o.json"))
    assert r.exit_code == 2 and "--timezone" in r.stderr and not (tmp_path / "o.json").exists()


def test_a_good_timezone_is_used() -> None:
    r = run("convert", str(IG_EXAMPLE), "--timezone", "-0500")
    assert r.exit_code == 0
    issued = {e["resource"].get("issued") for e in json.loads(r.stdout)["entry"]} - {None}
    assert issued and all(t.endswith("-05:00") or t.endswith("+00:00") for t in issued)


def test_a_bad_fhir_url_fails_at_once() -> None:
    r = run("push", str(GOOD), "--fhir-url", "notaurl")
    assert r.exit_code == 2 and "--fhir-url" in r.stderr


def test_quiet_never_hides_a_failure_and_refuses_verbose(tmp_path: Path) -> None:
    bad = tmp_path / "notdicom.txt"
    bad.write_text("hello")
    r = run("convert", "-q", str(bad))
    assert r.exit_code == 11 and "not a DICOM file" in r.stderr
    assert run("convert", "-q", "-v", str(GOOD)).exit_code == 2
    r = run("convert", "-q", str(WARNS), str(GOOD), "-o", str(tmp_path / "out"))
    assert "warning:" not in r.stderr and "1 converted with warnings (hidden by -q)" in r.stderr


def test_a_failed_files_outcome_says_only_that_it_failed(tmp_path: Path) -> None:
    bad = tmp_path / "notdicom.txt"
    bad.write_text("hello")
    run("convert", str(bad), str(GOOD), "-o", str(tmp_path / "out"), "--outcome", str(tmp_path / "oo"))
    oo = json.loads((tmp_path / "oo" / "notdicom.txt.outcome.json").read_text())
    assert [i["severity"] for i in oo["issue"]] == ["fatal"] and "not a DICOM file" in oo["issue"][0]["diagnostics"]
    assert json.loads((tmp_path / "oo" / "tid1410_planar_regions.outcome.json").read_text())["issue"][0]["severity"] == "information"


def test_several_documents_never_share_a_json_file(tmp_path: Path) -> None:
    """A DICOM JSON array of two reports: one Bundle per document, never two in one .json file."""
    obj = json.loads(IG_EXAMPLE.read_text())
    obj = obj if isinstance(obj, list) else [obj]
    two = tmp_path / "two.json"
    two.write_text(json.dumps(obj + obj))
    r = run("convert", str(two), "-o", str(tmp_path / "x.json"))
    assert r.exit_code == 2 and "holds 2 SR documents" in r.stderr and not (tmp_path / "x.json").exists()
    r = run("convert", str(two), "-o", str(tmp_path / "out") + "/")
    assert r.exit_code == 0, r.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["two.1.json", "two.2.json"]
    assert all(json.loads((tmp_path / "out" / n).read_text())["resourceType"] == "Bundle" for n in written)
    r = run("convert", str(GOOD), str(WARNS), "-o", str(tmp_path / "single.json"))
    assert r.exit_code == 2 and "names a file" in r.stderr and not (tmp_path / "single.json").exists()


def test_validate_refuses_an_empty_file_and_keeps_quiet_about_standalone_resources(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("")
    r = run("validate", str(empty))
    assert r.exit_code == 1 and "no FHIR resource" in r.stderr
    patient = tmp_path / "p.json"
    patient.write_text(json.dumps({"resourceType": "Patient", "id": "p1"}))
    assert "orphan" not in run("validate", str(patient)).stdout
    out = tmp_path / "out"
    run("convert", *map(str, sorted((SHARED / "data" / "tid1500").glob("*.dcm"))), "-o", str(out))
    r = run("validate", *map(str, sorted(out.glob("*.json"))))
    assert "orphan" not in r.stdout and r.exit_code == 0, r.stdout[-2000:]


def test_help_lists_choices_and_answers_to_h() -> None:
    r = run("convert", "-h")
    assert r.exit_code == 0 and "transaction" in r.stdout and "collection" in r.stdout and "ndjson" in r.stdout
    assert "<str>" not in r.stdout and "<bool>" not in r.stdout
    p = run("push", "-h")
    assert "fail" in p.stdout and "logical" in p.stdout and "first" in p.stdout
    assert "--install-completion" in run("-h").stdout


def accepting(method: str, path: str, body: bytes) -> Any:
    """A FHIR server that knows every reference and accepts every transaction."""
    if method == "GET":
        found = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "X", "id": "1"}}]}
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(found).encode()
    n = len(json.loads(body)["entry"])
    return 200, {"Content-Type": "application/fhir+json"}, json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {"status": "201 Created"}}] * n}).encode()


def test_push_has_convert_s_options_and_summary(tmp_path: Path) -> None:
    """Issue 11.3: push hid the conversion warnings and had no -v, -q, --outcome, --strict, -j, --validate."""
    def push(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sr2fhir", "push", *args], capture_output=True, text=True, timeout=300)

    with LocalServer(accepting) as srv:
        r = push(str(WARNS), str(GOOD), "--fhir-url", srv.url, "--outcome", str(tmp_path / "oo"), "-j", "2")
        assert r.returncode == 0, r.stderr
        assert "[num-without-value]" in r.stderr  # the conversion's warnings, as convert shows them
        assert "summary: 2 file(s): 1 pushed, 1 pushed with warnings, 0 failed" in r.stderr
        assert sorted(p.name for p in (tmp_path / "oo").iterdir()) == ["tid1410_planar_regions.outcome.json", "tid1501_containers.outcome.json"]
        posts = sum(1 for m, _ in srv.requests if m == "POST")
        r = push(str(WARNS), "--fhir-url", srv.url, "--strict", "-q")
        assert r.returncode == 3 and "warning:" not in r.stderr and "--strict" in r.stderr
        assert sum(1 for m, _ in srv.requests if m == "POST") == posts  # nothing sent
        r = push(str(WARNS), "--fhir-url", srv.url, "--validate")
        assert r.returncode == 0 and "known IG defect IG-1" in r.stderr, r.stderr


def test_progress_plain_when_not_a_terminal(tmp_path: Path) -> None:
    """Issue 11.1: a batch printed nothing until its summary."""
    import os

    files = [str(GOOD)] * 3 + [str(WARNS)]
    env = {**os.environ, "SR2FHIR_PROGRESS_SECONDS": "0"}
    r = subprocess.run([sys.executable, "-m", "sr2fhir", "convert", *files, "-o", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    lines = [l for l in r.stderr.splitlines() if l.startswith("progress: ")]
    assert len(lines) == 3 and lines[0].startswith("progress: 1/4 file(s) done, 0 failed,") and "s left" in lines[0]
    q = subprocess.run([sys.executable, "-m", "sr2fhir", "convert", "-q", *files, "-o", str(tmp_path / "out2")], capture_output=True, text=True, env=env, timeout=300)
    assert "progress:" not in q.stderr


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty

    master, slave = pty.openpty()
    files = [str(GOOD)] * 6
    p = subprocess.Popen([sys.executable, "-m", "sr2fhir", "convert", *files, "-o", str(tmp_path / "out")], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                         env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    p.wait(timeout=300)
    text = seen.decode("utf-8", "replace")
    assert p.returncode == 0 and "converted" in text and "files, 0 failed" in text and "/6" in text, text[-1500:]


def test_setup_and_server_scripts_explain_themselves(tmp_path: Path) -> None:
    """Issue 11.11/11.10: a wrong Python and a bare hapi-server.sh gave cryptic output."""
    from tests.helpers import ROOT

    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Python 3.9.2'; exit 0; fi\nexit 1\n")
    old.chmod(0o755)
    r = subprocess.run([str(ROOT / "scripts" / "setup.sh")], env={**__import__("os").environ, "PYTHON": str(old)}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "needs Python >= 3.11" in r.stderr and "Python 3.9.2" in r.stderr
    r = subprocess.run([str(ROOT / "scripts" / "hapi-server.sh")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("usage: scripts/hapi-server.sh start [PORT]") and "set -euo" not in r.stderr


def test_messages_say_where_they_are_explained(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "sr2fhir", "convert", str(WARNS), "-o", str(tmp_path / "o.json")], capture_output=True, text=True, timeout=300)
    assert r.stderr.rstrip().endswith("note: each [rule] is explained in docs/diagnostics.md; D-n in docs/decisions.md; IG-n in docs/conformance.md")
    for doc in ("diagnostics", "decisions", "conformance"):
        assert f"(docs/{doc}.md)" in (Path(__file__).parents[1] / "README.md").read_text()


def test_the_command_line_loads_pydicom_only_when_it_needs_it(tmp_path: Path) -> None:
    """--version and --help stay light, and so does converting a Part 10 file (issue 16: the lean
    reader reads it; pydicom and numpy cost about 0.4 s of CPU to import). DICOM JSON needs pydicom."""
    code = "import sys, sr2fhir.cli, sr2fhir; print(sorted(m for m in ('pydicom', 'numpy', 'httpx', 'fhir.resources') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
    convert = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted(m for m in ('pydicom', 'numpy') if m in sys.modules)))\n"
        "from sr2fhir.cli import main\n"
        "sys.argv = ['sr2fhir', 'convert', sys.argv[1], '-o', sys.argv[2]]\n"
        "main()\n"
    )
    for source, pydicom in ((FIXTURES / "tid1410_planar_regions.dcm", False), (IG_EXAMPLE, True)):
        out = tmp_path / "out.json"
        r = subprocess.run([sys.executable, "-c", convert, str(source), str(out)], capture_output=True, text=True, timeout=300)
        assert out.stat().st_size > 0, r.stderr
        loaded = r.stdout.strip().splitlines()[-1]
        assert ("'pydicom'" in loaded) == pydicom and ("'numpy'" in loaded) == pydicom, (source, loaded)


@pytest.mark.parametrize("command", ["convert", "push", "validate", "explain", "export", "serve", "dump", "queue list", "queue purge"])
def test_every_placeholder_says_what_it_wants(command: str) -> None:
    """Issue 27.9: `<str>` placeholders, `<r5|r4>` where the docs say R5, and help naming options a command lacks."""
    import re

    r = run(*command.split(), "-h")
    assert r.exit_code == 0, r.output
    assert not re.search(r"<(str|int|float|bool|text|integer)>", r.stdout), r.stdout
    assert "<r5|r4>" not in r.stdout
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", r.stdout))
    offered = set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]+)(?: / (--[a-z][a-z0-9-]+))?", r.stdout, re.M))
    offered_names = {o for pair in offered for o in pair if o}
    assert named - offered_names == set()  # every option a help text names is one this command has


@pytest.mark.parametrize("command", ["convert", "push", "export", "validate"])
def test_usage_says_several_inputs_are_taken(command: str) -> None:
    assert "...}" in run(command, "-h").stdout.splitlines()[0]


def test_the_gateway_http_port_default_is_one_place_and_not_8080() -> None:
    from sr2fhir.gateway.service import Settings

    r = run("serve", "-h")
    assert f"[default: {Settings.http_port}]" in " ".join(r.stdout.split()) and Settings.http_port != 8080


def test_a_failed_file_is_reported_once(tmp_path: Path) -> None:
    """Issue 27.3: a failure was printed as it happened and again in the summary."""
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(GOOD.read_bytes()[:1000])
    r = run("convert", str(GOOD), str(cut), "-o", str(tmp_path / "out"))
    assert sum(1 for line in r.stderr.splitlines() if str(cut) in line) == 1, r.stderr
    assert "summary: 2 file(s): 1 converted, 0 converted with warnings, 1 failed" in r.stderr


@pytest.mark.parametrize(("made", "checked", "hint"), [("R4", "R5", "give --fhir-version R4"), ("R5", "R4", "drop --fhir-version R4")])
def test_output_of_the_other_fhir_version_is_named_not_drowned(tmp_path: Path, made: str, checked: str, hint: str) -> None:
    """Issue 27.7: validating R4 output without --fhir-version R4 gave a page of pydantic errors."""
    out = tmp_path / "b.json"
    assert run("convert", str(GOOD), "--fhir-version", made, "-o", str(out)).exit_code == 0
    r = run("validate", str(out), "--fhir-version", checked)
    assert r.exit_code == 1 and f"this is FHIR {made} output, and it is being checked as {checked}: {hint}" in r.stderr
    assert "[structure" not in r.stdout  # no structure noise
    assert run("validate", str(out), "--fhir-version", made).exit_code == 0


def test_the_shared_options_are_declared_once_and_offered_alike() -> None:
    """Issue 26.4: the same 13 options were declared in five command signatures. Now one table
    (cli/options.py CONVERSION, CONNECTION) gives them to every command, with the same flags."""
    import typer.main

    from sr2fhir.cli.options import CONNECTION, CONVERSION

    group = typer.main.get_command(app)
    def flags(command: str) -> dict[str, tuple[str, ...]]:
        return {p.name: tuple(p.opts) for p in group.commands[command].params}  # type: ignore[attr-defined]

    conversion = {o.name for o in CONVERSION}
    for command, expected in [("convert", conversion), ("push", conversion | {o.name for o in CONNECTION}), ("export", conversion),
                              ("serve", conversion - {"verbose", "quiet", "jobs"} | {o.name for o in CONNECTION})]:
        got = flags(command)
        assert expected <= set(got), (command, expected - set(got))
    assert {n: flags("convert")[n] for n in conversion} == {n: flags("push")[n] for n in conversion} == {n: flags("export")[n] for n in conversion}
    src = (Path(__file__).parents[1] / "src" / "sr2fhir" / "cli")
    declared = [p.name for p in src.glob("*.py") if 'typer.Option("--timezone"' in p.read_text()]
    assert declared == ["options.py"]
