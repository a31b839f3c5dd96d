"""Reading debtors and invoices back: one by id or reference, or the whole open book streamed per debtor."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from datetime import UTC, date

from sqlalchemy import Connection, Select, and_, bindparam, or_, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from connector.models import Debtor, Event, Invoice
from connector.store import schema
from connector.store.collector import fewer_collections
from connector.store.events import EventsMixin
from connector.store.rows import (
    DEBTOR_COLUMNS,
    EVENT_COLUMNS,
    INVOICE_COLUMNS,
    as_driver_gives,
    debtor_from_row,
    event_from_row,
    invoice_from_row,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    """An invoice with its whole history and the store's own dates: what a report looks back over."""

    invoice: Invoice
    events: tuple[Event, ...]
    first_seen_on: date
    """The day (UTC) a sync first stored it: the store knows nothing of it before."""
    closed_on: date | None
    """The day (UTC) it left the open set (None while open)."""


def _utc_date(value: Any) -> date:
    """A `UTCDateTime` column as the driver gives it → its UTC day (SQLite: ISO text in UTC)."""
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value.astimezone(UTC).date() if value.tzinfo is not None else value.date()


class ReadsMixin(EventsMixin):
    """The store's read methods (mixed into `Store`)."""

    def invoice(self, connection: str, platform_id: str) -> Invoice | None:
        i = schema.invoices.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*INVOICE_COLUMNS).where(i.connection == connection, i.platform_id == platform_id)
            ).one_or_none()
        return None if row is None else invoice_from_row(row)

    def debtor(self, connection: str, platform_id: str) -> Debtor | None:
        d = schema.debtors.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*DEBTOR_COLUMNS).where(d.connection == connection, d.platform_id == platform_id)
            ).one_or_none()
        return None if row is None else debtor_from_row(row)

    def find_invoices(self, reference: str, connection: str | None = None) -> list[Invoice]:
        """Invoices whose number or platform id is `reference` (how a bookkeeper names one on the command line)."""
        i = schema.invoices.c
        query = select(*INVOICE_COLUMNS).where((i.number == reference) | (i.platform_id == reference))
        if connection is not None:
            query = query.where(i.connection == connection)
        with self.engine.connect() as conn:
            return [invoice_from_row(row) for row in conn.execute(query.order_by(i.connection, i.id))]

    def debtors(self, connection: str | None = None) -> dict[tuple[str, str], Debtor]:
        """Every debtor, by (connection, platform id)."""
        d = schema.debtors.c
        query = select(*DEBTOR_COLUMNS)
        if connection is not None:
            query = query.where(d.connection == connection)
        with self.engine.connect() as conn:
            return {(row[0], row[1]): debtor_from_row(row) for row in conn.execute(query)}

    def iter_invoice_records(self, connection: str | None = None, *, batch_size: int = 2000) -> Iterator[InvoiceRecord]:
        """Every invoice, open or closed, with its history, oldest first, in constant memory (keyset paging by id,
        each batch in its own short transaction)."""
        i = schema.invoices.c
        after = 0
        while True:
            query = select(i.id, as_driver_gives(i.first_seen_at), as_driver_gives(i.closed_at), *INVOICE_COLUMNS)
            query = query.where(i.id > after)
            if connection is not None:
                query = query.where(i.connection == connection)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(i.id).limit(batch_size)).all()
                if not rows:
                    return
                history = self._events_of(conn, [row[0] for row in rows])
            for row in rows:
                closed_on = None if row[2] is None else _utc_date(row[2])
                yield InvoiceRecord(invoice_from_row(row[3:]), history.get(row[0], ()), _utc_date(row[1]), closed_on)
            after = rows[-1][0]

    def iter_open_invoices(
        self, connection: str | None = None, *, batch_size: int = 2000
    ) -> Iterator[tuple[Invoice, Debtor, tuple[Event, ...]]]:
        """Every open invoice with its debtor and history, in constant memory.

        Invoices of one debtor come one after another (ordered by connection, debtor, id), so a planner can
        group them as it streams. Each batch is read by keyset paging in its own short transaction: one query for
        the invoices, one for their debtors (each decoded once per batch: a debtor's columns are not repeated on
        every invoice row), one for the histories, the last two over the same key range (no id lists), so callers
        may write to the store while iterating. An open invoice whose debtor the platform never delivered is left
        out with a warning naming it.
        """
        with fewer_collections():
            yield from self._open_book(connection, batch_size)

    def _open_book(self, connection: str | None, batch_size: int) -> Iterator[tuple[Invoice, Debtor, tuple[Event, ...]]]:
        reads = _batch_reads(connection is not None, first=True)
        after: dict[str, Any] = {"connection": connection, "limit": batch_size}
        while True:
            with self.engine.connect() as conn:
                rows = _driver_rows(conn, reads.invoices, after)
                if not rows:
                    return
                last = rows[-1]  # (id, connection, platform_id, number, debtor_id, ...): positions, as selected
                batch = {**after, "upto_connection": last[1], "upto_debtor": last[4], "upto_id": last[0]}
                history = _histories(_driver_rows(conn, reads.events, batch))
                debtors = {(row[0], row[1]): debtor_from_row(row) for row in _driver_rows(conn, reads.debtors, batch)}
            reads = _batch_reads(connection is not None, first=False)
            after = {"connection": connection, "limit": batch_size,
                     "after_connection": last[1], "after_debtor": last[4], "after_id": last[0]}
            no_history: tuple[Event, ...] = ()
            for row in rows:
                debtor = debtors.get((row[1], row[4]))
                if debtor is None:
                    log.warning(
                        "%s: invoice %s is open but its debtor %s was never synced; it is not planned",
                        row[1], row[3] or f"id {row[2]}", row[4],
                    )
                    continue
                yield invoice_from_row(row[1:]), debtor, history.get(row[0], no_history)


