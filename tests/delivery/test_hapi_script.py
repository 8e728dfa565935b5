"""scripts/hapi-server.sh as a user meets it: which server it starts, stops or refuses."""

from __future__ import annotations

import pytest

import os
import subprocess
from pathlib import Path

from tests.helpers import ROOT


@pytest.mark.java
def test_the_hapi_script_never_reuses_a_server_of_another_port_or_version(tmp_path: Path) -> None:
    """Issue 27, item 1: `start 18089`, then `start 18090 --fhir-version R4`, printed "already
    running at ...:18089" and exit 0. Now each port has its own state folder by default, and a
    state folder whose server differs from the one asked for is a clear refusal. A live stand-in
    process plays the running server (no Java needed)."""
    script = str(ROOT / "scripts" / "hapi-server.sh")
    stand_in = subprocess.Popen(["sleep", "120"])
    try:
        state = tmp_path / "hapi"
        state.mkdir()
        (state / "pid").write_text(str(stand_in.pid))
        (state / "port").write_text("18089")
        (state / "version").write_text("R5")
        env = {**os.environ, "SR2FHIR_HAPI_DIR": str(state)}
        same = subprocess.run([script, "start", "18089"], env=env, capture_output=True, text=True, timeout=60)
        assert same.returncode == 0 and "already running at http://127.0.0.1:18089/fhir (FHIR R5)" in same.stdout
        for args in (["18090"], ["18089", "--fhir-version", "R4"]):
            other = subprocess.run([script, "start", *args], env=env, capture_output=True, text=True, timeout=60)
            assert other.returncode == 1 and "runs a FHIR R5 server at http://127.0.0.1:18089/fhir" in other.stderr, args
            assert "stop 18089" in other.stderr
        bad = subprocess.run([script, "status", "80x"], env=env, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "must be a number" in bad.stderr
    finally:
        stand_in.kill()
        stand_in.wait()
