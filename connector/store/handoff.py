"""Handoff cases in the store: one row per case handed (or to be handed) to a collection agency.

A case is opened the first time a debtor's invoices reach the handoff step, keeps its reference (`C000042`) while it
is held back or waits for its upload, and is closed by the handoff itself: in one transaction the row becomes
exported (or uploaded) and every invoice of the case gets a `handoff` event, after which the planner sends it
nothing more. Statuses: `pending` (opened, nothing written yet), `held_back` (required data missing: the payload's
`missing` lists it), `exported` (files written), `uploaded` (delivered to the agency's server).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select

from connector.models import Event
from connector.store import schema
from connector.store.errors import StoreError

CaseStatus = Literal["pending", "held_back", "exported", "uploaded"]


@dataclass(frozen=True)
class HandoffCase:
    id: int
    connection: str
    debtor_id: str
    status: CaseStatus
    created_at: datetime
    exported_at: datetime | None
    payload: Mapping[str, Any]
    """debtor_name, invoices (platform ids), invoice_numbers, missing, folder, agency, as_of, totals, handed_off,
    uploaded_at, upload_error: what `dunning cases` shows and `--again` rebuilds from."""

    @property
    def reference(self) -> str:
        return case_reference(self.id)

    @property
    def handed_off(self) -> bool:
        """The invoices carry the handoff event: the case is closed for the planner."""
        return bool(self.payload.get("handed_off"))

    @property
    def invoice_ids(self) -> tuple[str, ...]:
        return tuple(self.payload.get("invoices", ()))


def case_reference(case_id: int) -> str:
    return f"C{case_id:06d}"


def case_id(reference: str) -> int | None:
    """`C000042` (or `42`) → 42; None for anything else."""
    match = re.fullmatch(r"[Cc]?0*(\d{1,12})", reference.strip())
    return int(match.group(1)) if match else None


class HandoffCases:
    """The store's handoff methods (mixed into `Store`)."""

    engine: Engine
    _clock: Callable[[], datetime]
    _write: Callable[[], AbstractContextManager[Connection]]

    def handoff_cases_open(self, debtors: Sequence[tuple[str, str]]) -> dict[tuple[str, str], HandoffCase]:
        """Per (connection, debtor id): the debtor's case that is not handed off yet (held back, or waiting for its
        upload), else a new one. One transaction for all, so an export of thousands of cases stays fast."""
        h = schema.handoff_cases.c
        found: dict[tuple[str, str], HandoffCase] = {}
        wanted = list(dict.fromkeys(debtors))
        with self._write() as conn:
            for connection in sorted({c for c, _d in wanted}):
                ids = [d for c, d in wanted if c == connection]
                for start in range(0, len(ids), 500):
                    query = (select(schema.handoff_cases)
                             .where(h.connection == connection, h.debtor_id.in_(ids[start:start + 500]))
                             .order_by(h.id))
                    for row in conn.execute(query):
                        case = _case(row)
                        if not case.handed_off:
                            found[(case.connection, case.debtor_id)] = case
            now = self._clock()
            for connection, debtor_id in wanted:
                if (connection, debtor_id) in found:
                    continue
                new_id = conn.execute(
                    schema.handoff_cases.insert().values(
                        connection=connection, debtor_id=debtor_id, status="pending", created_at=now, payload={}
                    )
                ).inserted_primary_key[0]
                found[(connection, debtor_id)] = HandoffCase(new_id, connection, debtor_id, "pending", now, None, {})
        return found

    def handoff_case(self, reference: str) -> HandoffCase | None:
        wanted = case_id(reference)
        if wanted is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.handoff_cases).where(schema.handoff_cases.c.id == wanted)
            ).one_or_none()
        return None if row is None else _case(row)

    def handoff_cases(self, connection: str | None = None) -> Iterator[HandoffCase]:
        """Every case, oldest first."""
        h = schema.handoff_cases.c
        query = select(schema.handoff_cases).order_by(h.id)
        if connection is not None:
            query = query.where(h.connection == connection)
        with self.engine.connect() as conn:
            found = [_case(row) for row in conn.execute(query)]
        yield from found

    def handoff_cases_update(self, updates: Sequence[tuple[int, CaseStatus, Mapping[str, Any]]]) -> None:
        """Record cases' state without handing them off (held back, or written but not delivered)."""
        with self._write() as conn:
            for case_id_, status, payload in updates:
                self._set_case(conn, case_id_, status, payload, exported=status in ("exported", "uploaded"))

    def handoff_record(
        self,
        cases: Sequence[tuple[int, CaseStatus, Mapping[str, Any]]],
        events: Sequence[tuple[str, str, Event]],
        notes: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
        *,
        note_kind: str = "note",
    ) -> None:
        """Hand cases off in ONE transaction: their rows' new state, a `handoff` event on each invoice (`events`:
        connection, invoice platform id, event) and the outbox rows of the notes for the platform (`notes`:
        connection, idempotency key, payload; a key queued before is left as it is). A crash leaves none of it."""
        now = self._clock()
        i, o = schema.invoices.c, schema.outbox.c
        with self._write() as conn:
            for case_id_, status, payload in cases:
                self._set_case(conn, case_id_, status, dict(payload) | {"handed_off": True}, exported=True)
            rows = []
            for connection, platform_id, event in events:
                invoice_id = conn.execute(
                    select(i.id).where(i.connection == connection, i.platform_id == platform_id)
                ).scalar_one_or_none()
                if invoice_id is None:
                    raise StoreError(f"invoice id {platform_id} is not in the store", connection=connection)
                rows.append({"invoice_id": invoice_id, "kind": event.kind.value, "on_date": event.on,
                             "step": event.step, "data": event.data, "recorded_at": event.recorded_at or now})
            if rows:
                conn.execute(schema.events.insert(), rows)
            keys = [key for _c, key, _p in notes]
            queued: set[str] = set()
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                queued.update(conn.execute(select(o.idempotency_key).where(o.idempotency_key.in_(chunk))).scalars())
            new = [
                {"idempotency_key": key, "connection": connection, "kind": note_kind, "payload": dict(payload),
                 "status": "pending", "attempts": 0, "created_at": now, "updated_at": now}
                for connection, key, payload in notes if key not in queued
            ]
            if new:
                conn.execute(schema.outbox.insert(), new)

    def _set_case(
        self, conn: Connection, case_id_: int, status: CaseStatus, payload: Mapping[str, Any], *, exported: bool
    ) -> None:
        h = schema.handoff_cases.c
        values: dict[str, Any] = {"status": status, "payload": dict(payload)}
        if exported:
            values["exported_at"] = self._clock()
        updated = conn.execute(schema.handoff_cases.update().where(h.id == case_id_).values(**values)).rowcount
        if not updated:
            raise StoreError(f"handoff case {case_reference(case_id_)} is not in the store")


def _case(row: Any) -> HandoffCase:
    return HandoffCase(
        id=row.id,
        connection=row.connection,
        debtor_id=row.debtor_id,
        status=row.status,
        created_at=row.created_at,
        exported_at=row.exported_at,
        payload=row.payload or {},
    )
