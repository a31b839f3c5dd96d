"""How `dunning run` reports: the run's summary as a table (one row per connection and a total) or as JSON Lines.
(Its progress while it runs is `connector.cli.progress`: rich on a terminal, structured log lines otherwise.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

from rich import box
from rich.console import Console
from rich.table import Table

from connector.job import RunSummary

COLUMNS = ("connection", "synced", "changed", "sent", "skipped", "failed", "tasks", "cases", "result")


def summary_table(summary: RunSummary) -> Table:
    """One row per connection and a total: synced, changed, reminders sent/skipped/failed, tasks, cases exported."""
    title = (f"Run for {summary.as_of}{' (dry run: nothing written to a platform)' if summary.dry_run else ''}: "
             "invoices synced and changed, reminders sent/skipped/failed, tasks created, cases exported")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("connection", "result") else "right", no_wrap=True,
                         min_width=len(column))
    for day in summary.days:
        result = "ok" if day.ok else "reauth" if day.needs_reauth else "failed"
        table.add_row(day.connection, str(day.fetched) if day.synced else "-", str(day.changed), str(day.sent),
                      str(day.skipped), str(day.failed), str(day.tasks), str(day.cases_exported), result)
    if len(summary.days) > 1:
        table.add_section()
        table.add_row("total", str(summary.total("fetched")), str(summary.total("changed")), str(summary.total("sent")),
                      str(summary.total("skipped")), str(summary.total("failed")), str(summary.total("tasks")),
                      str(summary.total("cases_exported")), "ok" if summary.ok else "part")
    return table


def print_summary(summary: RunSummary, out: IO[str] | None = None) -> None:
    console = Console(file=out) if out is not None else Console()
    if not console.is_terminal:
        console.width = 120  # a scheduler's log is not 80 columns wide: keep a row on one line
    console.print(summary_table(summary))
    for day in summary.days:
        if day.error:
            console.print(day.error, markup=False, highlight=False)
        for anomaly in day.anomalies:
            console.print(anomaly, markup=False, highlight=False)
    reauth = summary.needing_reauthorisation
    if reauth:
        console.print("Needing re-authorisation: " + ", ".join(f"{n} (dunning setup --reconnect {n})" for n in reauth),
                      markup=False, highlight=False)


def summary_json_lines(summary: RunSummary) -> Iterator[str]:
    for day in summary.days:
        yield json.dumps(day.as_json() | {"dry_run": summary.dry_run}, default=str, ensure_ascii=False)
