"""The chaos soak: the chaos suite's code (tests/chaos) with bigger parameters — by default
≥ 300 sessions and ≥ 100 top-ups with faults throughout — printing the same table.

    python -m benchmarks.chaos                      # the soak, a random seed (printed)
    python -m benchmarks.chaos --seed 7 --sessions 40 --topups 12 --short
Exit code 0 when every invariant held, 1 otherwise."""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys

from tests.chaos.params import ChaosParams
from tests.chaos.run import run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--short", action="store_true", help="the CI suite's parameters")
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--topups", type=int, default=None)
    parser.add_argument("--expiring", type=int, default=None, help="never-paid top-ups")
    parser.add_argument("--paid-after-expiry", type=int, default=None)
    parser.add_argument("--stations", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    params = ChaosParams.short(seed) if args.short else ChaosParams.soak(seed)
    for name, value in (
        ("sessions", args.sessions),
        ("topups", args.topups),
        ("expiring_topups", args.expiring),
        ("paid_after_expiry", args.paid_after_expiry),
        ("stations", args.stations),
    ):
        if value is not None:
            setattr(params, name, value)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"commit {commit or 'unknown'}; {' '.join(sys.argv)}", flush=True)
    report = asyncio.run(run_chaos(params, log=lambda line: print(line, flush=True)))
    print(report.table())
    return 0 if report.holds else 1


if __name__ == "__main__":
    sys.exit(main())
