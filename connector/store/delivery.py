"""The outbox as delivery works it: queue, claim by row, record progress, finish with the history in one go.

A row's life: `pending` (queued, nothing sent) → `sending` (claimed by one run; `receipt.phase` says how far it
got: `claimed` = the platform may or may not have been called, `mailed` = the platform answered the mail, only its
recording is left) → `sent` | `task` | `failed` | `skipped`; a task becomes `done` when the bookkeeper closes it.
The claim is a compare-and-swap on the row (status and attempt count), so two runs on one store never both work one
row; the finish only lands while the claim is still the caller's, together with the invoice history it writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from connector.models import Event
from connector.store import schema
from connector.store.errors import StoreError
from connector.store.outbox import OutboxEntry, outbox_entry

REQUEUE = frozenset({"failed", "skipped"})
"""Finished without anything going out: the same action planned again is queued again (e.g. an e-mail was added)."""


class DeliveryMixin:
    """Outbox operations for `connector.delivery` (mixed into `Store`)."""

    if TYPE_CHECKING:  # provided by `Store`
        _clock: Any
        engine: Any

        def _write(self) -> AbstractContextManager[Connection]: ...

        @staticmethod
        def _invoice_id(conn: Connection, connection: str, platform_id: str) -> int: ...

        @staticmethod
        def _insert_events(conn: Connection, invoice_id: int, history: Iterable[Event], now: datetime) -> None: ...

    def outbox_queue(
        self, connection: str, kind: str, idempotency_key: str, payload: Mapping[str, Any]
    ) -> tuple[OutboxEntry, bool]:
        """The row for this key, queued now if new (or re-queued if it last ended without sending anything).

        Returns the row and whether it is (again) pending because of this call.
        """
        o = schema.outbox.c
        now = self._clock()
        with self._write() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(schema.outbox.insert().values(
                        idempotency_key=idempotency_key, connection=connection, kind=kind, payload=dict(payload),
                        status="pending", attempts=0, created_at=now, updated_at=now))
                queued = True
            except IntegrityError:
                queued = bool(conn.execute(
                    schema.outbox.update()
                    .where(o.idempotency_key == idempotency_key, o.status.in_(sorted(REQUEUE)))
                    .values(status="pending", payload=dict(payload), last_error=None, receipt=None, updated_at=now)
                ).rowcount)
            row = conn.execute(select(schema.outbox).where(o.idempotency_key == idempotency_key)).one()
        return outbox_entry(row), queued

    def outbox_take(self, entry: OutboxEntry, claim: Mapping[str, Any]) -> OutboxEntry | None:
        """Claim a row as it was read (`pending`, or `sending` left by a dead run): None if another run got it."""
        o = schema.outbox.c
        with self._write() as conn:
            taken = conn.execute(
                schema.outbox.update()
                .where(o.id == entry.id, o.status == entry.status, o.attempts == entry.attempts)
                .values(status="sending", attempts=entry.attempts + 1,
                        receipt={**(entry.receipt or {}), **claim}, updated_at=self._clock())
            ).rowcount
            if not taken:
                return None
            return outbox_entry(conn.execute(select(schema.outbox).where(o.id == entry.id)).one())

    def outbox_progress(self, entry: OutboxEntry, receipt: Mapping[str, Any]) -> bool:
        """Record how far a claimed row got (e.g. the platform mailed; the note is next)."""
        o = schema.outbox.c
        with self._write() as conn:
            return bool(conn.execute(
                schema.outbox.update()
                .where(o.id == entry.id, o.status == "sending", o.attempts == entry.attempts)
                .values(receipt=dict(receipt), updated_at=self._clock())
            ).rowcount)

    def outbox_finish(
        self,
        entry: OutboxEntry,
        status: str,
        *,
        receipt: Mapping[str, Any] | None = None,
        error: str | None = None,
        events: Sequence[tuple[str, Event]] = (),
    ) -> bool:
        """End a claimed row and append its events (invoice platform id, event) in one transaction.

        False (and nothing written) when the claim is no longer the caller's.
        """
        o = schema.outbox.c
        now = self._clock()
        with self._write() as conn:
            done = conn.execute(
                schema.outbox.update()
                .where(o.id == entry.id, o.status == "sending", o.attempts == entry.attempts)
                .values(status=status, receipt=dict(receipt) if receipt is not None else None, last_error=error,
                        updated_at=now)
            ).rowcount
            if not done:
                return False
            self._append(conn, entry.connection, events, now)
        return True

    def _append(self, conn: Connection, connection: str, events: Sequence[tuple[str, Event]], now: datetime) -> None:
        for invoice_platform_id, event in events:
            stored = event if event.recorded_at else event.model_copy(update={"recorded_at": now})
            try:
                invoice_id = self._invoice_id(conn, connection, invoice_platform_id)
            except StoreError:  # an invoice the store does not hold (a note queued by hand): no history to add
                continue
            self._insert_events(conn, invoice_id, [stored], now)

    def outbox_rows(
        self, *, connection: str | None = None, status: Sequence[str] | None = None, kind: Sequence[str] | None = None
    ) -> list[OutboxEntry]:
        o = schema.outbox.c
        query = select(schema.outbox).order_by(o.id)
        if connection is not None:
            query = query.where(o.connection == connection)
        if status is not None:
            query = query.where(o.status.in_(list(status)))
        if kind is not None:
            query = query.where(o.kind.in_(list(kind)))
        with self.engine.connect() as conn:
            return [outbox_entry(row) for row in conn.execute(query)]

    def outbox_by_key(self, idempotency_key: str) -> OutboxEntry | None:
        o = schema.outbox.c
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.outbox).where(o.idempotency_key == idempotency_key)).one_or_none()
        return outbox_entry(row) if row is not None else None

    def outbox_row(self, entry_id: int) -> OutboxEntry | None:
        o = schema.outbox.c
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.outbox).where(o.id == entry_id)).one_or_none()
        return outbox_entry(row) if row is not None else None

    def outbox_close_task(
        self, entry: OutboxEntry, receipt: Mapping[str, Any], events: Sequence[tuple[str, Event]] = ()
    ) -> bool:
        """A task the bookkeeper carried out: `task` → `done`, with its events (e.g. the letter's send date)."""
        return self._move_task(entry, "task", "done", receipt, events)

    def outbox_reopen_task(
        self, entry: OutboxEntry, receipt: Mapping[str, Any], events: Sequence[tuple[str, Event]] = ()
    ) -> bool:
        """A task closed automatically that has work again (an invoice reopened): `done` → `task`, with its events."""
        return self._move_task(entry, "done", "task", receipt, events)

    def _move_task(self, entry: OutboxEntry, old: str, new: str, receipt: Mapping[str, Any],
                   events: Sequence[tuple[str, Event]]) -> bool:
        """`old` → `new` with its receipt and events in one transaction; False when someone else moved it first."""
        o = schema.outbox.c
        now = self._clock()
        with self._write() as conn:
            moved = conn.execute(
                schema.outbox.update()
                .where(o.id == entry.id, o.status == old)
                .values(status=new, receipt=dict(receipt), updated_at=now)
            ).rowcount
            if not moved:
                return False
            self._append(conn, entry.connection, events, now)
        return True

    def outbox_fact(self, connection: str, name: str) -> str | None:
        """Something delivery learnt about a connection's platform and keeps (e.g. its mailing refused)."""
        row = self.outbox_by_key(_fact_key(connection, name))
        return None if row is None else row.payload.get("value")

    def outbox_set_fact(self, connection: str, name: str, value: str) -> None:
        """Kept as an outbox row that is never worked (status `done`), so no schema change is needed for it."""
        o = schema.outbox.c
        key = _fact_key(connection, name)
        now = self._clock()
        with self._write() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(schema.outbox.insert().values(
                        idempotency_key=key, connection=connection, kind="fact", payload={"value": value},
                        status="done", attempts=0, created_at=now, updated_at=now))
            except IntegrityError:
                conn.execute(schema.outbox.update().where(o.idempotency_key == key)
                             .values(payload={"value": value}, updated_at=now))


def _fact_key(connection: str, name: str) -> str:
    return f"fact:{connection}:{name}"
