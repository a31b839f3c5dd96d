"""Platform calls per reminder sent: a day with 300 due reminders per platform, against each simulator.

Each platform's simulator holds 300 debtors with one overdue invoice each; after a sync, `dunning send` (the
delivery for that connection) mails them all. Prints, per platform, the reminders sent, the platform calls the send
made (the batched re-check, the mails, their notes) and the calls per reminder. Xero runs on the free tier's
1,000 calls a day, where delivery must stay at or below 2.05 calls a reminder.

    .venv/bin/python bench/send_calls.py [--reminders 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector import plugins  # noqa: E402
from connector.config import load_config  # noqa: E402
from connector.delivery import send_all  # noqa: E402
from connector.simworld import CLIENT_ID, SECRET, SECRET_ENV, Place, World  # noqa: E402
from connector.store import Store  # noqa: E402
from connector.sync import sync_all  # noqa: E402
from providers.simkit import Book, BookDebtor, BookInvoice, VirtualClock  # noqa: E402
from providers.tokens import MemoryTokenStore  # noqa: E402

START = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)


def book(size: int) -> Book:
    issued = START.date() - timedelta(days=40)
    return Book("Bench B.V.", tuple(
        BookDebtor(f"d{n}", f"Klant {n} B.V.", "business", "NL", f"debiteuren@klant{n}.example", f"Straat {n}",
                   "1011 AA", "Amsterdam", kvk=f"{10000000 + n}",
                   invoices=(BookInvoice(f"i{n}", Decimal("100.00") + n, issued, 30),))
        for n in range(size)))


def measure(platform: str, size: int, folder: Path) -> tuple[int, int]:
    clock = VirtualClock(START)
    simulator = plugins.simulator_class(platform).empty(clock)
    if platform == "xero":
        from providers.simkit import RateWindows, Window

        simulator.tenant_windows = RateWindows(clock, [Window("minute", 60, 60), Window("day", 1000, 86400)])
    seeded = simulator.seed(book(size))
    redirect = "https://127.0.0.1:8765/callback" if platform == "exact" else "http://127.0.0.1:8765/callback"
    simulator.register_app(CLIENT_ID, SECRET, redirect)
    world = World(clock, [Place(0, platform, f"bench-{platform}", simulator, seeded, redirect_uri=redirect)])
    tokens = MemoryTokenStore()
    world.grant(tokens)
    config = load_config(world.write_config(folder / f"{platform}.toml", store_url=f"sqlite:///{platform}.sqlite"))
    with Store.open(config.store_url, clock=clock.now) as store:
        sync_all(config, store, tokens, connect=world.connect(tokens))
        # sync used part of the day; count the send alone, on a fresh day budget
        clock.advance(86400 - (clock.time() % 86400) + 7 * 3600)
        [summary] = send_all(config, store, tokens, as_of=START.date(), emit=lambda outcome: None,
                             connect=world.connect(tokens))
    assert summary.error is None and summary.failed == 0, summary
    return summary.sent, summary.api_calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=300)
    args = parser.parse_args()
    os.environ[SECRET_ENV] = SECRET
    print(f"{'platform':<10} {'reminders':>9} {'calls':>6} {'calls/reminder':>15}")
    worst = {}
    with tempfile.TemporaryDirectory() as folder:
        for platform in ("exact", "moneybird", "xero"):
            sent, calls = measure(platform, args.reminders, Path(folder))
            worst[platform] = calls / sent
            print(f"{platform:<10} {sent:>9} {calls:>6} {calls / sent:>15.3f}")
    ok = worst["xero"] <= 2.05
    print(f"Xero on the free tier (1,000 calls a day): {worst['xero']:.3f} calls a reminder "
          f"({'within' if ok else 'ABOVE'} the 2.05 target)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
