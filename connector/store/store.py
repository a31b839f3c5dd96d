"""The store: the only state shared between sync, planning, delivery and export.

Every write is one transaction, so a crash leaves the store as it was before the call, and every step can be
re-run and picks up where the store says it stands.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    Connection,
    Engine,
    Row,
    String,
    Table,
    func,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from connector.models import Debtor, Event, EventKind, Invoice
from connector.store import schema
from connector.store.delivery import DeliveryMixin
from connector.store.engine import WRITE, create_store_engine
from connector.store.handoff import HandoffCases
from connector.store.errors import StoreError
from connector.store.migrations import migrate
from providers.base import SyncPage, SyncState

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
OutboxKind = Literal["reminder", "note", "handoff_note"]
OutboxStatus = Literal["pending", "sent", "failed", "task"]
_Model = TypeVar("_Model", bound=BaseModel)

_IN_CHUNK = 500
"""Ids per IN (...) list: far below SQLite's bound-parameter limit."""

_DEBTOR_FIELDS = (
    "name", "kind", "emails", "phone", "address", "coc_number", "vat_number", "language", "contact_person", "version",
)
_INVOICE_FIELDS = (
    "number", "debtor_id", "issue_date", "due_date", "currency", "total", "amount_paid", "outstanding",
    "is_credit_note", "status", "is_open", "payment_url", "reference", "promised_payment_date", "last_modified",
    "version",
)
_INVOICE_DATES = ("issue_date", "due_date", "promised_payment_date")
_INVOICE_MONEY = ("total", "amount_paid", "outstanding")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class PageWritten:
    """What one sync page changed in the store."""

    changed: int
    """Invoices that were new or differ from what the store held."""
    closed: int
    """Invoices that left the open set with this page."""


@dataclass(frozen=True)
class ConnectionStatus:
    name: str
    provider: str
    tenant: str | None
    last_sync_at: datetime | None
    last_full_sync_at: datetime | None
    platform_warnings: tuple[str, ...]
    """The platform-side settings to fix, as the last full sync found them."""
    needs_reauth: bool
    reauth_reason: str | None
    open_invoices: int


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    idempotency_key: str
    connection: str
    kind: OutboxKind
    payload: dict[str, Any]
    status: OutboxStatus
    attempts: int
    receipt: dict[str, Any] | None
    last_error: str | None


