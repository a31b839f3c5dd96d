"""What every part of the store shares: the engine, the clock and the one way to open a write transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from connector.clock import Clock, utc_now
from connector.store.engine import WRITE

IN_CHUNK = 500
"""Ids per IN (...) list: far below SQLite's bound-parameter limit."""


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """One write transaction (on SQLite it takes the write lock up front, see `engine.py`)."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            yield conn


class StoreBase:
    """The state every concern of the store works on; `Store` combines the concerns over it."""

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self.engine = engine
        self._clock = clock

    def _write(self) -> AbstractContextManager[Connection]:
        return write_connection(self.engine)
