"""Connections with their cursors, debtors, invoices and the invoice history (released schema version 1).

Revision ID: 0001
Revises:
"""

from alembic import op
from sqlalchemy import JSON, BigInteger, Boolean, Column, Date, ForeignKey, Integer, String, Text, UniqueConstraint

from connector.store.columns import ExactDecimal, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

# Frozen here, not taken from schema.py: this revision must create what version 1 created, whatever comes later.
Id = BigInteger().with_variant(Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "connections",
        Column("name", String, primary_key=True),
        Column("provider", String, nullable=False),
        Column("tenant", String),
        Column("sync_cursor", Text),
        Column("last_sync_at", UTCDateTime),
        Column("needs_reauth", Boolean, nullable=False),
        Column("reauth_reason", Text),
        Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "debtors",
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
    op.create_table(
        "invoices",
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
    )
    op.create_index("ix_invoices_open_by_debtor", "invoices", ["is_open", "connection", "debtor_id", "id"])
    op.create_table(
        "events",
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("invoice_id", Id, ForeignKey("invoices.id"), nullable=False),
        Column("kind", String, nullable=False),
        Column("on_date", Date, nullable=False),
        Column("step", String),
        Column("data", JSON, nullable=False),
        Column("recorded_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_events_invoice", "events", ["invoice_id", "id"])
