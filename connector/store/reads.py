"""Reading debtors and invoices back: one by id or reference, or the whole open book streamed per debtor."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Row, or_, select, tuple_

from connector.models import Debtor, Event, Invoice
from connector.store import schema
from connector.store.base import chunks
from connector.store.events import EventsMixin
from connector.store.rows import DEBTOR_COLUMNS, INVOICE_COLUMNS, debtor_from_row, invoice_from_row

log = logging.getLogger(__name__)


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

    def iter_open_invoices(
        self, connection: str | None = None, *, batch_size: int = 1000
    ) -> Iterator[tuple[Invoice, Debtor, tuple[Event, ...]]]:
        """Every open invoice with its debtor and history, in constant memory.

        Invoices of one debtor come one after another (ordered by connection, debtor, id), so a planner can
        group them as it streams. Each batch is read by keyset paging in its own short transaction with one query
        for the debtors and one for the histories, so callers may write to the store while iterating. An open
        invoice whose debtor the platform never delivered is left out with a warning naming it.
        """
        i = schema.invoices.c
        order = (i.connection, i.debtor_id, i.id)
        after: tuple[str, str, int] | None = None
        while True:
            query = select(i.id, *INVOICE_COLUMNS).where(i.is_open.is_(True))
            if connection is not None:
                query = query.where(i.connection == connection)
            if after is not None:
                # Spelled out rather than one (connection, debtor_id, id) row-value comparison: SQLite cannot walk
                # the index in order for that one and sorted the whole remainder for every batch (quadratic: a
                # 1,000,000-invoice store took ~0.7 s per batch). These forms read the index in order.
                last_connection, last_debtor, last_id = after
                if connection is not None:
                    query = query.where(i.debtor_id >= last_debtor, or_(i.debtor_id > last_debtor, i.id > last_id))
                else:
                    query = query.where(
                        tuple_(i.connection, i.debtor_id) >= tuple_(last_connection, last_debtor),
                        or_(i.connection > last_connection, i.debtor_id > last_debtor, i.id > last_id),
                    )
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(*order).limit(batch_size)).all()
                if not rows:
                    return
                debtors_by_key = _debtors_of(conn, rows)
                history = self._events_of(conn, [row[0] for row in rows])
            for row in rows:
                # (id, connection, platform_id, number, debtor_id, ...): positions, as the columns are selected
                debtor = debtors_by_key.get((row[1], row[4]))
                if debtor is None:
                    log.warning(
                        "%s: invoice %s is open but its debtor %s was never synced; it is not planned",
                        row[1], row[3] or f"id {row[2]}", row[4],
                    )
                    continue
                yield invoice_from_row(row[1:]), debtor, history.get(row[0], ())
            last = rows[-1]
            after = (last[1], last[4], last[0])


def _debtors_of(conn: Connection, invoice_rows: Sequence[Row[Any]]) -> dict[tuple[str, str], Debtor]:
    """The debtors of rows selected as (id, *INVOICE_COLUMNS), by (connection, platform id)."""
    d = schema.debtors.c
    wanted: dict[str, set[str]] = {}
    for row in invoice_rows:
        wanted.setdefault(row[1], set()).add(row[4])
    found: dict[tuple[str, str], Debtor] = {}
    for connection, platform_ids in wanted.items():
        for chunk in chunks(sorted(platform_ids)):
            query = select(*DEBTOR_COLUMNS).where(d.connection == connection, d.platform_id.in_(chunk))
            found.update({(row[0], row[1]): debtor_from_row(row) for row in conn.execute(query)})
    return found
