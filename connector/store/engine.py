"""One engine factory for SQLite (the default) and PostgreSQL, so the rest of the store is dialect-free."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from connector.store.columns import json_dumps
from connector.store.errors import StoreError

WRITE = "dunning_write"
"""Execution option marking a connection that will write (SQLite then takes the write lock up front)."""


def create_store_engine(url: str) -> Engine:
    parsed = make_url(url)
    try:
        engine = create_engine(parsed, json_serializer=json_dumps, pool_pre_ping=parsed.get_backend_name() != "sqlite")
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"the database driver for {parsed.drivername} is not installed ({exc.name}); for PostgreSQL: "
            "pip install 'dunning-connector[postgres]'"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        _create_private(parsed.database)
        _configure_sqlite(engine)
    return engine


def _create_private(database: str | None) -> None:
    """Create a new SQLite store readable by its owner only (0600, like the token folder): it holds debtors'
    names, addresses and amounts. SQLite gives its -wal and -shm files the database file's mode, and `locks.py` its
    lock files the same. An existing file keeps the mode its owner gave it."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError:  # it exists (keeps its mode), or SQLite will say why it cannot be opened
        pass


def _configure_sqlite(engine: Engine) -> None:
    """WAL (readers never block the sync), foreign keys on, and real transactions.

    pysqlite's own transaction handling does not cover DDL, so migrations would not be atomic; the documented
    remedy is to switch it off and emit BEGIN ourselves. A writer begins IMMEDIATE: it waits for the write lock
    (busy timeout) instead of failing halfway when another process writes at the same time.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")
