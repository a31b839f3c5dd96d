"""Sync pages: what an adapter needs to fetch only what changed, and one page written in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, select

from connector.models import PLATFORM, Debtor, Event, EventKind, Invoice
from connector.store import schema
from connector.store.base import chunks
from connector.store.errors import StoreError
from connector.store.events import EventsMixin
from connector.store.rows import debtor_values, invoice_values
from providers.base import SyncPage, SyncState


@dataclass(frozen=True)
class PageWritten:
    """What one sync page changed in the store."""

    changed: int
    """Invoices that were new or differ from what the store held."""
    closed: int
    """Invoices that left the open set with this page."""


class SyncPagesMixin(EventsMixin):
    """The store's sync methods (mixed into `Store`)."""

    def sync_state(self, connection: str, *, full: bool = False) -> SyncState:
        """What an adapter needs to fetch only what changed (with `full`, no cursor: re-read everything)."""
        c, i, d = schema.connections.c, schema.invoices.c, schema.debtors.c
        with self.engine.connect() as conn:
            cursor = conn.execute(select(c.sync_cursor).where(c.name == connection)).scalar_one_or_none()
            rows = conn.execute(select(i.platform_id, i.version, i.debtor_id)
                                .where(i.connection == connection, i.is_open.is_(True))).tuples().all()
            known_debtors = dict(
                conn.execute(select(d.platform_id, d.version).where(d.connection == connection)).tuples().all()
            )
        open_invoices = {platform_id: version for platform_id, version, _debtor in rows}
        missing = frozenset(debtor for _id, _version, debtor in rows if debtor not in known_debtors)
        return SyncState(cursor=None if full else cursor, open_invoices=open_invoices, debtors=known_debtors,
                         debtors_missing=missing, full=full)

    def write_sync_page(self, connection: str, page: SyncPage) -> PageWritten:
        """Store one page (debtors, invoices, closed ids and the cursor) in ONE transaction.

        History is appended on the way: `payment_seen` when the outstanding amount dropped, `closed` when an
        invoice left the open set, `reopened` when a closed one came back. Invoices are never deleted.
        """
        for item in (*page.invoices, *page.debtors):
            if item.connection != connection:
                raise StoreError(
                    f"page holds {type(item).__name__.lower()} {item.platform_id} of connection {item.connection}",
                    connection=connection,
                )
        now = self._clock()
        with self._write() as conn:
            c = schema.connections.c
            if conn.execute(select(c.name).where(c.name == connection)).one_or_none() is None:
                raise StoreError("unknown connection: register it before writing sync pages", connection=connection)
            self._upsert_debtors(conn, connection, page.debtors, now)
            changed, closed = self._upsert_invoices(conn, connection, page.invoices, now, compared=page.compared)
            closed += self._close_invoices(conn, connection, page.closed_invoice_ids, now)
            closed += self._close_invoices(conn, connection, page.deleted_invoice_ids, now,
                                           detail="deleted on the platform")
            if page.cursor is not None:
                conn.execute(schema.connections.update().where(c.name == connection).values(sync_cursor=page.cursor))
        return PageWritten(changed=changed, closed=closed)

    def _upsert_debtors(self, conn: Connection, connection: str, debtors: Sequence[Debtor], now: datetime) -> None:
        d = schema.debtors.c
        existing = _ids_by_platform_id(conn, schema.debtors, connection, [x.platform_id for x in debtors])
        for debtor in debtors:
            values = debtor_values(debtor) | {"updated_at": now}
            if debtor.platform_id in existing:
                conn.execute(schema.debtors.update().where(d.id == existing[debtor.platform_id]).values(**values))
            else:
                conn.execute(
                    schema.debtors.insert().values(connection=connection, platform_id=debtor.platform_id, **values)
                )

    def _upsert_invoices(
        self, conn: Connection, connection: str, invoices: Sequence[Invoice], now: datetime, *, compared: bool = False
    ) -> tuple[int, int]:
        i = schema.invoices.c
        old_rows: dict[str, Row[Any]] = {}
        for chunk in chunks([x.platform_id for x in invoices]):
            query = select(schema.invoices).where(i.connection == connection, i.platform_id.in_(chunk))
            old_rows.update({row.platform_id: row for row in conn.execute(query)})
        changed = closed = 0
        for invoice in invoices:
            values = invoice_values(invoice)
            old = old_rows.get(invoice.platform_id)
            if old is None:
                inserted = conn.execute(
                    schema.invoices.insert().values(
                        connection=connection,
                        platform_id=invoice.platform_id,
                        first_seen_at=now,
                        updated_at=now,
                        closed_at=None if invoice.is_open else now,
                        **values,
                    )
                )
                changed += 1
                if invoice.promised_payment_date is not None:
                    promise = _platform_promise(None, invoice.promised_payment_date, now.date())
                    self._insert_events(conn, inserted.inserted_primary_key[0], promise, now)
                continue
            if not compared and all(getattr(old, key) == value for key, value in values.items()):
                continue  # the sync machine compared already (`page.compared`); other callers are checked here
            changed += 1
            history = _history_between(old, invoice, now.date())
            if EventKind.CLOSED in {e.kind for e in history}:
                closed += 1
            closed_at = old.closed_at if old.is_open == invoice.is_open else (None if invoice.is_open else now)
            conn.execute(
                schema.invoices.update().where(i.id == old.id).values(updated_at=now, closed_at=closed_at, **values)
            )
            self._insert_events(conn, old.id, history, now)
        return changed, closed

    def _close_invoices(self, conn: Connection, connection: str, platform_ids: Sequence[str], now: datetime,
                        *, detail: str | None = None) -> int:
        i = schema.invoices.c
        closed = 0
        for chunk in chunks(list(dict.fromkeys(platform_ids))):
            ids = (
                conn.execute(
                    select(i.id).where(i.connection == connection, i.platform_id.in_(chunk), i.is_open.is_(True))
                )
                .scalars()
                .all()
            )
            if not ids:
                continue
            conn.execute(
                schema.invoices.update().where(i.id.in_(ids)).values(is_open=False, closed_at=now, updated_at=now)
            )
            for invoice_id in ids:
                event = Event(kind=EventKind.CLOSED, on=now.date(), data={"detail": detail} if detail else {})
                self._insert_events(conn, invoice_id, [event], now)
            closed += len(ids)
        return closed


