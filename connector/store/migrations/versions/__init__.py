"""The store's Alembic revisions, one file per schema change, chained by `down_revision` (see `..` for how)."""
