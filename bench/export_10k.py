"""Benchmark: export 10,000 cases at the handoff step (without PDFs) and print cases per second.

    .venv/bin/python bench/export_10k.py [--cases N] [--agency generic-csv|generic-json|incasso-nl|all]

Generates a SQLite store with bulk inserts (not timed): N debtors, 70 % businesses and 30 % consumers, each with one
or two invoices that went through reminders and a notice of default (for consumers the 14-day letter with its text
in the outbox, and a part payment), then times one `export_cases` run per agency format: planning which cases are
due, building every dossier (interest, costs, letter evidence), writing the data file and the manifest, and
recording the handoff (events and outbox notes). Target: under 30 s for 10,000 cases.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from connector.config import Config, parse_config
from connector.escalation.legal import collection_costs
from connector.escalation.texts import format_amount
from connector.handoff import export_cases, load_format, shipped_formats
from connector.store import Store, schema

AS_OF = date(2026, 11, 30)
TARGET_SECONDS = 30.0
LETTER = ("Laatste aanmaning\nU kunt dit bedrag nog zonder extra kosten betalen binnen veertien dagen na de dag "
          "waarop deze brief bij u is bezorgd. Daarna bedragen de incassokosten {costs}.")


def _config(out: Path) -> Config:
    return parse_config({
        "creditor": {"name": "Acme Installaties B.V.", "address_lines": ["Damrak 1"], "postal_code": "1012 LG",
                     "city": "Amsterdam", "iban": "NL91ABNA0417164300"},
        "connections": [{"name": "acme", "provider": "xero", "tenant": "T1", "client_id": "app"}],
        "handoff": {"out_dir": str(out)},
    })


def seed(store: Store, cases: int, seed_value: int = 7) -> None:
    """Debtors, invoices and their histories by bulk insert, all due for the handoff on AS_OF."""
    rng = random.Random(seed_value)
    now = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    store.ensure_connection("acme", "xero", "T1")
    debtors, invoices, events, outbox = [], [], [], []
    invoice_id = 0
    for number in range(cases):
        consumer = number % 10 < 3
        debtor_id = f"D{number:06d}"
        debtors.append({
            "connection": "acme", "platform_id": debtor_id, "name": f"Klant {number} {'B.V.' if not consumer else ''}",
            "kind": "consumer" if consumer else "business", "emails": [f"klant{number}@example.nl"],
            "phone": "020 555 0101", "address": {"lines": [f"Dorpsstraat {number % 300 + 1}"], "postal_code": "1234 AB",
                                                 "city": "Hoorn", "country": "NL"},
            "coc_number": None if consumer else f"{10000000 + number}", "vat_number": None, "language": "nl",
            "contact_person": None, "version": "1", "updated_at": now,
        })
        for _ in range(1 + (number % 4 == 0)):
            invoice_id += 1
            due = date(2026, 8, 1) + timedelta(days=rng.randrange(0, 20))
            total = Decimal(rng.randrange(100_00, 5_000_00)) / 100
            paid = (total * Decimal("0.2")).quantize(Decimal("0.01")) if consumer else Decimal("0.00")
            platform_id = f"I{invoice_id:07d}"
            invoices.append({
                "connection": "acme", "platform_id": platform_id, "number": f"2026-{invoice_id:05d}",
                "debtor_id": debtor_id, "issue_date": due - timedelta(days=30), "due_date": due, "currency": "EUR",
                "total": total, "amount_paid": paid, "outstanding": total - paid,
                "is_credit_note": False, "status": "AUTHORISED", "is_open": True, "payment_url": None,
                "reference": None, "promised_payment_date": None, "last_modified": now, "version": "1",
                "first_seen_at": now, "updated_at": now, "closed_at": None,
            })
            history = [("reminder_1", 1), ("reminder_2", 6), ("final_reminder", 11), ("written_reminder", 30),
                       ("notice_of_default", 46)]
            for step, days in history:
                key = f"acme:{platform_id}:{step}"
                events.append({"invoice_id": invoice_id, "kind": "reminder_sent", "on_date": due + timedelta(days=days),
                               "step": step, "data": {"key": key, "channel": "platform_mail",
                                                      "recipients": [f"klant{number}@example.nl"]},
                               "recorded_at": now})
                if consumer and step == "notice_of_default":
                    costs = collection_costs(total - paid)
                    outbox.append({"idempotency_key": key, "connection": "acme", "kind": "reminder",
                                   "payload": {"action": {"costs_if_unpaid": str(costs)}, "subject": "Aanmaning",
                                               "body": LETTER.format(costs=format_amount(costs, "EUR", "nl"))},
                                   "status": "sent", "attempts": 1,
                                   "receipt": {"mail": {"sent_at": now.isoformat()}}, "created_at": now,
                                   "updated_at": now})
            if consumer:
                events.append({"invoice_id": invoice_id, "kind": "payment_seen", "on_date": due + timedelta(days=20),
                               "step": None, "data": {"amount": str(paid)}, "recorded_at": now})
    with store.engine.begin() as conn:
        conn.execute(schema.debtors.insert(), debtors)
        conn.execute(schema.invoices.insert(), invoices)
        conn.execute(schema.events.insert(), events)
        if outbox:
            conn.execute(schema.outbox.insert(), outbox)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--agency", default="all", choices=["all", *shipped_formats()])
    args = parser.parse_args()
    agencies = shipped_formats() if args.agency == "all" else [args.agency]
    work = Path(tempfile.mkdtemp(prefix="export-bench-"))
    try:
        for agency in agencies:
            db = work / f"{agency}.sqlite"
            with Store.open(f"sqlite:///{db}") as store:
                started = time.perf_counter()
                seed(store, args.cases)
                seeded = time.perf_counter() - started
                config = _config(work / "out")
                started, cpu = time.perf_counter(), time.process_time()
                result = export_cases(store, config, load_format(agency), AS_OF, out_dir=work / "out")
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            exported = sum(1 for o in result.outcomes if o.status == "exported")
            held = len(result.outcomes) - exported
            size = sum(p.stat().st_size for p in result.path.rglob("*") if p.is_file()) if result.path else 0
            projected = elapsed * 10_000 / max(args.cases, 1)
            print(f"{agency}: {exported} cases exported, {held} held back in {elapsed:.1f} s = "
                  f"{exported / elapsed:,.0f} cases/s, CPU {cpu:.1f} s (store seeded in {seeded:.1f} s; export "
                  f"{size / 1e6:.1f} MB); "
                  f"10,000 cases: {projected:.1f} s, target < {TARGET_SECONDS:.0f} s: "
                  f"{'met' if projected < TARGET_SECONDS else 'NOT met'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
