"""Rate limiting: keeps one connection within its platform's call windows, before the platform has to refuse."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.base import Clock, Sleep
from providers.errors import RateLimited

@dataclass(frozen=True)
class RateWindow:
    """At most `limit` calls in any `seconds` (per tenant). `pace` spreads them evenly instead of bursting."""

    name: str
    limit: int
    seconds: float
    pace: bool = False


@dataclass(frozen=True)
class LimitReading:
    """What a response's headers say about one of the platform's windows."""

    window: str
    remaining: int | None
    reset_at: float | None = None
    """Epoch seconds when the window resets, where the platform says."""
    daily: bool = False


class RateLimiter:
    """Keeps one connection within its platform's windows, before the platform has to refuse.

    Sliding logs: no interval of `seconds` ever holds more than `limit` calls, which also keeps every fixed window
    the platform counts in within budget, whatever its alignment. Header readings tighten it further: when the
    platform says a window is spent, calls wait for its reset (a daily window raises instead of waiting hours).
    """

    def __init__(
        self, windows: Sequence[RateWindow], *, clock: Clock, sleep: Sleep, max_wait: float, connection: str | None = None
    ) -> None:
        self.windows = tuple(windows)
        self.connection = connection
        self._log: dict[str, deque[float]] = {w.name: deque() for w in self.windows}
        self._blocked_until = 0.0
        self._spent_for_the_day: RateLimited | None = None
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait

    def acquire(self) -> None:
        """Wait until one more call fits every window, then count it."""
        if self._spent_for_the_day is not None:
            raise self._spent_for_the_day
        while True:
            wait = self._wait_needed(self._clock())
            if wait <= 0:
                break
            if wait > self._max_wait:  # a spent daily budget: a scheduled job must not sleep for hours
                resume = datetime.fromtimestamp(self._clock() + wait, UTC)
                raise RateLimited(
                    f"this run has used the platform's call budget until {resume:%Y-%m-%d %H:%M} UTC; this connection "
                    "stops for this run and continues at the next one",
                    connection=self.connection,
                    for_the_day=True,
                )
            self._sleep(wait)
        now = self._clock()
        for window in self.windows:
            self._log[window.name].append(now)

    def _wait_needed(self, now: float) -> float:
        wait = self._blocked_until - now
        for window in self.windows:
            calls = self._log[window.name]
            while calls and calls[0] <= now - window.seconds:
                calls.popleft()
            if len(calls) >= window.limit:
                wait = max(wait, calls[0] + window.seconds - now)
            if window.pace and calls:
                wait = max(wait, calls[-1] + window.seconds / window.limit - now)
        return wait

    def observe(self, readings: Sequence[LimitReading], *, connection: str) -> None:
        """Take the platform's own count into account (other processes or apps may share the budget).

        A spent daily budget stops the *next* call, so the answer that reported it is still used.
        """
        now = self._clock()
        for reading in readings:
            if reading.remaining is None or reading.remaining > 0:
                continue
            if reading.daily and (reading.reset_at is None or reading.reset_at - now > self._max_wait):
                until = (
                    f" until {datetime.fromtimestamp(reading.reset_at, UTC):%Y-%m-%d %H:%M} UTC"
                    if reading.reset_at is not None
                    else ""
                )
                self._spent_for_the_day = RateLimited(
                    f"the platform's daily call limit is used up{until}; this connection stops for this run "
                    "and continues at the next one",
                    connection=connection,
                    for_the_day=True,
                )
                continue
            reset_at = reading.reset_at if reading.reset_at is not None else now + 60
            self._blocked_until = max(self._blocked_until, reset_at)


