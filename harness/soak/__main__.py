"""``make soak``: one soak run; prints the table, writes ``soak-results/<time>.json``, exits 1 on a violation.

``python -m harness.soak --minutes 20 --seed 7`` (``SOAK_MINUTES`` / ``SOAK_SEED`` in make).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from harness.soak import checker
from harness.soak.run import RESULTS_DIR, soak, write_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0, help="minutes of traffic (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run: the seed it printed")
    parser.add_argument(
        "--requests", type=int, default=None, help="requests (default 12 a minute, 40 at least)"
    )
    parser.add_argument("--faults", type=int, default=None, help="faults to inject (default 1 per 8 s)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep", action="store_true", help="keep the deployment's folder (logs)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    workdir = Path(tempfile.mkdtemp(prefix="credit-bot-soak-"))
    print(f"soak: {args.minutes:g} min, seed {seed}, work folder {workdir}", flush=True)
    result, history = soak(
        args.minutes * 60,
        seed,
        workdir=workdir,
        requests=args.requests,
        faults=args.faults,
        settle_timeout=max(480.0, args.minutes * 30),
        say=lambda line: print(line, flush=True),
    )
    path = write_result(result, history, args.out)
    extra = {
        "traffic / settle / wall": f"{result['traffic_seconds']:.0f} s / {result['settle_seconds']:.0f} s / "
        f"{result['wall_seconds']:.0f} s",
        "DAG runs (failed)": f"{result['runs']} ({result['failed_runs']})",
    }
    print(checker.table(result, extra))
    print(f"written: {path}")
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    if result["violations"]:
        print(f"FAILED: {len(result['violations'])} violation(s); replay with SOAK_SEED={seed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
