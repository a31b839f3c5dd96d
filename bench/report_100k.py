"""Benchmark: `dunning report` over 100,000 open invoices (target: under 10 s).

    .venv/bin/python bench/report_100k.py [--invoices N] [--db PATH]

Generates a SQLite store with bulk inserts (10,000 debtors; open invoices of every age, a fifth of them closed
again, reminders on a third with payments after some, holds and arrangements on a few), then times the whole
report (reading the store, the figures, the charts, the page, the atomic write) and prints the time, the page's
size and whether the target was met.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from connector.escalation.policy import Policy
from connector.models import Debtor, Invoice
from connector.report import build_report
from connector.store import Store, schema
from connector.store.rows import debtor_values, invoice_values

AS_OF = date(2026, 12, 4)
TARGET_SECONDS = 10.0
PER_DEBTOR = 10


def generate(url: str, invoices: int) -> None:
    rng = random.Random(7)
    started = datetime(2025, 12, 1, 7, 0, tzinfo=UTC)
    with Store.open(url) as store, store.engine.begin() as conn:
        store_connection = {"name": "acme", "provider": "xero", "tenant": "T1", "needs_reauth": False,
                            "created_at": started}
        conn.execute(schema.connections.insert(), [store_connection])
        debtor_rows = []
        for n in range(invoices // PER_DEBTOR + 1):
            debtor = Debtor.model_validate({
                "connection": "acme", "platform_id": f"D{n}", "name": f"Debiteur {n} B.V.",
                "kind": "consumer" if n % 7 == 0 else "business", "emails": (f"d{n}@example.nl",),
                "address": {"lines": ("Keizersgracht 1",), "postal_code": "1015 CJ", "city": "Amsterdam",
                            "country": "NL"}, "version": "1"})
            debtor_rows.append({"connection": "acme", "platform_id": debtor.platform_id, "updated_at": started,
                                **debtor_values(debtor)})
        conn.execute(schema.debtors.insert(), debtor_rows)
        invoice_rows, event_plan = [], []
        for n in range(invoices):
            issued = AS_OF - timedelta(days=rng.randint(1, 360))
            due = issued + timedelta(days=30)
            total = Decimal(rng.randint(5_000, 500_000)) / 100
            closed = n % 5 == 0
            invoice = Invoice.model_validate({
                "connection": "acme", "platform_id": f"I{n}", "number": f"2026-{n:06d}",
                "debtor_id": f"D{n // PER_DEBTOR}", "issue_date": issued, "due_date": due, "currency": "EUR",
                "total": total, "amount_paid": total if closed else Decimal("0.00"),
                "outstanding": Decimal("0.00") if closed else total, "status": "paid" if closed else "open",
                "is_open": not closed, "version": "1"})
            seen = max(started, datetime.combine(issued, datetime.min.time(), UTC))
            closed_at = seen + timedelta(days=rng.randint(5, 60)) if closed else None
            invoice_rows.append({"connection": "acme", "platform_id": invoice.platform_id, "first_seen_at": seen,
                                 "updated_at": seen, "closed_at": closed_at, **invoice_values(invoice)})
            if n % 3 == 0 and due < AS_OF - timedelta(days=3):
                event_plan.append((n, due, closed_at))
        conn.execute(schema.invoices.insert(), invoice_rows)
        ids = dict(conn.execute(select(schema.invoices.c.platform_id, schema.invoices.c.id)).tuples().all())
        events = []
        for n, due, closed_at in event_plan:
            invoice_id = ids[f"I{n}"]
            sent = due + timedelta(days=3)
            events.append({"invoice_id": invoice_id, "kind": "reminder_sent", "on_date": sent, "step": "reminder_1",
                           "data": {}, "recorded_at": started})
            if closed_at is not None:
                events.append({"invoice_id": invoice_id, "kind": "closed", "on_date": closed_at.date(), "step": None,
                               "data": {}, "recorded_at": started})
            elif n % 30 == 0:
                events.append({"invoice_id": invoice_id, "kind": "hold_set", "on_date": sent, "step": None,
                               "data": {"hold": "dispute"}, "recorded_at": started})
        conn.execute(schema.events.insert(), events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=125_000, help="invoices in all (a fifth closed)")
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.db or Path(folder) / "report.sqlite"
        url = f"sqlite:///{path}"
        if not path.exists():
            began = time.perf_counter()
            generate(url, args.invoices)
            print(f"generated {args.invoices:,} invoices in {time.perf_counter() - began:.1f} s")
        out = Path(folder) / "report.html"
        with Store.open(url) as store:
            open_count = store.connection_status()["acme"].open_invoices
            began, cpu = time.perf_counter(), time.process_time()
            build_report(store, Policy(), AS_OF, out, store_url=url, made_at=datetime.now(UTC), lang="nl")
            seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        print(f"report over {open_count:,} open invoices: {seconds:.1f} s ({cpu:.1f} s CPU; the two differ when other "
              f"work shares the machine), {out.stat().st_size / 1024:,.0f} KiB; "
              f"target < {TARGET_SECONDS:.0f} s for 100,000: {'met' if seconds < TARGET_SECONDS else 'NOT met'}")


if __name__ == "__main__":
    main()
