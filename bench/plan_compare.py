"""Plan comparison: seed a realistic store and print every planned action as JSON, to compare two revisions.

    .venv/bin/python bench/plan_compare.py [--debtors N] [--db PATH] > /tmp/plan_before.jsonl
    (change the planner)
    .venv/bin/python bench/plan_compare.py [--debtors N] [--db PATH] > /tmp/plan_after.jsonl
    cmp /tmp/plan_before.jsonl /tmp/plan_after.jsonl

The store is generated from a fixed seed through the store's own schema: three connections with the capabilities of
the three platforms, consumers and businesses with several invoices each (part-paid, credit notes, closed ones,
other currencies, due dates from before the rate table to past its end), histories at every step, disputes,
promises (recorded and the platform's own promised date), exclusions, released holds, kept and broken
arrangements, payments and notes. It is planned on several days under several policies; each scenario starts with a
header line, then one `Action.as_json()` object per line, exactly as `dunning plan --json` prints them.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from connector.escalation.policy import STEP_ORDER, Policy
from connector.store import Store
from providers.base import Capabilities

try:  # the planning driver's module, wherever the revision under test keeps it
    from connector.plan import plan as plan_store
except ImportError:  # revisions before the escalation package had its driver
    from connector.planning import plan as plan_store  # type: ignore[no-redef]

BASE = date(2026, 10, 1)
AS_OF_DAYS = (date(2026, 9, 1), date(2026, 10, 1), date(2026, 10, 17), date(2026, 11, 23), date(2027, 1, 20))
CAPABILITIES = {
    "mb": Capabilities(native_reminder=True, custom_message=True, consolidated_reminders=True),
    "xr": Capabilities(native_reminder=True, custom_message=False, consolidated_reminders=False),
    "ex": Capabilities(native_reminder=True, custom_message=True, consolidated_reminders=False),
}
POLICIES: dict[str, dict[str, Any]] = {
    "default": {},
    "no_gap_no_merge": {"min_gap_days": 0, "consolidate_reminders": False, "consolidate_principal": False},
    "overrides": {
        "min_gap_days": 5,
        "creditor_can_deduct_vat": False,
        "connections": {"ex": {"steps": {"reminder_2": {"days": 7}, "call": {"enabled": False}}},
                        "xr": {"promise_grace_days": 0, "min_gap_days": 1}},
        "debtors": [
            {"connection": "mb", "debtor": "mb-D0003", "channel": "call_task"},
            {"connection": "mb", "debtor": "mb-D0007", "excluded": True},
            {"connection": "ex", "debtor": "ex-D0005", "steps": ["reminder_1", "notice_of_default"], "language": "en"},
        ],
    },
}


def _iso(day: date) -> str:
    return day.isoformat()


def generate(path: Path, debtors_per_connection: int, seed: int = 20261204) -> None:
    """Fill a fresh store through sqlite3 with the store's own schema and formats (fast, and fully controlled)."""
    Store.open(f"sqlite:///{path}").close()
    rng = random.Random(seed)
    now = datetime(2026, 9, 1, 6, 0).isoformat(sep=" ")
    db = sqlite3.connect(path)
    invoice_id = 0
    for connection, provider in (("mb", "moneybird"), ("xr", "xero"), ("ex", "exact")):
        db.execute(
            "INSERT INTO connections (name, provider, tenant, needs_reauth, created_at) VALUES (?, ?, 'T', 0, ?)",
            (connection, provider, now),
        )
        for d in range(debtors_per_connection):
            debtor_id = f"{connection}-D{d:04d}"
            kind = "consumer" if rng.random() < 0.35 else "business"
            db.execute(
                "INSERT INTO debtors (connection, platform_id, name, kind, emails, phone, address, language, version,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, '{\"lines\":[]}', ?, '1', ?)",
                (connection, debtor_id, f"Debtor {connection} {d}", kind, json.dumps([f"d{d}@example.nl"]),
                 "+31 20 123 4567" if rng.random() < 0.5 else None, rng.choice(["nl", "en", None]), now),
            )
            for n in range(rng.choice([1, 1, 2, 3, 4, 6, 8])):
                invoice_id += 1
                _invoice(db, rng, connection, debtor_id, invoice_id, f"{connection}-{d:04d}-{n}", now)
    db.commit()
    db.close()


