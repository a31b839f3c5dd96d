"""Tasks: what a person does where no platform can (calls, letters to post, reminders a platform refused, an
arrangement's signed copy to file when it comes back).

A task is the outbox row that became one (its id is the task id), so it carries the key, the invoices and the
debtor's dossier. Closing a letter task records the letter as sent on the day it really went out: the planner's
14-day term and the handoff's prerequisites count from that date. A task whose invoices are all paid, closed or
handed off closes itself (`close_settled`), so the list holds only work still to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from connector.escalation.policy import STEP_ORDER
from connector.models import Event, EventKind, Invoice
from connector.store import OutboxEntry, Store
from providers.errors import UsageError

KINDS = ("call", "letter", "refused")


class TaskError(UsageError):
    """A task id that does not name an open task: a usage error (exit 2), nothing was written."""


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


_SENT_BY_HAND = frozenset(STEP_ORDER) - {"call", "handoff"}
"""Steps whose refused mail a person sends instead (a call is a task by nature, a handoff goes by `export`)."""


def complete_task(store: Store, task_id: int, *, on: date, sent_on: date | None = None, note: str | None = None) -> Task:
    """Close an open task. A letter counts as sent on `sent_on` (default `on`); a refused reminder done by hand too."""
    entry = store.outbox_row(task_id)
    if entry is None or entry.status != "task":
        closed = (entry.receipt or {}).get("closed_automatically") if entry is not None else None
        state = ("no such task" if entry is None else f"already closed: {closed}" if closed
                 else f"it is {entry.status}, not an open task")
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
        elif task.kind == "refused" and task.step in _SENT_BY_HAND:
            # the reminder the platform refused, sent by hand: from now on it counts as sent (the notice of default
            # before a handoff, a consumer's term), on the day it went
            events.append((invoice, Event(kind=EventKind.REMINDER_SENT, on=when, step=task.step,
                                          data=data | {"channel": "by hand"})))
        else:
            events.append((invoice, Event(kind=EventKind.NOTE, on=on,
                                          data=data | {"text": note or f"{task.kind} task {task.id} done"})))
    receipt = {**(entry.receipt or {}), "done_on": on.isoformat(), "sent_on": when.isoformat(), "note": note}
    if not store.outbox_close_task(entry, receipt, events):
        raise TaskError(f"task {task_id}: closed by someone else meanwhile")
    return task


def close_settled(store: Store, *, on: date, connection: str | None = None) -> list[tuple[Task, str]]:
    """Close every open task whose invoices are all closed on the platform (per the last sync) or handed to the
    agency, with the reason in its receipt and each invoice's history; a task with one invoice still open stays.

    Run where tasks are worked (delivery, `dunning tasks`), so neither the list nor the report shows work that
    is no longer there. Returns each task closed with its reason."""
    closed = []
    for entry in store.outbox_rows(connection=connection, status=["task"]):
        task = _task(entry)
        reasons = [None if (invoice := store.invoice(entry.connection, platform_id)) is None  # not synced yet
                   else _settled(store, invoice) for platform_id in task.invoices]
        if not reasons or None in reasons:
            continue
        reason = "; ".join(filter(None, reasons)) + "; closed automatically"
        data = {"task": task.id, "kind": task.kind, "key": entry.idempotency_key, "source": "closed automatically",
                "text": f"{task.kind} task {task.id}: {reason}"}
        events = [(invoice, Event(kind=EventKind.NOTE, on=on, data=data)) for invoice in task.invoices]
        receipt = {**(entry.receipt or {}), "done_on": on.isoformat(), "note": reason, "closed_automatically": reason}
        if store.outbox_close_task(entry, receipt, events):
            closed.append((task, reason))
    return closed


REOPEN_WITHIN_DAYS = 90
"""How far back a task closed automatically is looked at again (a reversed payment comes within weeks)."""


def reopen_unsettled(store: Store, *, on: date, connection: str | None = None) -> list[tuple[Task, str]]:
    """Open again every task `close_settled` closed whose invoices are not all settled any more (a payment reversed,
    an invoice reopened on the platform): the call or letter it stood for was never done, while escalation counts
    its step as taken, so closed it would be skipped silently. Returns each task reopened with its reason."""
    reopened = []
    since = on - timedelta(days=REOPEN_WITHIN_DAYS)
    for entry in store.outbox_rows(connection=connection, status=["done"]):
        receipt = entry.receipt or {}
        closed_on = receipt.get("done_on")
        if not receipt.get("closed_automatically") or not closed_on or date.fromisoformat(closed_on) < since:
            continue
        task = _task(entry)
        open_again = [invoice.label for platform_id in task.invoices
                      if (invoice := store.invoice(entry.connection, platform_id)) is not None
                      and _settled(store, invoice) is None]
        if not open_again:
            continue
        reason = f"reopened: invoice {', '.join(open_again)} open again on the platform"
        data = {"task": task.id, "kind": task.kind, "key": entry.idempotency_key, "source": "reopened automatically",
                "text": f"{task.kind} task {task.id} {reason}"}
        events = [(invoice, Event(kind=EventKind.NOTE, on=on, data=data)) for invoice in task.invoices]
        kept = {key: value for key, value in receipt.items() if key not in ("done_on", "closed_automatically")}
        if store.outbox_reopen_task(entry, kept | {"reopened_on": on.isoformat(),
                                                   "closed_before": receipt["closed_automatically"]}, events):
            reopened.append((task, reason))
    return reopened


def _settled(store: Store, invoice: Invoice) -> str | None:
    """Why nothing is left to do on an invoice (its words for the task's history), or None while it is open."""
    history = store.events(invoice.connection, invoice.platform_id)
    handoff = next((e for e in reversed(history) if e.kind is EventKind.HANDOFF), None)
    if handoff is not None:
        return f"invoice {invoice.label} handed to the collection agency on {handoff.on.isoformat()}"
    if invoice.is_collectable:
        return None
    if invoice.amount_paid >= invoice.total:
        return f"invoice {invoice.label} paid on the platform"
    closed = next((e for e in reversed(history) if e.kind is EventKind.CLOSED), None)
    if closed is not None and closed.data.get("detail"):  # e.g. deleted on the platform
        return f"invoice {invoice.label} {closed.data['detail']}"
    # a platform that drops a settled invoice from its receivables (Exact) does not say whether it was paid
    return f"invoice {invoice.label} paid or closed on the platform"
