"""Alembic's entry point, run by `connector.store.migrations` on the store's own connection (never from a URL in a
config file: the store is opened the one way the application opens it)."""

from alembic import context

from connector.store import schema

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=schema.metadata,
    render_as_batch=True,  # SQLite alters a table by copying it; Alembic's batch mode does that for us
)
with context.begin_transaction():  # inside the caller's transaction: all revisions land together or none does
    context.run_migrations()
