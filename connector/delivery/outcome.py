"""What a send reports: one `Outcome` per action or outbox row (a `send --json` line), one `Summary` per
connection (the line on stderr, the job's figures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from connector.store import OutboxEntry

Status = Literal["sent", "skipped", "failed", "task"]


@dataclass
class Outcome:
    """What happened to one action or outbox row (a `send --json` line)."""

    status: Status
    reason: str
    fields: dict[str, Any]
    recipients: tuple[str, ...] = ()
    key: str | None = None
    task: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {**self.fields, "status": self.status, "reason": self.reason, "recipients": list(self.recipients),
                "key": self.key, "task": self.task, **self.extra}


LIMITED_KINDS = frozenset({"reminder", "letter", "task"})
"""The outbox rows `--limit` counts (what reaches a debtor or a person), not confirmations or notes."""


@dataclass
class Summary:
    """One connection's run."""

    connection: str
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    tasks: int = 0
    refused: int = 0
    """Of the tasks, reminders the platform or the data refused (no e-mail address, a refusal): exit 1."""
    left_pending: int = 0
    """Rows left for the next run (day budget spent, authorisation expired)."""
    api_calls: int = 0
    counted_for_limit: int = 0
    """Reminders, letters and tasks taken up within `--limit` (the limit is for the whole run, across connections)."""
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome) -> None:
        if outcome.status == "sent":
            self.sent += 1
        elif outcome.status == "task":
            self.tasks += 1
            self.refused += outcome.extra.get("task_kind") == "refused"
        elif outcome.status == "failed":
            self.failed += 1
        else:
            self.skipped += 1

    @property
    def ok(self) -> bool:
        """Nothing failed and no reminder was refused for bad data (those are named; the rest went out)."""
        return not self.failing and self.refused == 0

    @property
    def failing(self) -> bool:
        """Something failed or stopped the run (a task for a person is not a failure)."""
        return self.error is not None or self.failed > 0

    def tasks_note(self) -> str | None:
        """What the progress line adds about tasks, so a run that only made tasks does not read as failed."""
        if not self.tasks:
            return None
        refused = f", {self.refused} of them refused reminders" if self.refused else ""
        return f"{self.tasks} task(s) for a person{refused}"

    def line(self) -> str:
        text = (f"{self.connection}: {self.sent} sent, {self.tasks} task(s) ({self.refused} refused), "
                f"{self.skipped} skipped, {self.failed} failed, {self.api_calls} platform calls")
        if self.left_pending:
            text += f"; {self.left_pending} left pending for the next run"
        for warning in self.warnings:
            text += f"; {warning}"
        return text + (f"; stopped: {self.error}" if self.error else "")




def fields(entry: OutboxEntry) -> dict[str, Any]:
    """The plan fields a `send --json` line repeats (cli.md), from the row's payload."""
    action = dict(entry.payload.get("action") or {})
    return {
        "connection": entry.connection,
        "kind": entry.kind,
        "debtor": action.get("debtor", entry.payload.get("debtor")),
        "invoices": action.get("invoices", list(entry.payload.get("invoices") or [entry.payload.get("invoice")])),
        "invoice_numbers": action.get("invoice_numbers", entry.payload.get("invoice_numbers", [])),
        "step": action.get("step", entry.payload.get("step")),
        "channel": action.get("channel", entry.payload.get("channel")),
        **{k: v for k, v in action.items() if k in ("debtor_name", "outstanding", "currency", "costs", "interest",
                                                      "pay_by", "due_on")},
    }


