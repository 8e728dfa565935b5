#!/usr/bin/env bash
# A HAPI FHIR JPA server (R5, H2 database) on 127.0.0.1 for trying sr2fhir end to end and for the
# integration tests. Built from Maven Central by hapi/pom.xml (our launcher), with request
# validation against the IG's profiles (../shared/ig-package); with --fhir-version R4, an R4 server
# validating against FHIR R4 (docs/r4.md).
#
#   scripts/hapi-server.sh start [PORT] [--fhir-version R4]   build if needed, start, wait until it answers (default port 8089)
#   scripts/hapi-server.sh stop [PORT]    stop it
#   scripts/hapi-server.sh status [PORT]  print its base URL, or exit 1
#
# Environment: SR2FHIR_HAPI_DIR (state folder: pid, log, port, version; default .hapi/PORT, one
# per port, so that servers on two ports run side by side), SR2FHIR_HAPI_DB (an H2 file to keep
# data between runs; default: in memory), SR2FHIR_IG (compiled IG folder; default ../shared/ig-package).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IG="${SR2FHIR_IG:-$ROOT/../shared/ig-package}"
CMD="${1:-}"
[ $# -gt 0 ] && shift
PORT=8089
VERSION=R5
while [ $# -gt 0 ]; do
  case "$1" in
    --fhir-version) VERSION="${2:-}"; shift 2 ;;
    *) PORT="$1"; shift ;;
  esac
done
case "$PORT" in ''|*[!0-9]*) echo "hapi-server: the port must be a number, not '$PORT'" >&2; exit 2 ;; esac
STATE="${SR2FHIR_HAPI_DIR:-$ROOT/.hapi/$PORT}"
mkdir -p "$STATE"

running() { [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }
url() { echo "http://127.0.0.1:$(cat "$STATE/port")/fhir"; }

case "$CMD" in
start)
  case "$VERSION" in R5|R4) ;; *) echo "hapi-server: --fhir-version R5 or R4, not '$VERSION'" >&2; exit 2 ;; esac
  if running; then
    have_port="$(cat "$STATE/port" 2>/dev/null || true)"; have_version="$(cat "$STATE/version" 2>/dev/null || echo R5)"
    if [ "$have_port" = "$PORT" ] && [ "$have_version" = "$VERSION" ]; then echo "already running at $(url) (FHIR $VERSION)"; exit 0; fi
    echo "hapi-server: $STATE already runs a FHIR $have_version server at $(url); it is not the FHIR $VERSION server on port $PORT asked for." >&2
    echo "hapi-server: stop it first (scripts/hapi-server.sh stop $have_port), or give this one its own SR2FHIR_HAPI_DIR" >&2
    exit 1
  fi
  [ -d "$IG/snapshots" ] || { echo "hapi-server: no compiled IG at $IG" >&2; exit 1; }
  command -v mvn >/dev/null && command -v java >/dev/null || { echo "hapi-server: needs Java 17 and Maven" >&2; exit 1; }
  if ! build="$(cd "$ROOT/hapi" && mvn -q -B compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt 2>&1)"; then
    echo "hapi-server: the Maven build failed:" >&2; echo "$build" >&2; exit 1
  fi
  echo "$PORT" > "$STATE/port"
  echo "$VERSION" > "$STATE/version"
  ARGS=("$PORT" "$IG")
  [ -n "${SR2FHIR_HAPI_DB:-}" ] && ARGS+=("$SR2FHIR_HAPI_DB")
  : > "$STATE/server.log"  # before the background start, so that an old "ready" cannot be read
  nohup java -Xmx3g -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dsr2fhir.fhirVersion="$VERSION" \
    -Dsr2fhir.xverStandins="$ROOT/validator/xver-standins" \
    -Dsr2fhir.knownIgDefects="$ROOT/src/sr2fhir/known_ig_defects.json" \
    -cp "$ROOT/hapi/target/classes:$(cat "$ROOT/hapi/target/classpath.txt")" \
    sr2fhir.hapi.Launcher "${ARGS[@]}" >> "$STATE/server.log" 2>&1 &
  echo $! > "$STATE/pid"
  start=$SECONDS
  until grep -q "sr2fhir-hapi: ready" "$STATE/server.log" 2>/dev/null; do
    if ! running; then echo "hapi-server: the server exited; see $STATE/server.log" >&2; tail -5 "$STATE/server.log" >&2; exit 1; fi
    if (( SECONDS - start > 600 )); then echo "hapi-server: not ready after 600 s; see $STATE/server.log" >&2; exit 1; fi
    sleep 1
  done
  echo "HAPI FHIR $VERSION ready at $(url) (started in $((SECONDS - start)) s)"
  ;;
stop)
  if running; then
    pid="$(cat "$STATE/pid")"; kill "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/pid"
  ;;
status)
  running && url || { echo "not running" >&2; exit 1; }
  ;;
*)
  cat >&2 <<'USAGE'
usage: scripts/hapi-server.sh start [PORT] [--fhir-version R4]   build if needed, start on 127.0.0.1, wait until it
                                        answers (default port 8089; default FHIR R5, with the IG's profiles)
       scripts/hapi-server.sh stop [PORT]    stop it
       scripts/hapi-server.sh status [PORT]  print its base URL, or exit 1
environment: SR2FHIR_HAPI_DIR (state folder, default .hapi/PORT), SR2FHIR_HAPI_DB (an H2 file to keep
data between runs; default in memory), SR2FHIR_IG (compiled IG folder; default ../shared/ig-package)
USAGE
  exit 2
  ;;
esac
