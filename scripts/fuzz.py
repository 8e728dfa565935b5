"""Fuzz campaign: convert N mutated reports and count crashes (internal errors, invalid R5 output).

Run: .venv/bin/python scripts/fuzz.py [N] [SEED]     (default 10000 inputs, seed 0)
Seeds are the committed fixtures and the small real reports in ../shared/data/tid1500.
Exit status 1 if any input crashed; the crashing inputs are kept in fuzz-crashes/.
"""

from __future__ import annotations

import collections
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sr2fhir.batch import convert_path  # noqa: E402
from scripts.mutations import check_result, mutate  # noqa: E402

SEEDS = sorted((ROOT / "tests" / "fixtures").glob("*.dcm")) + sorted(
    p for p in (ROOT.parent / "shared" / "data" / "tid1500").glob("*.dcm") if p.stat().st_size < 200_000
)


def limit_memory(gib: int = 4) -> None:
    """Turn a runaway allocation into a MemoryError (a crash we record) rather than the OOM killer."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (gib << 30, gib << 30))


def main(n: int = 10_000, seed: int = 0) -> int:
    limit_memory()
    rng = random.Random(seed)
    seeds = [p.read_bytes() for p in SEEDS]
    outcomes: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    crashes = 0
    crash_dir = ROOT / "fuzz-crashes"
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "input.dcm"
        for i in range(n):
            data = rng.choice(seeds)
            for _ in range(rng.randint(1, 3)):
                kind, data = mutate(data, rng)
                kinds[kind] += 1
            f.write_bytes(data)
            try:
                result = convert_path(str(f), debug=True)
                check_result(result)
                outcomes[result.error.code if result.error else result.status] += 1
                if result.error and result.error.code == "too-large":
                    raise MemoryError(str(result.error))
            except (Exception, MemoryError):
                crashes += 1
                crash_dir.mkdir(exist_ok=True)
                (crash_dir / f"crash-{seed}-{i}.dcm").write_bytes(data)
                (crash_dir / f"crash-{seed}-{i}.txt").write_text(traceback.format_exc())
    print(f"inputs tried: {n}, crashes: {crashes}, seconds: {time.time() - start:.0f}")
    print("outcomes:", dict(sorted(outcomes.items())))
    print("mutations applied:", dict(sorted(kinds.items())))
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))
