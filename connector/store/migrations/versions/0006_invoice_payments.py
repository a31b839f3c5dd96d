"""Each invoice's payments with the platform's dates (interest follows the money day by day).

Revision ID: 0006
Revises: 0005
"""

from alembic import op
from sqlalchemy import JSON, Column

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", Column("payments", JSON))
