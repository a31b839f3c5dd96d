"""The outbox: every platform write recorded before it is attempted, under its idempotency key.

Delivery's claim/finish protocol on these rows lives in `delivery.py`; this module holds the row type and the
plain queue operations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Row, select
from sqlalchemy.exc import IntegrityError

from connector.store import schema
from connector.store.base import StoreBase

OutboxKind = Literal["reminder", "note", "handoff_note"]
OutboxStatus = Literal["pending", "sent", "failed", "task"]


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


def outbox_entry(row: Row[Any]) -> OutboxEntry:
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


class OutboxMixin(StoreBase):
    """The store's outbox methods (mixed into `Store`)."""

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
        return outbox_entry(row)

    def outbox_pending(self, connection: str | None = None) -> list[OutboxEntry]:
        o = schema.outbox.c
        query = select(schema.outbox).where(o.status == "pending").order_by(o.id)
        if connection is not None:
            query = query.where(o.connection == connection)
        with self.engine.connect() as conn:
            return [outbox_entry(row) for row in conn.execute(query)]

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
            return outbox_entry(conn.execute(select(schema.outbox).where(o.id == entry_id)).one())

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