class Store(DeliveryMixin, HandoffCases):
    """Debtors, invoices and their history per connection, the outbox and handoff cases."""

    def __init__(self, engine: Engine, *, clock: Clock = _utc_now) -> None:
        self.engine = engine
        self._clock = clock

    @classmethod
    def open(cls, url: str, *, clock: Clock = _utc_now) -> Self:
        """Connect and bring the schema up to date (all migrations in one transaction)."""
        engine = create_store_engine(url)
        try:
            with cls._write_connection(engine) as conn:
                migrate(conn)
        except DBAPIError as exc:  # unreachable server, missing folder, not a database, no permission
            engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            shown = make_url(url).render_as_string(hide_password=True)
            raise StoreError(f"store.url: cannot open the store {shown}: {reason}") from None
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

    @staticmethod
    @contextmanager
    def _write_connection(engine: Engine) -> Iterator[Connection]:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    def _write(self) -> AbstractContextManager[Connection]:
        return self._write_connection(self.engine)

    # --- connections ------------------------------------------------------------------------------------------

    def ensure_connection(self, name: str, provider: str, tenant: str | None) -> None:
        """Register a configured connection; refuses to mix another platform's or tenant's data under its name."""
        c = schema.connections.c
        with self._write() as conn:
            row = conn.execute(select(c.provider, c.tenant).where(c.name == name)).one_or_none()
            if row is None:
                conn.execute(
                    schema.connections.insert().values(
                        name=name, provider=provider, tenant=tenant, needs_reauth=False, created_at=self._clock()
                    )
                )
                return
            if row.provider != provider or (row.tenant is not None and tenant is not None and row.tenant != tenant):
                raise StoreError(
                    f"the store holds data of {row.provider} tenant {row.tenant} under this name, but the config "
                    f"now says {provider} tenant {tenant}; give the new administration its own connection name",
                    connection=name,
                )
            if row.tenant is None and tenant is not None:
                conn.execute(schema.connections.update().where(c.name == name).values(tenant=tenant))

    def mark_synced(self, name: str, *, full: bool = False, platform_warnings: Sequence[str] | None = None) -> None:
        """A sync finished: remember when (and, for one that re-read the whole open set, that too), and that the
        connection's authorisation works. `platform_warnings` replaces the stored ones when given."""
        now = self._clock()
        extra: dict[str, Any] = {"last_full_sync_at": now} if full else {}
        if platform_warnings is not None:
            extra["platform_warnings"] = json.dumps(list(platform_warnings))
        self._update_connection(name, last_sync_at=now, needs_reauth=False, reauth_reason=None, **extra)

    def full_sync_due(self, name: str, every: timedelta) -> bool:
        """Whether the periodic full re-read is due: a sync has run before, but no full one completed within `every`
        (a zero `every` means never). A connection never synced reads everything anyway on its first sync."""
        if every <= timedelta(0):
            return False
        c = schema.connections.c
        with self.engine.connect() as conn:
            row = conn.execute(select(c.sync_cursor, c.last_full_sync_at).where(c.name == name)).one_or_none()
        if row is None or row.sync_cursor is None:
            return False
        return row.last_full_sync_at is None or self._clock() - row.last_full_sync_at >= every

    def mark_needs_reauth(self, name: str, reason: str) -> None:
        self._update_connection(name, needs_reauth=True, reauth_reason=reason)

    def mark_reauthorised(self, names: Iterable[str]) -> None:
        """`dunning setup --reconnect` renewed these connections' authorisation: no longer flag them.

        A connection the store has never seen (set up, not yet synced) has no flag to clear.
        """
        c = schema.connections.c
        with self._write() as conn:
            conn.execute(
                schema.connections.update().where(c.name.in_(list(names))).values(needs_reauth=False, reauth_reason=None)
            )

    def _update_connection(self, name: str, **values: Any) -> None:
        with self._write() as conn:
            updated = conn.execute(
                schema.connections.update().where(schema.connections.c.name == name).values(**values)
            ).rowcount
        if not updated:
            raise StoreError("unknown connection (never synced)", connection=name)

    def connection_status(self) -> dict[str, ConnectionStatus]:
        """Every connection the store knows, by name."""
        c, i = schema.connections.c, schema.invoices.c
        open_count = (
            select(func.count()).where(i.connection == c.name, i.is_open.is_(True)).scalar_subquery()
        )
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.connections, open_count.label("open_invoices")).order_by(c.name))
            return {
                row.name: ConnectionStatus(
                    name=row.name,
                    provider=row.provider,
                    tenant=row.tenant,
                    last_sync_at=row.last_sync_at,
                    last_full_sync_at=row.last_full_sync_at,
                    platform_warnings=tuple(json.loads(row.platform_warnings or "[]")),
                    needs_reauth=row.needs_reauth,
                    reauth_reason=row.reauth_reason,
                    open_invoices=row.open_invoices,
                )
                for row in rows
            }

    # --- sync -------------------------------------------------------------------------------------------------

    def sync_state(self, connection: str, *, full: bool = False) -> SyncState:
        """What an adapter needs to fetch only what changed (with `full`, no cursor: re-read everything)."""
        c, i, d = schema.connections.c, schema.invoices.c, schema.debtors.c
        with self.engine.connect() as conn:
            cursor = conn.execute(select(c.sync_cursor).where(c.name == connection)).scalar_one_or_none()
            open_invoices = dict(
                conn.execute(select(i.platform_id, i.version).where(i.connection == connection, i.is_open.is_(True)))
                .tuples()
                .all()
            )
            known_debtors = dict(
                conn.execute(select(d.platform_id, d.version).where(d.connection == connection)).tuples().all()
            )
        return SyncState(
            cursor=None if full else cursor, open_invoices=open_invoices, debtors=known_debtors, full=full
        )

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
            changed, closed = self._upsert_invoices(conn, connection, page.invoices, now)
            closed += self._close_invoices(conn, connection, page.closed_invoice_ids, now)
            if page.cursor is not None:
                conn.execute(schema.connections.update().where(c.name == connection).values(sync_cursor=page.cursor))
        return PageWritten(changed=changed, closed=closed)

    def _upsert_debtors(self, conn: Connection, connection: str, debtors: Sequence[Debtor], now: datetime) -> None:
        d = schema.debtors.c
        existing = self._ids_by_platform_id(conn, schema.debtors, connection, [x.platform_id for x in debtors])
        for debtor in debtors:
            values = _debtor_values(debtor) | {"updated_at": now}
            if debtor.platform_id in existing:
                conn.execute(schema.debtors.update().where(d.id == existing[debtor.platform_id]).values(**values))
            else:
                conn.execute(
                    schema.debtors.insert().values(connection=connection, platform_id=debtor.platform_id, **values)
                )

    def _upsert_invoices(
        self, conn: Connection, connection: str, invoices: Sequence[Invoice], now: datetime
    ) -> tuple[int, int]:
        i = schema.invoices.c
        old_rows: dict[str, Row[Any]] = {}
        for chunk in _chunks([x.platform_id for x in invoices]):
            query = select(schema.invoices).where(i.connection == connection, i.platform_id.in_(chunk))
            old_rows.update({row.platform_id: row for row in conn.execute(query)})
        changed = closed = 0
        for invoice in invoices:
            values = _invoice_values(invoice)
            old = old_rows.get(invoice.platform_id)
            if old is None:
                conn.execute(
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
                continue
            if all(getattr(old, key) == value for key, value in values.items()):
                continue
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

    def _close_invoices(self, conn: Connection, connection: str, platform_ids: Sequence[str], now: datetime) -> int:
        i = schema.invoices.c
        closed = 0
        for chunk in _chunks(list(dict.fromkeys(platform_ids))):
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
                self._insert_events(conn, invoice_id, [Event(kind=EventKind.CLOSED, on=now.date())], now)
            closed += len(ids)
        return closed

    @staticmethod
    def _ids_by_platform_id(
        conn: Connection, table: Table, connection: str, platform_ids: Sequence[str]
    ) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(platform_ids):
            query = select(table.c.platform_id, table.c.id).where(
                table.c.connection == connection, table.c.platform_id.in_(chunk)
            )
            found.update(conn.execute(query).tuples().all())
        return found

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

    # --- reading ----------------------------------------------------------------------------------------------

    def invoice(self, connection: str, platform_id: str) -> Invoice | None:
        i = schema.invoices.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_INVOICE_COLUMNS).where(i.connection == connection, i.platform_id == platform_id)
            ).one_or_none()
        return None if row is None else _invoice(row)

    def debtor(self, connection: str, platform_id: str) -> Debtor | None:
        d = schema.debtors.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_DEBTOR_COLUMNS).where(d.connection == connection, d.platform_id == platform_id)
            ).one_or_none()
        return None if row is None else _debtor(row)

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

    def find_invoices(self, reference: str, connection: str | None = None) -> list[Invoice]:
        """Invoices whose number or platform id is `reference` (how a bookkeeper names one on the command line)."""
        i = schema.invoices.c
        query = select(*_INVOICE_COLUMNS).where((i.number == reference) | (i.platform_id == reference))
        if connection is not None:
            query = query.where(i.connection == connection)
        with self.engine.connect() as conn:
            return [_invoice(row) for row in conn.execute(query.order_by(i.connection, i.id))]

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
            query = select(i.id, *_INVOICE_COLUMNS).where(i.is_open.is_(True))
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
                debtors_by_key = self._debtors_of(conn, rows)
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
                yield _invoice(row[1:]), debtor, history.get(row[0], ())
            last = rows[-1]
            after = (last[1], last[4], last[0])

    @staticmethod
    def _debtors_of(conn: Connection, invoice_rows: Sequence[Row[Any]]) -> dict[tuple[str, str], Debtor]:
        """The debtors of rows selected as (id, *_INVOICE_COLUMNS), by (connection, platform id)."""
        d = schema.debtors.c
        wanted: dict[str, set[str]] = {}
        for row in invoice_rows:
            wanted.setdefault(row[1], set()).add(row[4])
        found: dict[tuple[str, str], Debtor] = {}
        for connection, platform_ids in wanted.items():
            for chunk in _chunks(sorted(platform_ids)):
                query = select(*_DEBTOR_COLUMNS).where(d.connection == connection, d.platform_id.in_(chunk))
                found.update({(row[0], row[1]): _debtor(row) for row in conn.execute(query)})
        return found

    @staticmethod
    def _events_of(conn: Connection, invoice_ids: Sequence[int]) -> dict[int, tuple[Event, ...]]:
        e = schema.events.c
        found: dict[int, list[Event]] = {}
        # the event's date as the driver gives it: `Event` parses it while validating
        columns = (e.invoice_id, e.kind, _as_driver_gives(e.on_date), e.step, e.data, e.recorded_at)
        for chunk in _chunks(invoice_ids):
            query = select(*columns).where(e.invoice_id.in_(chunk)).order_by(e.invoice_id, e.id)
            for invoice_id, kind, on, step, data, recorded_at in conn.execute(query):
                event = Event(kind=kind, on=on, step=step, data=data, recorded_at=recorded_at)
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

    # --- outbox (the delivery issue builds on these) ----------------------------------------------------------

    def outbox_add(
        self, connection: str, kind: OutboxKind, idempotency_key: str, payload: Mapping[str, Any]
    ) -> OutboxEntry:
        """Record an outgoing platform write before it is attempted; adding the same key again returns the first."""
        o = schema.outbox.c
        now = self._clock()
        with self._write() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(
                        schema.outbox.insert().values(
                            idempotency_key=idempotency_key,
                            connection=connection,
                            kind=kind,
                            payload=dict(payload),
                            status="pending",
                            attempts=0,
                            created_at=now,
                            updated_at=now,
                        )
                    )
            except IntegrityError:
                pass  # the key exists already: that row is the one entry for this write
            row = conn.execute(select(schema.outbox).where(o.idempotency_key == idempotency_key)).one()
        return _outbox_entry(row)

    def outbox_pending(self, connection: str | None = None) -> list[OutboxEntry]:
        o = schema.outbox.c
        query = select(schema.outbox).where(o.status == "pending").order_by(o.id)
        if connection is not None:
            query = query.where(o.connection == connection)
        with self.engine.connect() as conn:
            return [_outbox_entry(row) for row in conn.execute(query)]

    def outbox_claim(self, entry_id: int) -> OutboxEntry | None:
        """Count an attempt on a pending entry; None when it is no longer pending (someone else finished it)."""
        o = schema.outbox.c
        with self._write() as conn:
            claimed = conn.execute(
                schema.outbox.update()
                .where(o.id == entry_id, o.status == "pending")
                .values(attempts=o.attempts + 1, updated_at=self._clock())
            ).rowcount
            if not claimed:
                return None
            return _outbox_entry(conn.execute(select(schema.outbox).where(o.id == entry_id)).one())

    def outbox_complete(
        self,
        entry_id: int,
        status: OutboxStatus,
        *,
        receipt: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        o = schema.outbox.c
        with self._write() as conn:
            conn.execute(
                schema.outbox.update()
                .where(o.id == entry_id)
                .values(
                    status=status,
                    receipt=dict(receipt) if receipt is not None else None,
                    last_error=error,
                    updated_at=self._clock(),
                )
            )


# --- rows ↔ models ----------------------------------------------------------------------------------------------


def _debtor_values(debtor: Debtor) -> dict[str, Any]:
    values = {key: getattr(debtor, key) for key in _DEBTOR_FIELDS}
    values["kind"] = debtor.kind.value
    values["emails"] = list(debtor.emails)
    values["address"] = debtor.address.model_dump(mode="json")
    return values


def _invoice_values(invoice: Invoice) -> dict[str, Any]:
    return {key: getattr(invoice, key) for key in _INVOICE_FIELDS}


def _as_driver_gives(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A date or money column read as the driver gives it (ISO text on SQLite, a date on PostgreSQL; money as its
    exact text), to be parsed once by the reader instead of first by SQLAlchemy's Python result processors."""
    return type_coerce(column, String).label(column.key)


_DEBTOR_KEYS = ("connection", "platform_id", *_DEBTOR_FIELDS)
_DEBTOR_COLUMNS = tuple(schema.debtors.c[key] for key in _DEBTOR_KEYS)
"""What a `Debtor` is read from, in `_DEBTOR_KEYS` order."""
_INVOICE_KEYS = ("connection", "platform_id", *_INVOICE_FIELDS)
_INVOICE_COLUMNS = tuple(
    _as_driver_gives(column) if key in _INVOICE_DATES + _INVOICE_MONEY else column
    for key in _INVOICE_KEYS
    for column in (schema.invoices.c[key],)
)
"""What an `Invoice` is read from, in `_INVOICE_KEYS` order (no bookkeeping columns: they are not part of it)."""


def _debtor(row: Sequence[Any]) -> Debtor:
    """A debtor from a row selected as `_DEBTOR_COLUMNS`."""
    return Debtor.model_validate(dict(zip(_DEBTOR_KEYS, row, strict=True)))


def _invoice(row: Sequence[Any]) -> Invoice:
    """An invoice from a row selected as `_INVOICE_COLUMNS`.

    Not validated a second time: every row was written from a validated `Invoice` (`_invoice_values`), so only the
    types the driver cannot give back are restored. Validating again cost more than the rest of reading it (the
    planner reads a million invoices at a time); `tests/connector/store` checks a round trip gives an equal model.
    """
    values = dict(zip(_INVOICE_KEYS, row, strict=True))
    for key in _INVOICE_DATES:
        if type(values[key]) is str:  # SQLite's ISO text (PostgreSQL's driver gives a date)
            values[key] = date.fromisoformat(values[key])
    for key in _INVOICE_MONEY:
        values[key] = Decimal(values[key])
    return _as_stored(Invoice, values)


def _as_stored(model: type[_Model], values: dict[str, Any]) -> _Model:
    """`model.model_construct(**values)` for a value of every field, already of its type: the same model without
    validation, minus model_construct's per-field Python loop (which made it slower than validating)."""
    instance = model.__new__(model)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


def _history_between(old: Row[Any], new: Invoice, today: date) -> list[Event]:
    """The events sync derives from an invoice's change: a payment, closing, reopening (dated the day seen)."""
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
    if old.is_open and not new.is_open:
        found.append(Event(kind=EventKind.CLOSED, on=today))
    elif not old.is_open and new.is_open:
        found.append(Event(kind=EventKind.REOPENED, on=today))
    return found


def _outbox_entry(row: Row[Any]) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        idempotency_key=row.idempotency_key,
        connection=row.connection,
        kind=row.kind,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        receipt=row.receipt,
        last_error=row.last_error,
    )
