"""Rate limiting: keeps one connection within its platform's call windows, before the platform has to refuse.

Burst, don't pace: a window of `limit` calls per `seconds` lets the whole budget go at once and then one call each
time an earlier one leaves the window, so a small sync runs at network speed and a large one at the window's pace.
Calls may come from several threads (pages read in parallel); at most `max_in_flight` are out at once.

The platform's own headers keep the limiter in step with calls it cannot see (other processes or apps sharing the
budget): a reported remaining budget is counted down until its reset, and a spent one waits for that reset — or,
for a daily budget, stops the connection for the run instead of sleeping for hours.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.base import Sleep, Ticks
from providers.errors import RateLimited

ARRIVAL_MARGIN = 1.0
"""Seconds a call stays in its window beyond the window's length. The platform counts a call when it arrives, and
calls sent at once do not all take equally long to get there: without this margin, the window's next budget could
start before the platform's (at a cost of one second per window, 2 % of a minute)."""

OnWait = Callable[[float, str], None]
"""Told before a call waits for a rate limit: the seconds it will wait and why (e.g. "Xero's rate limit"), so the
application can show that a run is not stuck (`connector.progress.Progress.waiting`)."""


@dataclass(frozen=True)
class RateWindow:
    """At most `limit` calls in any `seconds` (per tenant)."""

    name: str
    limit: int
    seconds: float


@dataclass(frozen=True)
class LimitReading:
    """What a response's headers say about one of the platform's windows."""

    window: str
    remaining: int | None
    reset_at: float | None = None
    """Epoch seconds when the window resets, where the platform says."""
    daily: bool = False


@dataclass
class _Reported:
    """A budget the platform reported: calls we may still send before `reset_at` (None: not before the run ends)."""

    remaining: int
    reset_at: float | None
    daily: bool


class Budget:
    """What has been sent and what the platform reported, for everything it counts together: one connection's
    calls, or those of every connection sharing one authorisation where the platform may count per token or user
    (`shared_budget`). Guarded by its own lock; the limiters that use it do the waiting."""

    def __init__(self, windows: Sequence[RateWindow], max_in_flight: int) -> None:
        self.windows = tuple(windows)
        self.log: dict[str, deque[float]] = {w.name: deque() for w in self.windows}
        self.reported: dict[str, _Reported] = {}
        self.sent = 0
        self.blocked_until = 0.0
        self.spent_for_the_day = False
        self.spent_reset: float | None = None
        """When a spent daily budget starts afresh (None: not known)."""
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(max_in_flight)


_SHARED: weakref.WeakKeyDictionary[object, dict[str, Budget]] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared_budget(owner: object, key: str, windows: Sequence[RateWindow], max_in_flight: int) -> Budget:
    """The one budget of `key` (an authorisation) among the clients made with `owner` (their token store): a
    platform that may count its limit per token, user or IP (Moneybird: not documented, providers.md) is kept
    within it by all connections together, not each on its own."""
    with _SHARED_LOCK:
        budgets = _SHARED.setdefault(owner, {})
        if key not in budgets:
            budgets[key] = Budget(windows, max_in_flight)
        return budgets[key]


