"""How `dunning run` shows itself: a live line per connection on a terminal (rich), structured log lines when a
scheduler runs it, and the run's summary as a table or as JSON Lines."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.progress import Progress as RichProgressBar
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from connector.job import RunSummary
from connector.progress import Progress

log = logging.getLogger("connector.job")


class LogProgress:
    """Each task's start and end as a log line with its fields (`--log-format json` makes them JSON objects)."""

    def started(self, connection: str, task: str) -> None:
        log.info("%s: %s started", connection, task, extra={"connection": connection, "task": task,
                                                            "event": "task_started"})

    def page(self, connection: str, *, invoices: int, debtors: int, calls: int) -> None:
        log.debug("%s: %d invoices, %d debtors stored (%d calls)", connection, invoices, debtors, calls,
                  extra={"connection": connection, "event": "page", "invoices": invoices, "debtors": debtors,
                         "calls": calls})

    def advanced(self, connection: str, *, done: int, total: int | None = None) -> None:
        pass  # one line per reminder would drown the log; the task's end says how many

    def waiting(self, connection: str, seconds: float, reason: str) -> None:
        log.info("%s: waiting %.0f s for %s", connection, seconds, reason,
                 extra={"connection": connection, "event": "waiting", "seconds": round(seconds, 1), "reason": reason})

    def finished(self, connection: str, task: str, *, ok: bool) -> None:
        log.log(logging.INFO if ok else logging.WARNING, "%s: %s %s", connection, task, "done" if ok else "failed",
                extra={"connection": connection, "task": task, "event": "task_finished", "ok": ok})


class TerminalProgress:
    """A live line per connection: its current task, counts and rate-limit waits."""

    def __init__(self, bar: RichProgressBar) -> None:
        self._bar = bar
        self._rows: dict[str, int] = {}
        self._lock = threading.Lock()

    def _row(self, connection: str) -> int:
        with self._lock:
            if connection not in self._rows:
                self._rows[connection] = self._bar.add_task(connection, total=None, status="waiting")
            return self._rows[connection]

    def _show(self, connection: str, status: str, **kwargs: object) -> None:
        self._bar.update(self._row(connection), status=status, **kwargs)  # type: ignore[arg-type]

    def started(self, connection: str, task: str) -> None:
        self._show(connection, f"{task}…", completed=0, total=None)

    def page(self, connection: str, *, invoices: int, debtors: int, calls: int) -> None:
        self._show(connection, f"sync: {invoices} invoices, {debtors} debtors ({calls} calls)")

    def advanced(self, connection: str, *, done: int, total: int | None = None) -> None:
        self._show(connection, f"{done}/{total}" if total else f"{done} done", completed=done, total=total)

    def waiting(self, connection: str, seconds: float, reason: str) -> None:
        self._show(connection, f"waiting {seconds:.0f} s for {reason}")

    def finished(self, connection: str, task: str, *, ok: bool) -> None:
        self._show(connection, f"{task} {'done' if ok else 'failed'}")


@contextmanager
def progress_display(*, terminal: bool, console: Console | None = None) -> Iterator[Progress]:
    """The live display on a terminal, log lines otherwise."""
    if not terminal:
        yield LogProgress()
        return
    bar = RichProgressBar(SpinnerColumn(), TextColumn("{task.description:<24}"), TextColumn("{task.fields[status]}"),
                          TimeElapsedColumn(), console=console or Console(stderr=True), transient=False)
    with bar:
        yield TerminalProgress(bar)


COLUMNS = ("connection", "synced", "changed", "sent", "skipped", "failed", "tasks", "cases_exported", "result")


def summary_table(summary: RunSummary) -> Table:
    """One row per connection and a total: synced, changed, reminders sent/skipped/failed, tasks, cases exported."""
    title = f"Run for {summary.as_of}{' (dry run: nothing written to a platform)' if summary.dry_run else ''}"
    table = Table(title=title, title_justify="left")
    for column in COLUMNS:
        table.add_column(column.replace("_", " "), justify="left" if column in ("connection", "result") else "right")
    for day in summary.days:
        result = "ok" if day.ok else "re-authorise" if day.needs_reauth else "failed"
        table.add_row(day.connection, str(day.fetched) if day.synced else "-", str(day.changed), str(day.sent),
                      str(day.skipped), str(day.failed), str(day.tasks), str(day.cases_exported), result)
    if len(summary.days) > 1:
        table.add_row("total", str(summary.total("fetched")), str(summary.total("changed")), str(summary.total("sent")),
                      str(summary.total("skipped")), str(summary.total("failed")), str(summary.total("tasks")),
                      str(summary.total("cases_exported")), "ok" if summary.ok else "partial")
    return table


def print_summary(summary: RunSummary, out: IO[str] | None = None) -> None:
    console = Console(file=out) if out is not None else Console()
    console.print(summary_table(summary))
    for day in summary.days:
        if day.error:
            console.print(day.error, markup=False, highlight=False)
    reauth = summary.needing_reauthorisation
    if reauth:
        console.print("Needing re-authorisation: " + ", ".join(f"{n} (dunning setup --reconnect {n})" for n in reauth),
                      markup=False, highlight=False)


def summary_json_lines(summary: RunSummary) -> Iterator[str]:
    for day in summary.days:
        yield json.dumps(day.as_json() | {"dry_run": summary.dry_run}, default=str, ensure_ascii=False)
