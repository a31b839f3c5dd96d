"""Alembic keeps the schema from here on; `schema_version` stays only to stop a release from before it.

Those releases read `schema_version` and refuse a number above the 4 they know ("upgrade dunning-connector")
instead of trying to create tables that exist. A store they migrated keeps its table; a new one gets it here.

Revision ID: 0005
Revises: 0004
"""

from alembic import op
from sqlalchemy import Column, Integer, inspect

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

NEWER_THAN_ANY_RELEASE_BEFORE_ALEMBIC = 5


def upgrade() -> None:
    if "schema_version" not in inspect(op.get_bind()).get_table_names():
        op.create_table("schema_version", Column("version", Integer, nullable=False))
    op.execute("DELETE FROM schema_version")
    op.execute(f"INSERT INTO schema_version (version) VALUES ({NEWER_THAN_ANY_RELEASE_BEFORE_ALEMBIC})")
