"""The one clock type of the application: a function returning the current moment as an aware datetime (UTC).

The store stamps its rows with it, the application layer derives "today" from it, and the demo and tests replace
it with a virtual clock. (The HTTP machinery's rate limiter counts seconds instead: `providers.base.Ticks`.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
