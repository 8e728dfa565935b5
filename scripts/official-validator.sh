#!/usr/bin/env bash
# The HL7 FHIR validator (Maven Central) as an independent judge, offline, no terminology server.
# Usage: scripts/official-validator.sh [--fhir-version R4] FILE.json...   (Bundles or resources; prints a summary)
# R5 (default): FHIR 5.0.0 and the IG's profiles. R4: FHIR 4.0.1 core, terminology and extensions
# (docs/r4.md says what that checks).
# Output: validator-report.tsv (file, severity, location, message); exit 1 if any error that
# src/sr2fhir/known_ig_defects.json does not explain.
# Needs Java 17, Maven, npm, and ../shared/ig-package (the IG compiled as hl7.fhir.uv.dicom-sr#1.0.0).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION=R5
if [ "${1:-}" = "--fhir-version" ]; then VERSION="$2"; shift 2; fi
case "$VERSION" in R5|R4) ;; *) echo "official-validator: --fhir-version R5 or R4, not $VERSION" >&2; exit 2;; esac
CACHE="$ROOT/.fhir-cache"                 # used as user.home: packages in $CACHE/.fhir/packages
PKG="$CACHE/.fhir/packages"
IG="${SR2FHIR_IG:-$ROOT/../shared/ig-package}"
mkdir -p "$PKG"

install_npm() {  # name version: unpack an npm copy of a FHIR package into the cache
  local dir="$PKG/$1#$2"
  [ -f "$dir/package/package.json" ] && return
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$1@$2" >/dev/null)
  mkdir -p "$dir" && tar xzf "$tmp"/*.tgz -C "$dir" && rm -rf "$tmp"
}
install_npm hl7.fhir.r5.core 5.0.0
install_npm hl7.terminology.r5 7.0.1
install_npm hl7.fhir.uv.extensions.r5 5.3.0-ballot-tc1
install_npm hl7.fhir.xver-extensions 0.1.0
install_npm hl7.terminology.r4 7.0.1
install_npm hl7.fhir.uv.extensions.r4 5.3.0-ballot-tc1
# The npm copies of terminology and extensions name each other at versions npm does not carry.
for p in "hl7.terminology.r5#7.0.1" "hl7.fhir.uv.extensions.r5#5.3.0-ballot-tc1" "hl7.terminology.r4#7.0.1" "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1"; do
  python3 - "$PKG/$p/package/package.json" <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p))
d["dependencies"] = {k: v for k, v in d.get("dependencies", {}).items() if k in ("hl7.fhir.r5.core", "hl7.fhir.r4.core")}
json.dump(d, open(p, "w"))
PY
done
# The IG: SUSHI output with snapshots (snapshots/ replace the differential-only profiles).
IGDIR="$PKG/hl7.fhir.uv.dicom-sr#1.0.0/package"
rm -rf "$IGDIR" && mkdir -p "$IGDIR"
cp "$IG/package.json" "$IG"/resources/*.json "$IGDIR/" && cp "$IG"/snapshots/*.json "$IGDIR/"


cd "$ROOT/validator"
mvn -q -B compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
cd "$ROOT"
CP="validator/target/classes:$(cat validator/target/classpath.txt)"
# FHIR R4 core: npm no longer carries hl7.fhir.r4.core; Maven Central's HAPI R4 definitions do.
R4CORE="$PKG/hl7.fhir.r4.core#4.0.1/package"
[ -f "$R4CORE/package.json" ] || java -cp "$CP" sr2fhir.R4CorePackage "$R4CORE"
# Stand-ins for two cross-version definitions the validator cannot build itself (their files say
# why), and the IG's CodeSystems, which R4 output still uses (the identifier types).
XV="$PKG/sr2fhir.xver-r5.r4-standins#0.1.0/package"
rm -rf "$XV" && mkdir -p "$XV"
cp validator/xver-standins/*.json "$XV/"
cp "$IG"/resources/CodeSystem-*.json "$XV/"
cat > "$XV/package.json" <<'JSON'
{"name": "sr2fhir.xver-r5.r4-standins", "version": "0.1.0", "type": "IG", "fhirVersions": ["4.0.1"], "dependencies": {"hl7.fhir.r4.core": "4.0.1"}}
JSON
# sr2fhir's own extensions (D-51), as scripts/make_extensions_package.py generated them.
for v in r5 r4; do
  OWN="$PKG/sr2fhir.extensions.$v#0.1.0/package"
  rm -rf "$OWN" && mkdir -p "$OWN" && cp "$ROOT/src/sr2fhir/fhir/package/$v"/*.json "$OWN/"
done
ARGS=()
[ "$VERSION" = R4 ] && ARGS=(-version 4.0.1)
java -Xmx4g -Duser.home="$CACHE" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$CP" sr2fhir.OfficialValidator "${ARGS[@]}" "$@" > validator-report.tsv
python3 - validator-report.tsv "$ROOT/src/sr2fhir/known_ig_defects.json" <<'PY'
import collections, json, re, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by_sev = collections.Counter(r[1] for r in rows)
print(f"official validator: {len(set(r[0] for r in rows))} file(s); " + ", ".join(f"{n} {s}" for s, n in sorted(by_sev.items())))
kinds = collections.Counter((r[1], re.sub(r"'[^']*'|\([^)]*\)|urn:uuid:\S+", "X", r[3])) for r in rows if r[1] in ("error", "fatal", "warning"))
for (sev, msg), n in kinds.most_common():
    print(f"  {n:6} {sev}: {msg[:200]}")
# Errors that known IG defects cause (src/sr2fhir/known_ig_defects.json, the list sr2fhir and the
# HAPI launcher use too; docs/conformance.md); anything else fails.
KNOWN = [(d["id"], m) for d in json.load(open(sys.argv[2]))["defects"] for m in d["messages"]]
unexplained = 0
for r in rows:
    if r[1] in ("error", "fatal"):
        known = next((i for i, m in KNOWN if m in r[3]), None)
        unexplained += known is None
        print(f"KNOWN-ERROR ({known})" if known else "ERROR", r[0], r[2], r[3][:300])
print(f"errors not explained in docs/conformance.md: {unexplained}")
sys.exit(1 if unexplained else 0)
PY
