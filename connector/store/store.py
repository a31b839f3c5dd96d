"""The store: the only state shared between sync, planning, delivery and export.

Every write is one transaction, so a crash leaves the store as it was before the call, and every step can be
re-run and picks up where the store says it stands. `Store` is one facade over modules by concern:

| concern | module |
|---|---|
| engine, clock, write transactions | `base.py`, `engine.py` |
| connections and their authorisation | `connections.py` |
| sync state and sync pages | `sync_pages.py` |
| reading invoices and debtors | `reads.py` (rows ↔ models: `rows.py`) |
| invoice history | `events.py` |
| outbox rows; delivery's claim/finish | `outbox.py`; `delivery.py` |
| handoff cases | `handoff.py` |
| named locks (one sync per connection, one run per store) | `locks.py` |
| database errors → `StoreError` without SQL or data | `guard.py` |
| schema and its migrations | `schema.py`, `migrations.py` |

A new concern is a mixin of `StoreBase` in its own module, added to `Store`'s bases below.
"""

from __future__ import annotations

from typing import Self

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from connector.store.base import Clock, StoreBase, utc_now, write_connection
from connector.store.connections import ConnectionsMixin, ConnectionStatus
from connector.store.delivery import DeliveryMixin
from connector.store.engine import create_store_engine
from connector.store.errors import StoreUnavailable
from connector.store.guard import guard_public_methods
from connector.store.handoff import HandoffCases
from connector.store.locks import LocksMixin
from connector.store.migrations import migrate
from connector.store.outbox import OutboxEntry, OutboxMixin
from connector.store.reads import ReadsMixin
from connector.store.sync_pages import PageWritten, SyncPagesMixin

__all__ = ["ConnectionStatus", "OutboxEntry", "PageWritten", "Store"]


class Store(
    ConnectionsMixin, SyncPagesMixin, ReadsMixin, OutboxMixin, DeliveryMixin, HandoffCases, LocksMixin, StoreBase
):
    """Debtors, invoices and their history per connection, the outbox and handoff cases."""

    @classmethod
    def open(cls, url: str, *, clock: Clock = utc_now) -> Self:
        """Connect and bring the schema up to date (all migrations in one transaction)."""
        engine = create_store_engine(url)
        try:
            with write_connection(engine) as conn:
                migrate(conn)
        except DBAPIError as exc:  # unreachable server, missing folder, not a database, no permission
            engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            shown = make_url(url).render_as_string(hide_password=True)
            raise StoreUnavailable(f"store.url: cannot open the store {shown}: {reason}") from None
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock=clock)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


guard_public_methods(Store)
