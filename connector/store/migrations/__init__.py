"""Schema migrations with Alembic, run by `Store.open` on every start, inside one transaction.

The revisions live in `versions/` inside the package (installed with it); `env.py` runs them on the store's own
connection. Stores written by releases before Alembic carry a `schema_version` table (1 to 4): they are stamped
at the matching revision (`LEGACY_REVISIONS`) and upgraded in place from there. A store whose revision this release
does not know was written by a newer one: it is refused instead of guessed at.

Adding a table or column (every engineer does this the same way):

1. Change the table in `connector/store/schema.py` (the current shape the queries use).
2. Find the current head: the highest-numbered file in `versions/`, or
   `python -c "from connector.store.migrations import head; print(head())"`. There must be exactly one head: a
   test fails when two revisions name the same `down_revision`: then chain yours on the other (its revision
   becomes your `down_revision`, and your number the next one).
3. Add `versions/NNNN_what_it_adds.py`, numbered one higher, with `revision = "NNNN"` and
   `down_revision = "<the head>"`, and an `upgrade()` using `alembic.op` with the columns spelled out (never
   `schema.<table>`: a revision must do the same thing forever, whatever schema.py later says). Copy
   `script.py.mako`'s layout or an existing revision. Forward only: no `downgrade()`.
4. SQLite alters tables only through Alembic's batch mode (`with op.batch_alter_table("t") as batch: ...`);
   `op.add_column` of a nullable column works directly on both databases.
5. The store methods that use it go in the module of their concern (`connections.py`, `outbox.py`, ...; a new
   concern is a new mixin listed in `store.py`).
6. `tests/connector/store/test_store_migrations.py` then checks, on SQLite and PostgreSQL, that a new store and
   a store of every earlier schema version end up exactly as `schema.py` says.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, select, text

from connector.store import schema
from connector.store.errors import StoreError

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).parent
"""Where the revisions are (`env.py`, `versions/`)."""

LEGACY_REVISIONS = {1: "0001", 2: "0002", 3: "0003", 4: "0004"}
"""`schema_version` of a store from before Alembic → the revision that produces the same schema."""


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = conn
    return config


def head() -> str:
    """The revision this release brings every store to."""
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def current_revision(conn: Connection) -> str | None:
    """The store's revision (None for an empty database or a store from before Alembic)."""
    return MigrationContext.configure(conn).get_current_revision()


def migrate(conn: Connection, revision: str = "head") -> None:
    """Bring the schema up to `revision` (the head by default) in the caller's transaction (all or nothing).

    Refuses a database written by a newer Dunning Connector instead of guessing at its tables.
    """
    # Alembic's own INFO lines (its context, each revision's docstring) are not for a bookkeeper: one line is ours.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if conn.dialect.name == "postgresql":
        # Two processes starting at once must not both create the tables.
        conn.execute(text("SELECT pg_advisory_xact_lock(7343000001)"))
    config = _config(conn)
    scripts = ScriptDirectory.from_config(config)
    target = scripts.get_current_head() if revision == "head" else revision
    found = current_revision(conn)
    if found == target:
        return
    if found is None:
        legacy = _legacy_version(conn)
        if legacy is not None:
            found = LEGACY_REVISIONS[legacy]
            command.stamp(config, found)
    else:
        try:
            scripts.get_revision(found)
        except CommandError:
            raise StoreError(
                f"the store has schema revision {found}, newer than this Dunning Connector knows "
                f"({scripts.get_current_head()}); upgrade dunning-connector"
            ) from None
    command.upgrade(config, revision)
    if found is not None:
        log.info("store schema upgraded from revision %s to %s", found, target)


def _legacy_version(conn: Connection) -> int | None:
    """The `schema_version` a release before Alembic left (None: a new, empty database)."""
    if not conn.dialect.has_table(conn, schema.schema_version.name):
        return None
    version = conn.execute(select(schema.schema_version.c.version)).scalar_one_or_none()
    if not version:
        return None
    if version not in LEGACY_REVISIONS:
        raise StoreError(
            f"the store has schema version {version}, newer than this Dunning Connector knows; "
            "upgrade dunning-connector"
        )
    return version
