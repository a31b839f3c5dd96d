"""What long work reports while it runs: the seam between the machinery (sync, rate limiter, delivery, the job)
and whatever shows it (a rich progress bar on a terminal, plain log lines elsewhere, nothing in tests).

The machinery calls these methods and never knows how they are shown; the CLI picks the observer. Every method
has a do-nothing default, so an observer implements only what it shows.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Observer of long-running work, one connection at a time (calls may come from several threads)."""

    def started(self, connection: str, task: str) -> None:
        """`task` began for `connection` (e.g. "sync", "send", "export")."""

    def page(self, connection: str, *, invoices: int, debtors: int, calls: int) -> None:
        """A sync page was stored: running totals of invoices and debtors stored, and platform calls made."""

    def advanced(self, connection: str, *, done: int, total: int | None = None) -> None:
        """Units of the current task finished (reminders sent, cases exported); `total` when known."""

    def waiting(self, connection: str, seconds: float, reason: str) -> None:
        """About to wait `seconds` (e.g. "Xero's rate limit"), so a person knows the run is not stuck."""

    def finished(self, connection: str, task: str, *, ok: bool, detail: str | None = None) -> None:
        """`task` ended for `connection`: `ok` False when something failed; `detail` what a person should know
        besides (e.g. tasks a send left for them, which are not failures)."""


class NoProgress:
    """The default observer: shows nothing (tests, `--json` runs that must keep stdout clean)."""

    def started(self, connection: str, task: str) -> None:
        pass

    def page(self, connection: str, *, invoices: int, debtors: int, calls: int) -> None:
        pass

    def advanced(self, connection: str, *, done: int, total: int | None = None) -> None:
        pass

    def waiting(self, connection: str, seconds: float, reason: str) -> None:
        pass

    def finished(self, connection: str, task: str, *, ok: bool, detail: str | None = None) -> None:
        pass
