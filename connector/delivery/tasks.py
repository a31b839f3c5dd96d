"""Tasks: what a person does where no platform can (calls, letters to post, reminders a platform refused, an
arrangement's signed copy to file when it comes back).

A task is the outbox row that became one (its id is the task id), so it carries the key, the invoices and the
debtor's dossier. Closing a letter task records the letter as sent on the day it really went out: the planner's
14-day term and the handoff's prerequisites count from that date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from connector.escalation.policy import STEP_ORDER
from connector.models import Event, EventKind
from connector.store import OutboxEntry, Store
from providers.errors import DunningError

KINDS = ("call", "letter", "refused")


class TaskError(DunningError):
    """A task id that does not name an open task."""


@dataclass(frozen=True)
class Task:
    id: int
    kind: str
    connection: str
    debtor: str | None
    invoices: tuple[str, ...]
    invoice_numbers: tuple[str, ...]
    step: str | None
    reason: str
    created_on: str | None
    letter: str | None
    phone: str | None
    dossier: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "connection": self.connection, "debtor": self.debtor,
                "invoices": list(self.invoices), "invoice_numbers": list(self.invoice_numbers), "step": self.step,
                "reason": self.reason, "created_on": self.created_on, "letter": self.letter, "phone": self.phone,
                "dossier": list(self.dossier)}


def _task(entry: OutboxEntry) -> Task:
    receipt, payload = entry.receipt or {}, entry.payload
    return Task(
        id=entry.id,
        kind=str(receipt.get("kind") or "refused"),
        connection=entry.connection,
        debtor=payload.get("debtor"),
        invoices=tuple(payload.get("invoices") or ()),
        invoice_numbers=tuple(payload.get("invoice_numbers") or ()),
        step=payload.get("step"),
        reason=str(receipt.get("reason") or entry.last_error or ""),
        created_on=receipt.get("on"),
        letter=receipt.get("letter"),
        phone=receipt.get("phone"),
        dossier=tuple(receipt.get("dossier") or payload.get("dossier") or ()),
    )


def open_tasks(store: Store, *, connection: str | None = None) -> list[Task]:
    return [_task(entry) for entry in store.outbox_rows(connection=connection, status=["task"])]


def complete_task(store: Store, task_id: int, *, on: date, sent_on: date | None = None, note: str | None = None) -> Task:
    """Close an open task. A letter counts as sent on `sent_on` (default `on`); a refused reminder done by hand too."""
    entry = store.outbox_row(task_id)
    if entry is None or entry.status != "task":
        state = "no such task" if entry is None else f"it is {entry.status}, not an open task"
        raise TaskError(f"task {task_id}: {state}; see `dunning tasks`")
    task = _task(entry)
    events: list[tuple[str, Event]] = []
    when = sent_on or on
    data = {"task": task.id, "kind": task.kind, "key": entry.idempotency_key, "source": "task done"}
    if note:
        data["note"] = note
    for invoice in task.invoices:
        if task.kind == "letter" and task.step in STEP_ORDER:
            events.append((invoice, Event(kind=EventKind.REMINDER_SENT, on=when, step=task.step,
                                          data=data | {"channel": "letter", "letter": task.letter})))
        else:
            events.append((invoice, Event(kind=EventKind.NOTE, on=on,
                                          data=data | {"text": note or f"{task.kind} task {task.id} done"})))
    receipt = {**(entry.receipt or {}), "done_on": on.isoformat(), "sent_on": when.isoformat(), "note": note}
    if not store.outbox_close_task(entry, receipt, events):
        raise TaskError(f"task {task_id}: closed by someone else meanwhile")
    return task
