"""Crash injection at scale: SIGKILL `dunning send` at hundreds of randomised points across the three simulators.

Each scenario is a fresh world (one simulator a day, Exact, Moneybird and Xero in turn, seeded with the demo's book
and served on 127.0.0.1 by this process), synced once, then sent with the sending process killed at a random point (just before a
platform write, right after its answer, around each outbox commit) up to `--kills-per-day` times, then sent until a
send completes, then once more. Prints, per platform: due reminders, mailed exactly once, duplicates, silently
lost (both must be 0), reminders a kill left in doubt where the platform cannot tell (an open task, mailed once or
not at all; 0 too, as each simulator can tell), and the mails of the extra send (must be 0). About 1 s per kill
point.

    .venv/bin/python bench/send_crash.py --kills 500
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.connector.delivery.crashkit import Figures, scenario  # noqa: E402

PLATFORMS = ("exact", "moneybird", "xero")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=500, help="stop after this many kill points (default 500)")
    parser.add_argument("--kills-per-day", type=int, default=6)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    total = Figures()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        while sum(total.kills.values()) < args.kills:
            platform = PLATFORMS[total.scenarios % len(PLATFORMS)]  # one platform a day: short sends, more kills
            total.add(scenario(Path(folder) / f"s{total.scenarios}", rng, max_kills=args.kills_per_day,
                               platforms=[platform]))
            print(f"\r{total.scenarios} days, {sum(total.kills.values())} kill points", end="", file=sys.stderr)
    print(file=sys.stderr)
    print(f"{total.scenarios} simulated days, {sum(total.kills.values())} kill points in "
          f"{time.monotonic() - started:.0f} s; kill points by place: {dict(sorted(total.kills.items()))}")
    print(f"{'platform':<10} {'due':>6} {'once':>6} {'dupes':>6} {'lost':>6} {'in doubt':>9}")
    for platform in sorted(total.expected):
        print(f"{platform:<10} {total.expected[platform]:>6} {total.mailed_once[platform]:>6} "
              f"{total.duplicates[platform]:>6} {total.lost[platform]:>6} {total.in_doubt_tasks[platform]:>9}")
    print(f"mails sent by the extra send on the same day: {total.second_send_mails}")
    # every simulator can tell whether a killed send went out (Exact by the document each re-send creates), so a
    # reminder left in doubt is a failure here too
    bad = (sum(total.duplicates.values()) + sum(total.lost.values()) + sum(total.in_doubt_tasks.values())
           + total.second_send_mails)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
