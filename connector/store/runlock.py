"""One `dunning run` at a time per store, so two schedulers (or a scheduler and a person) never work one day twice.

The store's `run` lock (`locks.py`): PostgreSQL's advisory lock, so machines sharing one store exclude each other
and a crashed run's lock ends with its connection; on SQLite a file lock beside the database. A run never waits:
the second one stops at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from connector.store.locks import Busy, hold_lock

ALREADY_RUNNING_EXIT = 75
"""The exit code of a run that found another one working (EX_TEMPFAIL: try again later; nothing was done)."""


class AlreadyRunning(Busy):
    """Another run holds this store's run lock."""


@contextmanager
def run_lock(engine: Engine, *, name: str = "run") -> Iterator[None]:
    """Hold the store's `name` lock for the block, or raise `AlreadyRunning` at once (never wait)."""
    with hold_lock(engine, name, busy=AlreadyRunning):
        yield