def _ids_by_platform_id(conn: Connection, table: Table, connection: str, platform_ids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(platform_ids):
        query = select(table.c.platform_id, table.c.id).where(
            table.c.connection == connection, table.c.platform_id.in_(chunk)
        )
        found.update(conn.execute(query).tuples().all())
    return found


def _history_between(old: Row[Any], new: Invoice, today: date) -> list[Event]:
    """The events sync derives from an invoice's change: a payment, the platform's promise to pay set, moved or
    cleared, closing, reopening (dated the day seen)."""
    found: list[Event] = []
    if new.outstanding < old.outstanding:
        found.append(
            Event(
                kind=EventKind.PAYMENT_SEEN,
                on=today,
                data={
                    "amount": str(old.outstanding - new.outstanding),
                    "outstanding": str(new.outstanding),
                    "currency": new.currency,
                },
            )
        )
    found += _platform_promise(old.promised_payment_date, new.promised_payment_date, today)
    if old.is_open and not new.is_open:
        found.append(Event(kind=EventKind.CLOSED, on=today))
    elif not old.is_open and new.is_open:
        found.append(Event(kind=EventKind.REOPENED, on=today))
    return found


def _platform_promise(old: date | None, new: date | None, today: date) -> list[Event]:
    """A promise to pay the platform records (Xero's `ExpectedPaymentDate`) kept as a hold in the history, as a
    `hold --promise` is: the invoice field alone forgets it once the platform clears it, and the time it held must
    keep shifting the later steps (domain.md: a lapsed promise resumes where it stood, never a catch-up jump)."""
    if new == old:
        return []
    if new is None:
        return [Event(kind=EventKind.HOLD_RELEASED, on=today, data={"hold": "promise", "source": PLATFORM})]
    return [Event(kind=EventKind.HOLD_SET, on=today,
                  data={"hold": "promise", "until": new.isoformat(), "source": PLATFORM})]