class RateLimiter:
    """Keeps one connection within its platform's windows and concurrency, before the platform has to refuse.

    Sliding logs: no interval of `seconds` ever holds more than `limit` calls, which also keeps every fixed window
    the platform counts in within budget, whatever its alignment. Thread-safe: a call reserves its place in every
    window under a lock, and waits (outside the lock) only when no window has room. The counts live in a `Budget`,
    the connection's own or one it shares with others the platform may count together.
    """

    def __init__(
        self,
        windows: Sequence[RateWindow],
        *,
        clock: Ticks,
        sleep: Sleep,
        max_wait: float,
        connection: str | None = None,
        max_in_flight: int = 1,
        on_wait: OnWait | None = None,
        reason: str = "the platform's rate limit",
        budget: Budget | None = None,
    ) -> None:
        self.connection = connection
        self.budget = budget or Budget(windows, max_in_flight)
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait
        self._on_wait = on_wait
        self._reason = reason

    @contextmanager
    def call(self) -> Iterator[int]:
        """Hold one of the in-flight slots and a place in every window for the length of one call.

        Yields the call's ticket, to be handed back with the answer's readings (`observe`)."""
        with self.budget.slots:
            yield self.acquire()

    def acquire(self) -> int:
        """Wait until one more call fits every window, then count it; returns its ticket (a sequence number)."""
        budget = self.budget
        while True:
            with budget.lock:
                if budget.spent_for_the_day:
                    raise self._day_spent(budget.spent_reset)
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    return self._count(now)
            if wait > self._max_wait:  # a spent daily budget: a scheduled job must not sleep for hours
                resume = datetime.fromtimestamp(self._clock() + wait, UTC)
                raise RateLimited(
                    f"this run has used the platform's call budget until {resume:%Y-%m-%d %H:%M} UTC; this connection "
                    "stops for this run and continues at the next one",
                    connection=self.connection,
                    for_the_day=True,
                )
            self.wait(wait)

    def wait(self, seconds: float) -> None:
        """Sleep for the rate limit, saying so first."""
        if self._on_wait is not None:
            self._on_wait(seconds, self._reason)
        self._sleep(seconds)

    def hold(self, seconds: float) -> None:
        """No call goes for `seconds` (a platform's Retry-After): every caller waits, not only the refused one."""
        with self.budget.lock:
            self.budget.blocked_until = max(self.budget.blocked_until, self._clock() + seconds)

    def _count(self, now: float) -> int:
        budget = self.budget
        for window in budget.windows:
            budget.log[window.name].append(now)
        for reported in budget.reported.values():
            reported.remaining -= 1
        budget.sent += 1
        return budget.sent

    def _wait_needed(self, now: float) -> float:
        budget = self.budget
        wait = budget.blocked_until - now
        for window in budget.windows:
            calls = budget.log[window.name]
            while calls and calls[0] + window.seconds + ARRIVAL_MARGIN <= now:
                calls.popleft()
            if len(calls) >= window.limit:
                wait = max(wait, calls[0] + window.seconds + ARRIVAL_MARGIN - now)
        for name, reported in list(budget.reported.items()):
            if reported.reset_at is not None and reported.reset_at <= now:
                del budget.reported[name]
            elif reported.remaining <= 0:
                if reported.reset_at is None or (reported.daily and reported.reset_at - now > self._max_wait):
                    self._mark_spent(reported.reset_at)
                    raise self._day_spent(reported.reset_at)
                wait = max(wait, reported.reset_at - now)
        return wait

    def observe(self, readings: Sequence[LimitReading], *, ticket: int | None = None) -> None:
        """Take the platform's own count into account (other processes or apps may share the budget).

        `ticket` is the answered call's: calls this limiter let go after it may not have been counted in the
        reading yet, so they are taken off the reported budget (at worst a few calls too careful). A spent daily
        budget stops the *next* call, so the answer that reported it is still used.
        """
        budget = self.budget
        with budget.lock:
            now = self._clock()
            later = budget.sent - ticket if ticket is not None else 0
            for reading in readings:
                if reading.remaining is None:
                    continue
                if reading.remaining <= 0:
                    self._spent(reading, now)
                    continue
                reset_at = reading.reset_at if reading.daily else self._reset_of(reading, now)
                fresh = _Reported(reading.remaining - later, reset_at, reading.daily)
                known = budget.reported.get(reading.window)
                if known is not None and known.reset_at is not None and fresh.reset_at is not None:
                    if fresh.reset_at < known.reset_at:
                        continue  # a late answer from a window that has passed
                    if fresh.reset_at == known.reset_at:
                        fresh.remaining = min(fresh.remaining, known.remaining)
                budget.reported[reading.window] = fresh

    def _spent(self, reading: LimitReading, now: float) -> None:
        if reading.daily and (reading.reset_at is None or reading.reset_at - now > self._max_wait):
            self._mark_spent(reading.reset_at)
            return
        self.budget.blocked_until = max(self.budget.blocked_until, self._reset_of(reading, now))

    def _mark_spent(self, reset_at: float | None) -> None:
        """The daily budget is spent: every later call of the budget stops the run (each naming its connection)."""
        self.budget.spent_for_the_day, self.budget.spent_reset = True, reset_at

    def _reset_of(self, reading: LimitReading, now: float) -> float:
        """When a window the platform reports spent starts afresh: its own reset time, but a short window never
        later than its length from now (a reset read against a skewed clock must not stop the run as if a daily
        budget were spent)."""
        window = now + self._seconds_of(reading.window)
        if reading.reset_at is None:
            return window
        return reading.reset_at if reading.daily else min(reading.reset_at, window + ARRIVAL_MARGIN)

    def _seconds_of(self, name: str) -> float:
        """The length of the window a reading names, where it is one of ours (else a minute)."""
        return next((w.seconds for w in self.budget.windows if w.name == name), 60.0)

    def _day_spent(self, reset_at: float | None) -> RateLimited:
        until = f" until {datetime.fromtimestamp(reset_at, UTC):%Y-%m-%d %H:%M} UTC" if reset_at is not None else ""
        return RateLimited(
            f"the platform's daily call limit is used up{until}; this connection stops for this run "
            "and continues at the next one",
            connection=self.connection,
            for_the_day=True,
        )
