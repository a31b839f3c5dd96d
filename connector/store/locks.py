"""Named locks across processes and machines: one sync per connection, one `dunning run` per store.

PostgreSQL: the database's own advisory lock, held by one session for the block, so machines sharing a store
exclude each other and a crashed holder's lock ends with its connection. SQLite: an exclusive lock on a file beside
the database (0600, like the store; the operating system drops it when the process dies). A store in memory is
private to its process and needs none. Both wait up to `wait_seconds`, then raise `Busy` naming what is running.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from connector.store.base import StoreBase
from connector.store.errors import StoreError
from connector.store.guard import database_error

_POLL_SECONDS = 0.1


class Busy(StoreError):
    """Another process holds the lock: this one did nothing."""


class LocksMixin(StoreBase):
    """The store's lock method (mixed into `Store`)."""

    def lock(
        self, name: str, *, connection: str | None = None, wait_seconds: float = 0.0
    ) -> AbstractContextManager[None]:
        """Hold the lock `name` (of `connection`, if given) for a `with` block; wait up to `wait_seconds` for it,
        then raise `Busy`. E.g. `with store.lock("sync", connection="acme", wait_seconds=5): ...`."""
        return hold_lock(self.engine, name, connection=connection, wait_seconds=wait_seconds)


@contextmanager
def hold_lock(
    engine: Engine,
    name: str,
    *,
    connection: str | None = None,
    wait_seconds: float = 0.0,
    busy: type[Busy] = Busy,
) -> Iterator[None]:
    """`Store.lock` on an engine (for callers that hold only the engine); raises `busy` when the lock stays taken."""
    backend = engine.url.get_backend_name()
    database = engine.url.database
    if backend == "postgresql":
        with engine.connect() as conn:
            try:
                _advisory_lock(conn, _key(name, connection), wait_seconds, name, connection, busy)
            except SQLAlchemyError as exc:
                raise database_error(exc, f"take the {name} lock", connection) from None
            try:
                yield
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key || current_schema()))"),
                                 {"key": _key(name, connection)})
                    conn.commit()
                except SQLAlchemyError:  # the session is gone, and its lock with it; keep the block's own error
                    conn.invalidate()
        return
    if backend != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock = FileLock(f"{database}.{_file_part(name, connection)}.lock", mode=0o600)
    try:
        lock.acquire(timeout=wait_seconds, poll_interval=_POLL_SECONDS)
    except Timeout:
        store = f"the store {Path(database).name}"
        raise busy(_busy_message(name, connection, wait_seconds, store), connection=connection) from None
    try:
        yield
    finally:
        lock.release()


def _key(name: str, connection: str | None) -> str:
    # plus the schema (added in SQL): stores sharing one database in separate schemas are separate stores
    return f"dunning:{name}:" + (f"{connection}:" if connection is not None else "")


def _file_part(name: str, connection: str | None) -> str:
    part = name if connection is None else f"{name}-{connection}"
    return part if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", part) else hashlib.sha256(part.encode()).hexdigest()[:16]


def _advisory_lock(
    conn: Connection, key: str, wait_seconds: float, name: str, connection: str | None, busy: type[Busy]
) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        taken = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:key || current_schema()))"),
                             {"key": key}).scalar()
        conn.commit()  # the lock belongs to the session; no transaction stays open while the block runs
        if taken:
            return
        if time.monotonic() >= deadline:
            raise busy(_busy_message(name, connection, wait_seconds, "the PostgreSQL store"), connection=connection)
        time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def _busy_message(name: str, connection: str | None, wait_seconds: float, store: str) -> str:
    what = f"{name} of this connection" if connection is not None else f"dunning {name}"
    waited = f"waited {wait_seconds:g} s, " if wait_seconds > 0 else ""
    return (
        f"another {what} is working on {store} (started by a scheduler or by hand); this one {waited}did nothing and "
        "stops. Try again when it has finished"
    )
