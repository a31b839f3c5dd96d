"""Wall time of `dunning run` over 1, 5 and 20 connections against the simulators, each platform call taking a
fixed network latency: connections are worked at the same time, so 20 should take about as long as the slowest
one, not twenty times one.

    .venv/bin/python bench/run_connections.py [--latency 0.05] [--counts 1,5,20] [--workers 8]

Each count gets a fresh world (its own simulators, each seeded with a book of its own) and store; the first run of
a day does the full sync and the day's first reminders, the second is the next morning (incremental sync, the
follow-ups). Prints one line per count and the ratio to a single connection.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.config import load_config  # noqa: E402
from connector.job import MAX_WORKERS, RunSummary, run_job  # noqa: E402
from connector.simworld import SECRET, SECRET_ENV, World, next_morning  # noqa: E402
from connector.store import Store  # noqa: E402
from providers.tokens import MemoryTokenStore  # noqa: E402

START = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)


class Latency(httpx.BaseTransport):
    """Every call waits `seconds` of real time, as a round trip over the internet does."""

    def __init__(self, inner: httpx.BaseTransport, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        time.sleep(self.seconds)
        return self.inner.handle_request(request)


def measure(count: int, latency: float, workers: int, folder: Path,
            store_url: str) -> tuple[float, float, list[RunSummary]]:
    world = World.build(START, connections=count)
    tokens = MemoryTokenStore()
    world.grant(tokens)
    config = load_config(world.write_config(folder / "dunning.toml", store_url=store_url))
    connect = world.connect(tokens, wrap=lambda inner: Latency(inner, latency))
    timings, summaries = [], []
    with Store.open(config.store_url, clock=world.clock.now) as store:
        for _day in range(2):
            started = time.monotonic()
            summary = run_job(config, store, tokens, as_of=world.today, connect=connect, workers=workers)
            timings.append(time.monotonic() - started)
            summaries.append(summary)
            if not summary.ok:
                raise SystemExit(f"{count} connections: a run failed: {[d.error for d in summary.days if d.error]}")
            world.advance_to(next_morning(world.clock.now()))
    return timings[0], timings[1], summaries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per platform call (default 0.05)")
    parser.add_argument("--counts", default="1,5,20", help="connection counts (default 1,5,20)")
    parser.add_argument("--workers", type=int, default=MAX_WORKERS, help=f"pool size (default {MAX_WORKERS})")
    parser.add_argument("--store", default="sqlite:///dunning.sqlite",
                        help="the store URL (default: a fresh SQLite file; a PostgreSQL URL must name an empty "
                             "database or schema)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    os.environ[SECRET_ENV] = SECRET
    counts = [int(c) for c in args.counts.split(",")]
    print(f"dunning run against the simulators, {args.latency * 1000:.0f} ms per platform call, "
          f"{args.workers} workers")
    print(f"{'connections':>11} {'first day (s)':>14} {'reminders':>10} {'calls':>6} {'next day (s)':>13} "
          f"{'calls':>6} {'first day vs one':>17}")
    single = None
    for count in counts:
        with tempfile.TemporaryDirectory() as folder:
            first, second, (day1, day2) = measure(count, args.latency, args.workers, Path(folder), args.store)
        single = single or first
        print(f"{count:>11} {first:>14.2f} {day1.total('sent'):>10} {day1.total('api_calls'):>6} {second:>13.2f} "
              f"{day2.total('api_calls'):>6} {first / single:>16.2f}x")
    print("(worked one after another, N connections would take about N x the first line)")


if __name__ == "__main__":
    main()