@dataclass(frozen=True, slots=True)
class _BatchReads:
    """The three statements of one batch of the open book.

    Built once with bound parameters for the keyset bounds, so every batch reuses one statement and its cache key
    (building and keying fresh statements per batch was a tenth of reading the open book)."""

    invoices: Select[Any]
    events: Select[Any]
    """The histories of the batch's invoices: the same key range, joined, no id list."""
    debtors: Select[Any]
    """The debtors of the batch's invoices (a semi-join over the same key range)."""


@cache
def _batch_reads(same_connection: bool, *, first: bool) -> _BatchReads:
    """The statements for the first batch (no lower bound) or a next one (after the bound key)."""
    i, e, d = schema.invoices.c, schema.events.c, schema.debtors.c
    in_range = [i.is_open.is_(True)]
    if same_connection:
        in_range.append(i.connection == bindparam("connection"))
    if not first:
        in_range.append(_key_after(same_connection=same_connection))
    up_to = _key_up_to(same_connection=same_connection)
    batch = select(i.connection, i.debtor_id).where(*in_range, up_to)
    return _BatchReads(
        invoices=select(i.id, *INVOICE_COLUMNS).where(*in_range)
        .order_by(i.connection, i.debtor_id, i.id).limit(bindparam("limit")),
        events=select(e.invoice_id, *EVENT_COLUMNS)
        .select_from(schema.events.join(schema.invoices, i.id == e.invoice_id))
        # in the invoices' index order, which SQLite walks anyway: no sort of the batch's events
        .where(*in_range, up_to).order_by(i.connection, i.debtor_id, i.id, e.id),
        debtors=select(*DEBTOR_COLUMNS).where(tuple_(d.connection, d.platform_id).in_(batch)),
    )


def _histories(rows: Sequence[Sequence[Any]]) -> dict[int, tuple[Event, ...]]:
    """Events rows (invoice id first, then `EVENT_COLUMNS`), ordered by invoice → each invoice's history."""
    found: dict[int, list[Event]] = {}
    for row in rows:
        event = event_from_row(row[1:])
        if row[0] in found:
            found[row[0]].append(event)
        else:
            found[row[0]] = [event]
    return {key: tuple(value) for key, value in found.items()}


def _driver_rows(conn: Connection, query: Select[Any], parameters: dict[str, Any]) -> list[Any]:
    """The rows of `query` as the DB-API cursor gives them (plain tuples): the planner's reads select only columns
    without result processors (`as_driver_gives`), so SQLAlchemy's per-row `Row` building is pure cost there (a
    million of them per plan). Executed through SQLAlchemy all the same (statement cache, events)."""
    result = conn.execute(query, parameters)
    try:
        return result.cursor.fetchall()  # type: ignore[union-attr]
    finally:
        result.close()


def _key_after(*, same_connection: bool) -> ColumnElement[bool]:
    """Invoices after the bound key (`after_connection`, `after_debtor`, `after_id`) in (connection, debtor, id)
    order.

    Spelled out rather than one row-value comparison: SQLite cannot walk the index in order for that one and sorted
    the whole remainder for every batch (quadratic: a 1,000,000-invoice store took ~0.7 s per batch)."""
    i = schema.invoices.c
    connection, debtor, invoice_id = bindparam("after_connection"), bindparam("after_debtor"), bindparam("after_id")
    if same_connection:
        return and_(i.debtor_id >= debtor, or_(i.debtor_id > debtor, i.id > invoice_id))
    return and_(
        tuple_(i.connection, i.debtor_id) >= tuple_(connection, debtor),
        or_(i.connection > connection, i.debtor_id > debtor, i.id > invoice_id),
    )


def _key_up_to(*, same_connection: bool) -> ColumnElement[bool]:
    """Invoices up to and including the bound key (`upto_connection`, `upto_debtor`, `upto_id`)."""
    i = schema.invoices.c
    connection, debtor, invoice_id = bindparam("upto_connection"), bindparam("upto_debtor"), bindparam("upto_id")
    if same_connection:
        return and_(i.debtor_id <= debtor, or_(i.debtor_id < debtor, i.id <= invoice_id))
    return and_(
        tuple_(i.connection, i.debtor_id) <= tuple_(connection, debtor),
        or_(i.connection < connection, i.debtor_id < debtor, i.id <= invoice_id),
    )
