"""Builders for planner tests: an invoice, a debtor and history events in one line each."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from connector.models import Debtor, DebtorKind, Event, EventKind, Invoice

DUE = date(2026, 3, 2)
"""A Monday, so weekday effects are visible in 14-day-letter dates."""


def invoice(**changes: Any) -> Invoice:
    values: dict[str, Any] = {
        "connection": "acme",
        "platform_id": "inv-1",
        "number": "2026-001",
        "debtor_id": "deb-1",
        "issue_date": date(2026, 1, 31),
        "due_date": DUE,
        "currency": "EUR",
        "total": Decimal("1210.00"),
        "amount_paid": Decimal(0),
        "outstanding": Decimal("1210.00"),
        "status": "open",
    }
    values.update(changes)
    return Invoice.model_validate(values)


def debtor(kind: DebtorKind = DebtorKind.BUSINESS, **changes: Any) -> Debtor:
    values: dict[str, Any] = {"connection": "acme", "platform_id": "deb-1", "name": "Bakkerij Jansen", "kind": kind}
    values.update(changes)
    return Debtor.model_validate(values)


def sent(step: str, on: date) -> Event:
    kind = EventKind.HANDOFF if step == "handoff" else EventKind.REMINDER_SENT
    return Event(kind=kind, on=on, step=step)


def task(step: str, on: date) -> Event:
    return Event(kind=EventKind.TASK_CREATED, on=on, step=step)


def event(kind: EventKind, on: date, **data: Any) -> Event:
    return Event(kind=kind, on=on, data=data)
