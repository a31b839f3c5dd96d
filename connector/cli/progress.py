"""Showing long work (`connector.progress` events): a rich progress line per connection on a terminal, plain log
lines elsewhere (a scheduler's log, a pipe, `--log-format json`). The machinery emits the events and never knows
which of the two shows them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from connector.logs import current_format
from connector.progress import NoProgress
from connector.progress import Progress as ProgressObserver

log = logging.getLogger("dunning.progress")


def describe_page(invoices: int, debtors: int, calls: int) -> str:
    return f"{invoices:,} invoices, {debtors:,} debtors, {calls:,} calls"


def describe_wait(seconds: float, reason: str) -> str:
    return f"waiting {seconds:.0f} s for {reason}"


@dataclass
class _Row:
    task: TaskID
    detail: str = ""


class RichProgress:
    """A line per connection and task, updated in place: what was read so far, or what it waits for."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            SpinnerColumn(finished_text="-"),
            TextColumn("{task.fields[connection]}", style="bold"),
            TextColumn("{task.fields[task]}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._rows: dict[tuple[str, str], _Row] = {}
        self._current: dict[str, str] = {}
        """The task each connection works on now (page/wait events name the connection only)."""
        self._lock = threading.Lock()

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def _row(self, connection: str) -> _Row | None:
        task = self._current.get(connection)
        return self._rows.get((connection, task)) if task else None

    def started(self, connection: str, task: str) -> None:
        with self._lock:
            self._current[connection] = task
            self._rows[(connection, task)] = _Row(
                self.bar.add_task(task, total=None, connection=connection, task=task, detail="starting")
            )

    def page(self, connection: str, *, invoices: int, debtors: int, calls: int) -> None:
        with self._lock:
            row = self._row(connection)
            if row is not None:
                row.detail = describe_page(invoices, debtors, calls)
                self.bar.update(row.task, completed=invoices, detail=row.detail)

    def advanced(self, connection: str, *, done: int, total: int | None = None) -> None:
        with self._lock:
            row = self._row(connection)
            if row is not None:
                row.detail = f"{done:,} done"
                self.bar.update(row.task, completed=done, total=total, detail=row.detail)

    def waiting(self, connection: str, seconds: float, reason: str) -> None:
        with self._lock:
            row = self._row(connection)
            if row is not None:
                self.bar.update(row.task, detail=f"{row.detail}; {describe_wait(seconds, reason)}".lstrip("; "))

    def finished(self, connection: str, task: str, *, ok: bool, detail: str | None = None) -> None:
        with self._lock:
            row = self._rows.get((connection, task))
            if row is not None:
                done = ("done" if ok else "failed") + (f" ({detail})" if detail else "")
                self.bar.update(row.task, total=1, completed=1,
                                detail=f"{row.detail}; {done}" if row.detail else done)
            self._current.pop(connection, None)


class LogProgress:
    """The same events as log lines (INFO), for a scheduler's log or a pipe; every page would flood it, so a page
    is logged at most every `every` pages (and every wait, which is what makes a run look stuck). Each line carries
    its fields (connection, task, event, …), so `--log-format json` makes them objects a log system can filter."""

    def __init__(self, every: int = 10) -> None:
        self.every = every
        self._pages: dict[str, int] = {}

    def started(self, connection: str, task: str) -> None:
        self._pages[connection] = 0
        log.info("%s: %s started", connection, task, extra={"connection": connection, "task": task,
                                                            "event": "task_started"})

    def page(self, connection: str, *, invoices: int, debtors: int, calls: int) -> None:
        count = self._pages.get(connection, 0) + 1
        self._pages[connection] = count
        if count == 1 or count % self.every == 0:
            log.info("%s: page %d: %s", connection, count, describe_page(invoices, debtors, calls),
                     extra={"connection": connection, "event": "page", "invoices": invoices, "debtors": debtors,
                            "calls": calls})

    def advanced(self, connection: str, *, done: int, total: int | None = None) -> None:
        pass  # the task's summary line says how many; per unit would flood the log

    def waiting(self, connection: str, seconds: float, reason: str) -> None:
        log.info("%s: %s", connection, describe_wait(seconds, reason),
                 extra={"connection": connection, "event": "waiting", "seconds": round(seconds, 1), "reason": reason})

    def finished(self, connection: str, task: str, *, ok: bool, detail: str | None = None) -> None:
        log.log(logging.INFO if ok else logging.WARNING, "%s: %s %s%s", connection, task,
                "finished" if ok else "failed", f" ({detail})" if detail else "",
                extra={"connection": connection, "task": task, "event": "task_finished", "ok": ok,
                       **({"detail": detail} if detail else {})})


@contextmanager
def progress_display(*, quiet: bool = False, stream: TextIO | None = None) -> Iterator[ProgressObserver]:
    """The observer for this run: rich on a terminal (stderr), log lines otherwise, nothing when `quiet`."""
    if quiet:
        yield NoProgress()
        return
    console = Console(stderr=True, file=stream)
    if console.is_terminal and current_format() != "json":
        with RichProgress(console) as shown:
            yield shown
    else:
        yield LogProgress()


__all__ = ["LogProgress", "RichProgress", "describe_page", "describe_wait", "progress_display"]
