"""Benchmark: sync 20,000 open Xero invoices from the simulator on a virtual clock.

Prints the API calls used against the minimum the API allows (invoice pages of 1,000 plus the cheaper of contact
pages of 1,000 or id batches of 50), the virtual time against the bound (1 s a call, 5 calls at once, 60 calls a
minute per organisation: see bench/sync_latency.py for the clock and the bound) and the day budget (5,000; 1,000
on the Starter tier), then the cost of an unchanged and of a 1 % changed re-sync (an unchanged one must cost at
most 2 calls), and, for contrast, the same book read with Xero's default page size of 100, where the minute limit
sets the pace.
Run: `.venv/bin/python bench/xero_sync.py [invoices] [contacts]`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from providers.base import ConnectionSettings, SyncPage, SyncState, Token
from providers.tokens import MemoryTokenStore
from providers.xero import XeroProvider, client
from providers.xero.simulator import XeroSimulator
from sync_latency import EventClock, LatencyTransport, bound, xero_level

LATENCY = 1.0
"""Virtual seconds one API call takes (a page of 1,000 invoices takes seconds on the real platform)."""




class Book:
    """What a store would hold: open invoice versions, debtor versions, the cursor."""

    def __init__(self) -> None:
        self.open: dict[str, str | None] = {}
        self.debtors: dict[str, str | None] = {}
        self.cursor: str | None = None

    def state(self, *, full: bool = False) -> SyncState:
        return SyncState(cursor=None if full else self.cursor, open_invoices=self.open, debtors=self.debtors,
                         full=full)

    def write(self, pages: Iterator[SyncPage]) -> int:
        fetched = 0
        for page in pages:
            if page.problems:
                raise SystemExit(f"unexpected problems: {page.problems[:3]}")
            fetched += len(page.invoices)
            for invoice in page.invoices:
                if invoice.is_open:
                    self.open[invoice.platform_id] = invoice.version
                else:
                    self.open.pop(invoice.platform_id, None)
            for closed in page.closed_invoice_ids:
                self.open.pop(closed, None)
            self.debtors.update({d.platform_id: d.version for d in page.debtors})
            self.cursor = page.cursor or self.cursor
        return fetched


def rate_bound(calls: int, per_minute: int = 60) -> float:
    """The least time `calls` requests can take at `per_minute` (every minute but the last one full)."""
    return (max(calls, 1) - 1) // per_minute * 60.0


def connect(sim: XeroSimulator, clock: EventClock) -> tuple[XeroProvider, LatencyTransport]:
    tokens = MemoryTokenStore()
    tokens.save("bench", Token.from_response(sim.grant(), now=sim.clock.now()))
    settings = ConnectionSettings(name="bench", provider="xero", tenant=sim.org.tenant_id, client_id="dunning-app",
                                  client_secret="app-secret", api_url="http://xero.sim",
                                  token_url="http://xero.sim/connect/token")
    transport = LatencyTransport(sim.transport(), clock, xero_level, latency=lambda response: LATENCY)
    provider = XeroProvider.connect(settings, tokens=tokens, transport=transport, clock=clock.time, sleep=clock.sleep)
    return provider, transport


def least_time(provider: XeroProvider, transport: LatencyTransport) -> float:
    profile = provider.api.profile
    return bound(transport.calls, profile.windows, profile.max_in_flight)


def main(invoices: int = 20_000, contacts: int = 2_500) -> None:
    real_start = time.perf_counter()
    clock = EventClock(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
    sim = XeroSimulator(clock)
    sim.register_app()
    sim.seed_book(seed=2026, open_invoices=invoices, contacts=contacts, closed_invoices=invoices // 20,
                  bills=invoices // 100, drafts=invoices // 200)
    provider, transport = connect(sim, clock)
    book = Book()

    start = sim.clock.time()
    fetched = book.write(provider.sync(book.state()))
    calls, elapsed = provider.calls, sim.clock.time() - start
    debtors = len({i.contact_id for i in sim.org.open_invoices()})
    contact_calls = min(math.ceil(len(sim.org.contacts) / client.PAGE_SIZE), math.ceil(debtors / client.IDS_PER_CALL))
    minimum = math.ceil(invoices / client.PAGE_SIZE) + contact_calls
    print(f"full sync of {invoices} open invoices ({debtors} debtors among {len(sim.org.contacts)} contacts): "
          f"fetched {fetched}, {len(book.debtors)} debtors stored")
    print(f"  calls used {calls} / minimum {minimum}  (ratio {calls / minimum:.2f}): "
          f"{sim.call_count('/api.xro/2.0/Invoices')} invoice pages, {sim.call_count('/api.xro/2.0/Contacts')} "
          "contact calls")
    print(f"  virtual time {elapsed:.0f} s / bound {least_time(provider, transport):.0f} s (rate limit "
          f"{rate_bound(calls):.0f} s at 60 a minute; {LATENCY:.1f} s a call, 5 at once)")
    print(f"  day budget used: {calls} of 5,000 ({calls / 50:.1f} %), of 1,000 on Starter ({calls / 10:.1f} %)")
    assert fetched == invoices and len(book.open) == invoices

    before = provider.calls
    book.write(provider.sync(book.state()))
    unchanged = provider.calls - before
    print(f"unchanged re-sync: {unchanged} calls (limit 2)")
    assert unchanged <= 2

    sim.clock.advance(3600)
    changed = sim.org.open_invoices()[::100]
    for n, invoice in enumerate(changed):
        if n % 2:
            sim.org.pay(invoice.invoice_id)
        else:
            sim.org.pay(invoice.invoice_id, "1.00")
    before, start = provider.calls, sim.clock.time()
    refetched = book.write(provider.sync(book.state()))
    print(f"1 % changed re-sync: {refetched} invoices in {provider.calls - before} calls "
          f"(minimum {1 + math.ceil(len(changed) / client.PAGE_SIZE)}), {sim.clock.time() - start:.0f} s virtual; "
          f"{len(book.open)} open now")
    assert len(book.open) == len(sim.org.open_invoices())
    provider.close()

    client.PAGE_SIZE = 100  # Xero's default page size, for contrast
    sim.clock.advance(60)  # a fresh minute window
    slow, slow_transport = connect(sim, clock)
    slow_book = Book()
    start = sim.clock.time()
    slow_book.write(slow.sync(slow_book.state()))
    slow_calls, slow_elapsed = slow.calls, sim.clock.time() - start
    slow_bound = least_time(slow, slow_transport)
    print(f"the same full sync with pages of 100: {slow_calls} calls, virtual time {slow_elapsed:.0f} s / bound "
          f"{slow_bound:.0f} s (rate limit {rate_bound(slow_calls):.0f} s at 60 a minute)  "
          f"(ratio {slow_elapsed / slow_bound:.2f})")
    slow.close()
    clock.close()
    print(f"real time for the whole benchmark: {time.perf_counter() - real_start:.1f} s")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
