"""When each connection last completed a full re-read, for the periodic full sync (released schema version 3).

Revision ID: 0003
Revises: 0002
"""

from alembic import op
from sqlalchemy import Column

from connector.store.columns import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("connections", Column("last_full_sync_at", UTCDateTime))
