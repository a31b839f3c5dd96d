"""How releases before Alembic built the store, frozen (schema.py and migrations.py as released, schema versions
1 to 4), so the tests can make a store of every released version and open it with today's code.

Do not change: this is what is on users' disks.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from connector.store.columns import ExactDecimal, UTCDateTime

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

connections = Table(
    "connections",
    metadata,
    Column("name", String, primary_key=True),
    Column("provider", String, nullable=False),
    Column("tenant", String),
    Column("sync_cursor", Text),
    Column("last_sync_at", UTCDateTime),
    Column("needs_reauth", Boolean, nullable=False, default=False),
    Column("reauth_reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    # When a sync that re-read the whole open set last COMPLETED; the periodic full re-read counts from it.
    Column("last_full_sync_at", UTCDateTime),
    # What the platform's own settings need fixing (e.g. its automatic reminders are on): a JSON list of texts,
    # checked at each full sync and shown by `dunning status`.
    Column("platform_warnings", Text),
)

debtors = Table(
    "debtors",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connection", String, ForeignKey("connections.name"), nullable=False),
    Column("platform_id", String, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", String, nullable=False),
    Column("emails", JSON, nullable=False),
    Column("phone", String),
    Column("address", JSON, nullable=False),
    Column("coc_number", String),
    Column("vat_number", String),
    Column("language", String),
    Column("contact_person", Text),
    Column("version", String),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("connection", "platform_id", name="uq_debtors_connection_platform_id"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connection", String, ForeignKey("connections.name"), nullable=False),
    Column("platform_id", String, nullable=False),
    Column("number", String),
    Column("debtor_id", String, nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", ExactDecimal, nullable=False),
    Column("amount_paid", ExactDecimal, nullable=False),
    Column("outstanding", ExactDecimal, nullable=False),
    Column("is_credit_note", Boolean, nullable=False),
    Column("status", String, nullable=False),
    Column("is_open", Boolean, nullable=False),
    Column("payment_url", Text),
    Column("reference", Text),
    Column("promised_payment_date", Date),
    Column("last_modified", UTCDateTime),
    Column("version", String),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    UniqueConstraint("connection", "platform_id", name="uq_invoices_connection_platform_id"),
    # The planner streams open invoices grouped per debtor.
    Index("ix_invoices_open_by_debtor", "is_open", "connection", "debtor_id", "id"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("invoice_id", Id, ForeignKey("invoices.id"), nullable=False),
    Column("kind", String, nullable=False),
    Column("on_date", Date, nullable=False),
    Column("step", String),
    Column("data", JSON, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Index("ix_events_invoice", "invoice_id", "id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("idempotency_key", String, nullable=False, unique=True),
    Column("connection", String, ForeignKey("connections.name"), nullable=False),
    Column("kind", String, nullable=False),  # reminder | note | handoff_note
    Column("payload", JSON, nullable=False),
    Column("status", String, nullable=False),  # pending | sent | failed | task
    Column("attempts", Integer, nullable=False, default=0),
    Column("receipt", JSON),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_outbox_status", "status", "connection"),
)

handoff_cases = Table(
    "handoff_cases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connection", String, ForeignKey("connections.name"), nullable=False),
    Column("debtor_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("exported_at", UTCDateTime),
    Column("payload", JSON, nullable=False),
)


# `connections` as versions 1 and 2 had it (version 3 added last_full_sync_at, version 4 platform_warnings).
connections_v1 = Table(
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
    for table in (connections_v1, debtors, invoices, events):
        table.create(conn)


def _v2_delivery_tables(conn: Connection) -> None:
    for table in (outbox, handoff_cases):
        table.create(conn)


def _v3_last_full_sync(conn: Connection) -> None:
    column = connections.c.last_full_sync_at
    conn.execute(text(f"ALTER TABLE connections ADD COLUMN {column.name} {column.type.compile(conn.dialect)}"))


def _v4_platform_warnings(conn: Connection) -> None:
    column = connections.c.platform_warnings
    conn.execute(text(f"ALTER TABLE connections ADD COLUMN {column.name} {column.type.compile(conn.dialect)}"))


RELEASED = (_v1_sync_tables, _v2_delivery_tables, _v3_last_full_sync, _v4_platform_warnings)


def build(conn: Connection, version: int) -> None:
    """An empty store exactly as the release with schema `version` left it."""
    schema_version.create(conn)
    for migration in RELEASED[:version]:
        migration(conn)
    conn.execute(schema_version.insert().values(version=version))
