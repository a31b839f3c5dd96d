"""Benchmark: sync 20,000 open Exact Online receivables from the simulator on a virtual clock.

Prints the API calls used against two minimums: the open set alone (every open payment term and every debtor
account at 1,000 a call, as bulk would read them, but leaving no change-feed cursor) and the open set with a cursor
(the whole payment-term feed once, paid history included, as Exact documents no other way to its tail; see
providers/exact/__init__.py), the virtual time against the 60-calls-a-minute bound, and the cost of an incremental
sync after a day's payments and of an unchanged sync (at most 2 calls). Run: .venv/bin/python bench/exact_sync.py [--invoices N]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.models import Debtor, Invoice
from providers.base import ConnectionSettings, SyncState, Token
from providers.exact import ExactProvider
from providers.exact.simulator import ExactSimulator
from providers.tokens import MemoryTokenStore

DIVISION = 123456
REDIRECT = "https://localhost:8765/callback"




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=4_000)
    parser.add_argument("--paid", type=int, default=10_000, help="invoices already paid (history in the feed)")
    args = parser.parse_args()

    started = time.perf_counter()
    sim = ExactSimulator.seeded(division=DIVISION, accounts=args.accounts, invoices=args.invoices)
    accounts = list(sim.divisions[DIVISION].accounts)
    for n in range(args.paid):
        paid = sim.new_invoice(DIVISION, accounts[n % len(accounts)], "100.00")
        sim.pay(DIVISION, paid.InvoiceID)
    sim.oauth.register_client("app", "s3cret", [REDIRECT])
    tokens = MemoryTokenStore({"bench": Token.from_response(sim.oauth.grant_tokens("app"), now=sim.clock.now())})
    settings = ConnectionSettings(name="bench", provider="exact", tenant=str(DIVISION), client_id="app",
                                  client_secret=SecretStr("s3cret"), redirect_uri=REDIRECT)
    provider = ExactProvider.connect(settings, tokens=tokens, transport=sim.transport(), clock=sim.clock.time,
                                     sleep=sim.clock.sleep)
    data = sim.divisions[DIVISION]
    open_terms = sum(1 for t in data.terms.values() if t.Status != 50 and t.LineType != 22)
    all_terms = len(data.terms)
    seeded_in = time.perf_counter() - started

    invoices: dict[str, Invoice] = {}
    debtors: dict[str, Debtor] = {}
    cursor = None

    def run(label: str) -> int:
        nonlocal cursor
        before, clock_before = provider.calls, sim.clock.time()
        state = SyncState(cursor=cursor, open_invoices={k: v.version for k, v in invoices.items() if v.is_open},
                          debtors={k: v.version for k, v in debtors.items()})
        problems = 0
        for page in provider.sync(state):
            invoices.update({i.platform_id: i for i in page.invoices})
            debtors.update({d.platform_id: d for d in page.debtors})
            for closed in page.closed_invoice_ids:
                invoices[closed] = invoices[closed].model_copy(update={"is_open": False})
            problems += len(page.problems)
            cursor = page.cursor or cursor
        calls = provider.calls - before
        minutes = (sim.clock.time() - clock_before) / 60
        bound = max(0, math.ceil(calls / 60) - 1)
        print(f"{label:<28} {calls:>5} calls   virtual time {minutes:6.2f} min (60/min bound ≥ {bound} min)"
              f"   problems {problems}")
        return calls

    print(f"seeded {args.invoices} open and {args.paid} paid invoices, {args.accounts} accounts, {all_terms} payment terms "
          f"({open_terms} open) in {seeded_in:.1f} s")
    wall = time.perf_counter()
    first = run("first sync")
    wall = time.perf_counter() - wall
    open_now = sum(1 for i in invoices.values() if i.is_open)
    needed = {i.debtor_id for i in invoices.values() if i.is_open}
    without_email = sum(1 for a in data.accounts.values() if not a.Email and a.ID in needed)
    contact_batches = math.ceil(without_email / 40)
    minimum = math.ceil(open_terms / 1000) + math.ceil(len(needed) / 1000) + contact_batches
    anchored = math.ceil(all_terms / 1000) + math.ceil(len(data.accounts) / 1000) + contact_batches
    print(f"  {open_now} open invoices, {len(debtors)} debtors; wall time {wall:.1f} s")
    print(f"  calls {first} vs minimum {minimum} for the open set alone, without a cursor (ratio "
          f"{first / minimum:.2f}); vs minimum {anchored} for the open set with a change-feed cursor (ratio "
          f"{first / anchored:.2f}); both include {contact_batches} main-contact batches for {without_email} "
          "accounts without e-mail")

    for invoice_id in list(invoices)[:150]:
        sim.pay(DIVISION, invoice_id, None if len(invoice_id) % 2 else Decimal("1.00"))
    sim.clock.advance(3600)
    run("after 150 payments")
    unchanged = run("unchanged")
    print(f"unchanged second sync: {unchanged} calls ({'OK' if unchanged <= 2 else 'TOO MANY'}: at most 2)")


if __name__ == "__main__":
    main()
