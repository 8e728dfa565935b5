#!/usr/bin/env bash
# Create .venv and install sr2fhir with its test dependencies and the Spark extra, at the versions in constraints.txt
# (what CI tested; scripts/lock.sh writes it). Needs Python >= 3.11 (PYTHON=... to choose one).
# The test suite also needs Java 17, Maven and npm (the HAPI FHIR server and the HL7 validator).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
if ! new_enough "$PY"; then
  echo "setup: sr2fhir needs Python >= 3.11; $PY is $("$PY" --version 2>&1 || echo missing). Give one with PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ -x .venv/bin/python ] && ! new_enough .venv/bin/python; then
  echo "setup: .venv was made by $(.venv/bin/python --version 2>&1); rebuilding it with $("$PY" --version)" >&2
  rm -rf .venv
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip==24.3.1
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test,spark]"
# The gateway's tests run Orthanc and DCMTK's storescu (Debian packages).
./scripts/setup-services.sh
