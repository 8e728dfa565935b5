#!/usr/bin/env bash
# Create .venv and install sr2fhir with its pinned test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip==24.3.1
.venv/bin/python -m pip install -q -e ".[test]"
