"""Progress of long work: a rich line per connection on a terminal (rich's console capture), plain log lines when
not on one — pages, invoices, calls and "waiting 19 s for Xero's rate limit"."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from connector.cli.progress import LogProgress, RichProgress, progress_display


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, color_system=None, width=140)


def test_the_terminal_shows_a_line_per_connection_with_pages_invoices_calls_and_waits() -> None:
    console = terminal()
    with RichProgress(console) as shown:
        shown.started("acme-xero", "sync")
        shown.started("shop", "sync")
        shown.page("acme-xero", invoices=1000, debtors=120, calls=11)
        shown.page("shop", invoices=50, debtors=7, calls=2)
        shown.waiting("acme-xero", 19.2, "Xero's rate limit")
        shown.bar.refresh()
        during = console.file.getvalue()  # type: ignore[attr-defined]
        shown.finished("shop", "sync", ok=True)
        shown.finished("acme-xero", "sync", ok=False)
    assert "1,000 invoices, 120 debtors, 11 calls; waiting 19 s for Xero's rate limit" in during
    assert "50 invoices, 7 debtors, 2 calls" in during
    final = console.file.getvalue().split("\n")[-4:]  # type: ignore[attr-defined]
    assert any("acme-xero" in line and "failed" in line for line in final)
    assert any("shop" in line and "done" in line for line in final)


def test_events_for_a_connection_that_did_not_start_are_ignored() -> None:
    with RichProgress(terminal()) as shown:
        shown.page("ghost", invoices=1, debtors=1, calls=1)
        shown.waiting("ghost", 3, "Moneybird's rate limit")
        assert shown.bar.tasks == []


def test_off_a_terminal_the_events_are_log_lines_and_pages_are_thinned(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dunning.progress")
    shown = LogProgress(every=10)
    shown.started("acme", "sync")
    for page in range(1, 21):
        shown.page("acme", invoices=page * 100, debtors=page * 10, calls=page)
    shown.waiting("acme", 19, "Xero's rate limit")
    shown.finished("acme", "sync", ok=True)
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "acme: sync started",
        "acme: page 1: 100 invoices, 10 debtors, 1 calls",
        "acme: page 10: 1,000 invoices, 100 debtors, 10 calls",
        "acme: page 20: 2,000 invoices, 200 debtors, 20 calls",
        "acme: waiting 19 s for Xero's rate limit",
        "acme: sync finished",
    ]


def test_the_display_is_chosen_by_whether_stderr_is_a_terminal() -> None:
    with progress_display(stream=io.StringIO()) as shown:
        assert isinstance(shown, LogProgress)
    with progress_display(quiet=True) as shown:
        assert not isinstance(shown, LogProgress | RichProgress)
