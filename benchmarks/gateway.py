"""The gateway under a stream (issue 12): N small reports by C-STORE through `sr2fhir serve` to a
HAPI FHIR server; sustained reports per second, receipt-to-FHIR latency p50/p95 (from the
queue's own timestamps), and the gateway's memory at start and end.

    .venv/bin/python benchmarks/gateway.py [-n 1000] [--fhir-url URL]

Without --fhir-url it starts HAPI with scripts/hapi-server.sh on a free port (and stops it).
Not a test: it prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.gateway.helpers import GatewayProcess, c_store, variants, wait_for  # noqa: E402
from tests.helpers import FIXTURES, free_port  # noqa: E402


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--paced", type=int, default=100, help="then this many more, sent at half the sustained rate (latency without a backlog)")
    ap.add_argument("--fhir-url")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sr2fhir-gw-bench-"))
    hapi_env = {**os.environ, "SR2FHIR_HAPI_DIR": str(work / "hapi")}
    url = args.fhir_url
    if url is None:
        port = free_port()
        subprocess.run([str(ROOT / "scripts" / "hapi-server.sh"), "start", str(port)], env=hapi_env, check=True)
        url = f"http://127.0.0.1:{port}/fhir"
    try:
        template = FIXTURES / "tid1410_planar_regions.dcm"
        reports = variants(template, work / "in", args.n, f"bench-{time.time_ns()}")
        gw = GatewayProcess(work / "state", url).start()
        assert gw.proc is not None
        time.sleep(2)
        start_rss = rss_mib(gw.proc.pid)
        t0 = time.time()
        statuses = c_store(gw.dicom_port, reports)
        sent = time.time() - t0
        assert set(statuses.values()) == {0}, "not every C-STORE succeeded"
        wait_for("the queue to drain", lambda: gw.counts()["delivered"] + gw.counts()["dead"] >= args.n, 7200, every=2)
        db = sqlite3.connect(work / "state" / "queue.sqlite")
        rows = db.execute("SELECT received_at, delivered_at FROM reports WHERE state = 'delivered'").fetchall()
        span = max(d for _, d in rows) - min(r for r, _ in rows)
        q = statistics.quantiles(sorted(d - r for r, d in rows), n=100)
        paced = variants(template, work / "paced", args.paced, f"paced-{time.time_ns()}")
        gap = 2 * span / len(rows)
        for f in paced:
            assert c_store(gw.dicom_port, [f]) == {f: 0}
            time.sleep(gap)
        wait_for("the paced reports", lambda: gw.counts()["delivered"] + gw.counts()["dead"] >= args.n + args.paced, 7200, every=2)
        end_rss, peak = rss_mib(gw.proc.pid), rss_mib(gw.proc.pid, "VmHWM")
        all_rows = db.execute("SELECT received_at, delivered_at FROM reports WHERE state = 'delivered' ORDER BY received_at").fetchall()
        qp = statistics.quantiles(sorted(d - r for r, d in all_rows[len(rows):]), n=100)
        dead = db.execute("SELECT COUNT(*) FROM reports WHERE state = 'dead'").fetchone()[0]
        gw.terminate()
        print(f"\n{args.n} reports of {template.stat().st_size / 1024:.1f} kB ({template.name} with new UIDs), C-STORE -> sr2fhir serve -> HAPI FHIR (R5, IG validation on)\n")
        print("| measure | value |\n|---|---|")
        print(f"| C-STORE intake (one association, fsync'd before Success) | {args.n / sent:.1f} reports/s |")
        print(f"| sustained delivery, first receipt to last delivery | {len(rows) / span:.2f} reports/s ({span:.0f} s) |")
        print(f"| receipt-to-FHIR latency p50 / p95, the burst (waiting in the queue included) | {q[49]:.1f} s / {q[94]:.1f} s |")
        print(f"| receipt-to-FHIR latency p50 / p95, {args.paced} more at half that rate | {qp[49]:.2f} s / {qp[94]:.2f} s |")
        print(f"| delivered / dead | {len(all_rows)} / {dead} |")
        print(f"| gateway memory: at start / at end / peak (RSS) | {start_rss:.0f} / {end_rss:.0f} / {peak:.0f} MiB |")
    finally:
        if args.fhir_url is None:
            subprocess.run([str(ROOT / "scripts" / "hapi-server.sh"), "stop"], env=hapi_env)


if __name__ == "__main__":
    main()
