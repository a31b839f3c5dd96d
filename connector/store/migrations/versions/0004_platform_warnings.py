"""What the platform's own settings need fixing, as last checked (released schema version 4).

Revision ID: 0004
Revises: 0003
"""

from alembic import op
from sqlalchemy import Column, Text

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("connections", Column("platform_warnings", Text))
