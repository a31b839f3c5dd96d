"""The current shape of the store's tables (SQLAlchemy Core; one definition for SQLite and PostgreSQL).

Queries use these objects. The Alembic revisions in `migrations/versions/` create and alter the tables, each with
its columns spelled out (frozen), and a test checks that every store migrated to the head matches this file
exactly; `migrations/__init__.py` says how to add a revision.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from connector.store.columns import ExactDecimal, UTCDateTime

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")

# Kept only as a stop sign for releases from before Alembic (see revision 0005); Alembic's own `alembic_version`
# says where a store stands.
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
    # The platform's payments with their dates, [{"on": ISO date, "amount": decimal text}, ...]; NULL: none given.
    Column("payments", JSON),
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
