#!/usr/bin/env bash
# The API reference as HTML (issue 26, item 9): pdoc over the public API (`sr2fhir`: read, convert,
# bundle, dumps, Options, Conversion, the errors) and the gateway's and export's entry points,
# from their numpydoc docstrings. tests/test_api_docs.py runs it, so CI builds it every time.
#
#   scripts/api_docs.sh [OUTDIR]        (default build/api; open OUTDIR/sr2fhir.html)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/build/api}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
"$PY" - "$OUT" <<'PY'
import sys
import warnings

import pdoc
import pdoc.render

import sr2fhir

for name in sr2fhir.__all__:
    getattr(sr2fhir, name)  # the lazily imported names, resolved for pdoc
warnings.simplefilter("error")  # a name pdoc cannot resolve fails the build
pdoc.render.configure(docformat="numpy", footer_text=f"sr2fhir {sr2fhir.__version__}")
pdoc.pdoc("sr2fhir", "sr2fhir.errors", "sr2fhir.gateway.service", "sr2fhir.export.local", "sr2fhir.export.spark", output_directory=__import__("pathlib").Path(sys.argv[1]))
print(f"api docs: {sys.argv[1]}/sr2fhir.html")
PY
