"""Benchmark: sync 20,000 open Moneybird invoices on a virtual clock, against the simulator.

Prints the calls used against the minimum the API allows (two id/version listings plus one POST per 100 changed
invoices) and the virtual time against the rate bound (150 requests per 5 minutes), then the cost of an unchanged
and of a 1 % changed re-sync. Run: `.venv/bin/python bench/moneybird_sync.py [invoices]`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

from providers.base import ConnectionSettings, SyncPage, SyncState, Token
from providers.moneybird import MoneybirdProvider
from providers.moneybird.client import REQUESTS_PER_WINDOW, WINDOW_SECONDS
from providers.moneybird.simulator import MoneybirdSimulator
from providers.tokens import MemoryTokenStore


def rate_bound(calls: int) -> float:
    """The least time `calls` requests can take at 150 per 5-minute window (all but the last window full)."""
    return (max(calls, 1) - 1) // REQUESTS_PER_WINDOW * WINDOW_SECONDS


def run(pages: Iterator[SyncPage], known: dict[str, str | None], debtors: dict[str, str | None]) -> int:
    fetched = 0
    for page in pages:
        fetched += len(page.invoices)
        known.update({i.platform_id: i.version for i in page.invoices if i.is_open})
        debtors.update({d.platform_id: d.version for d in page.debtors})
        for closed in page.closed_invoice_ids:
            known.pop(closed, None)
        if page.problems:
            raise SystemExit(f"unexpected problems: {page.problems[:3]}")
    return fetched


def main(invoices: int = 20_000) -> None:
    real_start = time.perf_counter()
    sim = MoneybirdSimulator(seed=2026, contacts=max(1, invoices // 8), invoices=0)
    contacts = list(sim.administration.contacts.values())
    for n in range(invoices):
        sim.new_invoice(contacts[n % len(contacts)].id, state="late" if n % 3 else "open",
                        invoice_date=sim.today - timedelta(days=5 + n % 700))
    sim.oauth.register_client("bench", "bench-secret", ["http://localhost:8765/callback"])
    tokens = MemoryTokenStore()
    tokens.save("bench", Token.from_response(sim.oauth.grant_tokens("bench"), now=sim.clock.now()))
    settings = ConnectionSettings(name="bench", provider="moneybird", tenant=sim.administration_id,
                                  client_id="bench", client_secret="bench-secret")
    provider = MoneybirdProvider.connect(settings, tokens=tokens, transport=sim.transport(), clock=sim.clock.time,
                                         sleep=sim.clock.sleep)
    known: dict[str, str | None] = {}
    debtors: dict[str, str | None] = {}

    start = sim.clock.time()
    fetched = run(provider.sync(SyncState()), known, debtors)
    calls, elapsed = provider.calls, sim.clock.time() - start
    minimum = 2 + math.ceil(invoices / 100)
    print(f"full sync of {invoices} open invoices: fetched {fetched}, {len(debtors)} debtors")
    print(f"  calls used {calls} / minimum {minimum}  (ratio {calls / minimum:.2f})")
    print(f"  virtual time {elapsed:.0f} s / rate bound {rate_bound(calls):.0f} s "
          f"(150 per {WINDOW_SECONDS:.0f} s, sent as a burst; paced evenly it would be "
          f"{(calls - 1) * WINDOW_SECONDS / 150:.0f} s)")
    assert fetched == invoices and len(known) == invoices

    before = provider.calls
    run(provider.sync(SyncState(open_invoices=known, debtors=debtors)), known, debtors)
    unchanged = provider.calls - before
    print(f"unchanged re-sync: {unchanged} calls (limit: 2 per resource, 4 for invoices + contacts)")
    assert unchanged <= 4

    changed = list(sim.administration.invoices.values())[:: 100][: invoices // 100]
    for invoice in changed:
        sim.partial_payment(invoice.id, "1.00")
    before, start = provider.calls, sim.clock.time()
    refetched = run(provider.sync(SyncState(open_invoices=known, debtors=debtors)), known, debtors)
    print(f"1 % changed re-sync: {refetched} invoices in {provider.calls - before} calls "
          f"(minimum {2 + math.ceil(len(changed) / 100)}), {sim.clock.time() - start:.0f} s virtual")
    print(f"real time for the whole benchmark: {time.perf_counter() - real_start:.1f} s")
    provider.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
