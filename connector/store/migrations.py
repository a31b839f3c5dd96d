"""Forward-only schema migrations, applied in order inside one transaction by `Store.open`.

A migration is a function taking a Connection; its position in `MIGRATIONS` (1-based) is the schema version it
produces. Never edit or reorder a released migration: append a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)

from connector.store import schema
from connector.store.columns import UTCDateTime
from connector.store.errors import StoreError

Migration = Callable[[Connection], None]

# `connections` as version 1 created it (version 3 added last_full_sync_at). Its own MetaData, so the foreign
# keys of the other tables still resolve to the current definition.
_v1_connections = Table(
    "connections",
    MetaData(),
    Column("name", String, primary_key=True),
    Column("provider", String, nullable=False),
    Column("tenant", String),
    Column("sync_cursor", Text),
    Column("last_sync_at", UTCDateTime),
    Column("needs_reauth", Boolean, nullable=False, default=False),
    Column("reauth_reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
)


def _v1_sync_tables(conn: Connection) -> None:
    """Connections with their cursors, debtors, invoices and the invoice history."""
    for table in (_v1_connections, schema.debtors, schema.invoices, schema.events):
        table.create(conn)


def _v2_delivery_tables(conn: Connection) -> None:
    """The outbox for platform writes and the cases handed to a collection agency."""
    for table in (schema.outbox, schema.handoff_cases):
        table.create(conn)


def _v3_last_full_sync(conn: Connection) -> None:
    """When each connection last completed a full re-read, for the periodic full sync (`[sync] full_every_days`)."""
    column = schema.connections.c.last_full_sync_at
    conn.execute(text(f"ALTER TABLE connections ADD COLUMN {column.name} {column.type.compile(conn.dialect)}"))


def _v4_platform_warnings(conn: Connection) -> None:
    """What the platform's own settings need fixing, as last checked (e.g. its automatic reminders are on)."""
    column = schema.connections.c.platform_warnings
    conn.execute(text(f"ALTER TABLE connections ADD COLUMN {column.name} {column.type.compile(conn.dialect)}"))


MIGRATIONS: tuple[Migration, ...] = (
    _v1_sync_tables,
    _v2_delivery_tables,
    _v3_last_full_sync,
    _v4_platform_warnings,
)


def current_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, schema.schema_version.name):
        return 0
    return conn.execute(select(schema.schema_version.c.version)).scalar_one_or_none() or 0


def migrate(conn: Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the schema up to `len(migrations)`; the caller's transaction makes it all-or-nothing.

    Refuses a database written by a newer Dunning Connector instead of guessing at its tables.
    """
    if conn.dialect.name == "postgresql":
        # Two processes starting at once must not both create the tables.
        conn.execute(text("SELECT pg_advisory_xact_lock(7343000001)"))
    if not conn.dialect.has_table(conn, schema.schema_version.name):
        schema.schema_version.create(conn)
    found = current_version(conn)
    if found > len(migrations):
        raise StoreError(
            f"the store has schema version {found}, newer than this Dunning Connector knows ({len(migrations)}); "
            "upgrade dunning-connector"
        )
    for version in range(found + 1, len(migrations) + 1):
        migrations[version - 1](conn)
    target = len(migrations)
    if found == 0:
        conn.execute(schema.schema_version.insert().values(version=target))
    elif target != found:
        conn.execute(schema.schema_version.update().values(version=target))
    return target
