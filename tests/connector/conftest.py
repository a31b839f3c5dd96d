from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connector.store import Store


class FixedClock:
    """The store's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store(store_url: str, clock: FixedClock) -> Iterator[Store]:
    """An empty store with connection `acme` (provider fake, tenant T1) registered."""
    with Store.open(store_url, clock=clock) as opened:
        opened.ensure_connection("acme", "fake", "T1")
        yield opened
