"""An invoice's history: events appended, never changed, read back oldest first."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import Connection, func, select

from connector.models import Event, EventKind
from connector.store import schema
from connector.store.base import StoreBase, chunks
from connector.store.errors import StoreError
from connector.store.rows import EVENT_COLUMNS, event_from_row


class EventsMixin(StoreBase):
    """The store's history methods (mixed into `Store`)."""

    def events(self, connection: str, invoice_platform_id: str) -> tuple[Event, ...]:
        """An invoice's history, oldest first."""
        with self.engine.connect() as conn:
            invoice_id = self._invoice_id(conn, connection, invoice_platform_id)
            return self._events_of(conn, [invoice_id]).get(invoice_id, ())

    def append_event(self, connection: str, invoice_platform_id: str, event: Event) -> Event:
        """Add to an invoice's history (never changes earlier entries); returns the event as stored."""
        stored = event if event.recorded_at else event.model_copy(update={"recorded_at": self._clock()})
        with self._write() as conn:
            invoice_id = self._invoice_id(conn, connection, invoice_platform_id)
            self._insert_events(conn, invoice_id, [stored], self._clock())
        return stored

    def recent_mails(self, since: date, connection: str | None = None) -> dict[tuple[str, str], date]:
        """(connection, debtor id) → the last reminder mailed on or after `since`, about ANY invoice of the debtor
        (also one closed since), so the planner keeps its minimum gap between two mails to one debtor."""
        e, i = schema.events.c, schema.invoices.c
        query = (
            select(i.connection, i.debtor_id, func.max(e.on_date))
            .join(schema.invoices, i.id == e.invoice_id)
            .where(e.kind == EventKind.REMINDER_SENT.value, e.on_date >= since)
            .group_by(i.connection, i.debtor_id)
        )
        if connection is not None:
            query = query.where(i.connection == connection)
        with self.engine.connect() as conn:
            return {(row[0], row[1]): row[2] for row in conn.execute(query)}

    @staticmethod
    def _events_of(conn: Connection, invoice_ids: Sequence[int]) -> dict[int, tuple[Event, ...]]:
        e = schema.events.c
        found: dict[int, list[Event]] = {}
        for chunk in chunks(invoice_ids):
            query = select(e.invoice_id, *EVENT_COLUMNS).where(e.invoice_id.in_(chunk)).order_by(e.invoice_id, e.id)
            for row in conn.execute(query):
                invoice_id, event = row[0], event_from_row(row[1:])
                if invoice_id in found:
                    found[invoice_id].append(event)
                else:
                    found[invoice_id] = [event]
        return {key: tuple(value) for key, value in found.items()}

    @staticmethod
    def _invoice_id(conn: Connection, connection: str, platform_id: str) -> int:
        i = schema.invoices.c
        invoice_id = conn.execute(
            select(i.id).where(i.connection == connection, i.platform_id == platform_id)
        ).scalar_one_or_none()
        if invoice_id is None:
            raise StoreError(f"invoice id {platform_id} is not in the store", connection=connection)
        return invoice_id

    @staticmethod
    def _insert_events(conn: Connection, invoice_id: int, history: Iterable[Event], now: datetime) -> None:
        rows = [
            {
                "invoice_id": invoice_id,
                "kind": event.kind.value,
                "on_date": event.on,
                "step": event.step,
                "data": event.data,
                "recorded_at": event.recorded_at or now,
            }
            for event in history
        ]
        if rows:
            conn.execute(schema.events.insert(), rows)
