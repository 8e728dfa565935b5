#!/usr/bin/env bash
# Mutation testing with mutmut 3 (outside CI; issue 25): how many changed versions of a module the
# tests catch, in the committed state (HEAD). Runs in a fresh clone beside a venv that reads .venv's packages but not sr2fhir's
# editable install (whose import hook would shadow mutmut's mutated copy).
#
#   scripts/mutation.sh MODULE TEST_PATH...
#   e.g. scripts/mutation.sh sr2fhir.mapping.vital_signs tests/mapping/test_vital_signs.py
#
# Prints killed / survived and the kill rate, and writes the survivors' diffs to
# mutation-survivors-MODULE.txt. SR2FHIR_GENERATED_SEEDS (default here 20) shortens
# tests/test_generated_reports.py when it is among the tests. Tests that compare a shipped file with a
# generator's run, or start `python -m sr2fhir` in a subprocess (which this venv cannot import),
# are left out.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 2 ] || { echo "usage: scripts/mutation.sh MODULE TEST_PATH..." >&2; exit 2; }
MODULE="$1"; shift
[ -d "$ROOT/.venv" ] || { echo "mutation: run scripts/setup.sh first" >&2; exit 2; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 -m venv "$WORK/venv"
"$ROOT/.venv/bin/python" -c 'import site; print(site.getsitepackages()[0])' > "$WORK/venv/lib/python3.11/site-packages/sr2fhir-deps.pth"
"$WORK/venv/bin/pip" install -q "mutmut==3.8.1"
git clone -q "$ROOT" "$WORK/repo"
ln -s "$(cd "$ROOT/.." && pwd)/shared" "$WORK/repo/shared"   # tests read ../shared from mutants/
TESTS=$(printf '"%s", ' "$@")
cat >> "$WORK/repo/pyproject.toml" <<TOML

[tool.mutmut]
source_paths = ["src/sr2fhir"]
also_copy = ["tests/", "scripts/", "examples/", "docs/", "validator/", "README.md"]
pytest_add_cli_args_test_selection = [${TESTS%, }]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-k", "not generator_output and not hash_seed"]
TOML
cd "$WORK/repo"
SR2FHIR_GENERATED_SEEDS="${SR2FHIR_GENERATED_SEEDS:-20}" "$WORK/venv/bin/mutmut" run "$MODULE*" > "$WORK/run.log" 2>&1 || { tail -30 "$WORK/run.log"; exit 1; }
"$WORK/venv/bin/mutmut" results --all true 2>/dev/null | grep "^ *$MODULE\." > "$WORK/results.txt" || true
out="$ROOT/mutation-survivors-$MODULE.txt"
: > "$out"
for m in $(grep ": survived" "$WORK/results.txt" | awk -F: '{print $1}'); do
  "$WORK/venv/bin/mutmut" show "$m" >> "$out" 2>/dev/null || true
done
python3 - "$WORK/results.txt" <<'PY'
import collections, sys
counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    name, _, status = line.strip().rpartition(": ")
    module = name.split(".x_")[0].split(".xǁ")[0]  # mutmut 3 names: module.x_function__mutmut_N, module.xǁClassǁmethod__mutmut_N
    counts[module][status] += 1
for module, c in sorted(counts.items()):
    k, s = c["killed"], c["survived"]
    other = sum(c.values()) - k - s
    print(f"{module}: {k} killed, {s} survived, {other} other; kill rate {100 * k / max(1, k + s):.0f}%")
PY
echo "survivors: $out"
