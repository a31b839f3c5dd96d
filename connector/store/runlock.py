"""One `dunning run` at a time per store, so two schedulers (or a scheduler and a person) never work one day twice.

PostgreSQL: the database's own advisory lock, held by a session for the run, so machines sharing one store exclude
each other too and a crashed run's lock ends with its connection. SQLite: an exclusive lock on a file beside the
database (the operating system drops it when the process dies). A store in memory is private to its process and
needs none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Engine, text

from providers.errors import DunningError

ALREADY_RUNNING_EXIT = 75
"""The exit code of a run that found another one working (EX_TEMPFAIL: try again later; nothing was done)."""


class AlreadyRunning(DunningError):
    """Another run holds this store's run lock."""


@contextmanager
def run_lock(engine: Engine, *, name: str = "run") -> Iterator[None]:
    """Hold the store's `name` lock for the block, or raise `AlreadyRunning` at once (never wait)."""
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        with _advisory_lock(engine, name):
            yield
        return
    database = engine.url.database
    if backend != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock = FileLock(f"{database}.{name}.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise AlreadyRunning(_busy(f"the store {Path(database).name}", name)) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _advisory_lock(engine: Engine, name: str) -> Iterator[None]:
    key = f"dunning:{name}:"  # plus the schema: stores sharing one database in separate schemas are separate stores
    with engine.connect() as conn:
        taken = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:key || current_schema()))"),
                             {"key": key}).scalar()
        conn.commit()
        if not taken:
            raise AlreadyRunning(_busy("the PostgreSQL store", name))
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key || current_schema()))"), {"key": key})
            conn.commit()


def _busy(store: str, name: str) -> str:
    return (f"another dunning {name} is working on {store} (started by a scheduler or by hand); this one did nothing "
            f"and stops. Try again when it has finished")