def _invoice(db: sqlite3.Connection, rng: random.Random, connection: str, debtor_id: str, row_id: int,
             number: str, now: str) -> None:
    due = BASE - timedelta(days=rng.randint(-40, 150))
    if rng.random() < 0.02:
        due = date(2014, 11, rng.randint(1, 28))  # before the interest table: a warning, never a guess
    issue = due - timedelta(days=rng.choice([0, 7, 14, 30, 30, 30]))
    cents = rng.choice([rng.randint(500, 20_000), rng.randint(20_000, 500_000), rng.randint(500_000, 30_000_000)])
    total = cents / 100
    paid = 0.0 if rng.random() < 0.7 else round(total * rng.choice([0.1, 0.25, 0.5, 0.9]), 2)
    credit = rng.random() < 0.03
    if credit:
        total, paid = -total, 0.0
    outstanding = round(total - paid, 2)
    is_open = rng.random() > 0.05
    currency = "EUR" if rng.random() > 0.06 else rng.choice(["USD", "GBP"])
    promised = None
    if connection == "xr" and rng.random() < 0.2:
        promised = _iso(due + timedelta(days=rng.randint(-10, 70)))
    db.execute(
        "INSERT INTO invoices (id, connection, platform_id, number, debtor_id, issue_date, due_date, currency, total,"
        " amount_paid, outstanding, is_credit_note, status, is_open, payment_url, promised_payment_date,"
        " first_seen_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)",
        (row_id, connection, f"P{row_id}", None if rng.random() < 0.02 else number, debtor_id, _iso(issue), _iso(due),
         currency, f"{total:.2f}", f"{paid:.2f}", f"{outstanding:.2f}", int(credit), int(is_open),
         f"https://pay.example/{row_id}" if rng.random() < 0.5 else None, promised, now, now),
    )
    for kind, on, step, data in _history(rng, due, outstanding):
        db.execute(
            "INSERT INTO events (invoice_id, kind, on_date, step, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
            (row_id, kind, _iso(on), step, json.dumps(data), now),
        )


NOMINAL = {"pre_due": -5, "reminder_1": 1, "reminder_2": 6, "final_reminder": 11, "call": 16,
           "written_reminder": 30, "notice_of_default": 45, "handoff": 60}


def _history(rng: random.Random, due: date, outstanding: float) -> Iterator[tuple[str, date, str | None, dict]]:
    """A plausible history: steps taken at roughly their days (some late, some skipped), holds, payments, notes."""
    reached = rng.choice([-1, -1, 0, 1, 1, 2, 3, 4, 5, 6, 7])
    delay = 0
    for step in STEP_ORDER[: reached + 1]:
        if step != "pre_due" and rng.random() < 0.1:
            continue  # a step the job never got to (caught up later)
        delay += rng.choice([0, 0, 0, 1, 2, 5])
        on = due + timedelta(days=NOMINAL[step] + delay)
        if step == "handoff":
            yield "handoff", on, "handoff", {}
        elif step == "call":
            yield "task_created", on, "call", {"reason": "call"}
        else:
            yield "reminder_sent", on, step, {"receipt": "r"}
    roll = rng.random()
    if roll < 0.08:
        on = due + timedelta(days=rng.randint(-5, 60))
        yield "hold_set", on, None, {"hold": "dispute", "source": "cli"}
        if rng.random() < 0.5:
            yield "hold_released", on + timedelta(days=rng.randint(1, 40)), None, {"source": "cli"}
    elif roll < 0.16:
        on = due + timedelta(days=rng.randint(-10, 60))
        yield "hold_set", on, None, {"hold": "promise", "until": _iso(on + timedelta(days=rng.randint(1, 30)))}
    elif roll < 0.19:
        yield "hold_set", due + timedelta(days=rng.randint(0, 30)), None, {"hold": "excluded"}
    elif roll < 0.26 and outstanding > 0:
        on = due + timedelta(days=rng.randint(3, 50))
        parts = rng.choice([2, 3, 4])
        share = f"{outstanding / parts:.2f}"
        data: dict[str, Any] = {"instalments": [{"due": _iso(on + timedelta(days=30 * k)), "amount": share}
                                                for k in range(1, parts + 1)]}
        if rng.random() < 0.6:
            data["outstanding"] = f"{outstanding + (float(share) if rng.random() < 0.5 else 0):.2f}"
        if rng.random() < 0.3:
            data["down_payment"] = {"due": _iso(on + timedelta(days=3)), "amount": "10.00"}
        yield "arrangement_set", on, None, data
        if rng.random() < 0.2:
            yield "arrangement_ended", on + timedelta(days=rng.randint(10, 60)), None, {"source": "cli"}
    if rng.random() < 0.2:
        yield "payment_seen", due + timedelta(days=rng.randint(-5, 90)), None, {"amount": "25.00", "outstanding": "1"}
    if rng.random() < 0.1:
        yield "note", due + timedelta(days=rng.randint(0, 60)), None, {"text": "called, promised to look at it"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debtors", type=int, default=700, help="debtors per connection (default 700)")
    parser.add_argument("--db", type=Path, help="reuse or create the store here (default: a temporary file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "compare.sqlite"
        if not path.exists():
            generate(path, args.debtors)
        with Store.open(f"sqlite:///{path}") as store:
            out = sys.stdout
            for policy_name, raw in POLICIES.items():
                policy = Policy.model_validate(raw)
                for as_of in AS_OF_DAYS:
                    for connection in CAPABILITIES:
                        out.write(json.dumps({"scenario": policy_name, "as_of": _iso(as_of), "connection": connection})
                                  + "\n")
                        for action in plan_store(store, policy, as_of, connection=connection,
                                                 capabilities=CAPABILITIES):
                            out.write(json.dumps(action.as_json(), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
