"""The outbox for platform writes and the cases handed to a collection agency (released schema version 2).

Revision ID: 0002
Revises: 0001
"""

from alembic import op
from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Integer, String, Text

from connector.store.columns import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

Id = BigInteger().with_variant(Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("idempotency_key", String, nullable=False, unique=True),
        Column("connection", String, ForeignKey("connections.name"), nullable=False),
        Column("kind", String, nullable=False),
        Column("payload", JSON, nullable=False),
        Column("status", String, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("receipt", JSON),
        Column("last_error", Text),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_outbox_status", "outbox", ["status", "connection"])
    op.create_table(
        "handoff_cases",
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("connection", String, ForeignKey("connections.name"), nullable=False),
        Column("debtor_id", String, nullable=False),
        Column("status", String, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("exported_at", UTCDateTime),
        Column("payload", JSON, nullable=False),
    )
