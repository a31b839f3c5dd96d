"""Handoff cases in the store: one row per case handed (or to be handed) to a collection agency.

A case is opened the first time a debtor's invoices reach the handoff step, keeps its reference (`C000042`) while it
is held back or waits for its upload, and is closed by the handoff itself: in one transaction the row becomes
exported (or uploaded) and every invoice of the case gets a `handoff` event, after which the planner sends it
nothing more. Statuses: `pending` (opened, nothing written yet), `held_back` (required data missing: the payload's
`missing` lists it), `exported` (files written), `uploaded` (delivered to the agency's server).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, func, select

from connector.models import Event
from connector.store import schema
from connector.store.base import IN_CHUNK, StoreBase
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
    """debtor_name, invoices (platform ids), invoice_numbers, missing, folder, agency, as_of, currency, totals,
    exports, handed_off, upload_error: what `dunning cases` shows and `--again` rebuilds from."""

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


class HandoffCases(StoreBase):
    """The store's handoff methods (mixed into `Store`)."""

    def handoff_cases_open(self, debtors: Sequence[tuple[str, str]]) -> dict[tuple[str, str], HandoffCase]:
        """Per (connection, debtor id): the debtor's case that is not handed off yet (held back, or waiting for its
        upload), else a new one. One transaction for all, so an export of thousands of cases stays fast."""
        wanted = list(dict.fromkeys(debtors))
        with self._write() as conn:
            found = self._open_cases(conn, wanted)
            new = [{"connection": c, "debtor_id": d, "status": "pending", "created_at": self._clock(), "payload": {}}
                   for c, d in wanted if (c, d) not in found]
            if new:
                conn.execute(schema.handoff_cases.insert(), new)
                found = self._open_cases(conn, wanted)
        return found

    @staticmethod
    def _open_cases(conn: Connection, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], HandoffCase]:
        h = schema.handoff_cases.c
        found: dict[tuple[str, str], HandoffCase] = {}
        for connection in sorted({c for c, _d in wanted}):
            ids = [d for c, d in wanted if c == connection]
            for start in range(0, len(ids), IN_CHUNK):
                query = (select(schema.handoff_cases)
                         .where(h.connection == connection, h.debtor_id.in_(ids[start:start + IN_CHUNK]))
                         .order_by(h.id))
                for row in conn.execute(query):
                    case = _case(row)
                    if not case.handed_off:
                        found[(case.connection, case.debtor_id)] = case
        return found

    def outbox_payloads(self, keys: Sequence[str]) -> dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]]:
        """Idempotency key → (payload, receipt) of those outbox rows: what was sent, for the dossier's evidence."""
        o = schema.outbox.c
        found: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
        unique = list(dict.fromkeys(keys))
        with self.engine.connect() as conn:
            for start in range(0, len(unique), IN_CHUNK):
                query = select(o.idempotency_key, o.payload, o.receipt).where(
                    o.idempotency_key.in_(unique[start:start + IN_CHUNK]))
                found.update({key: (payload or {}, receipt or {}) for key, payload, receipt in conn.execute(query)})
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
            self._set_cases(conn, updates, handed_off=False)

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
            self._set_cases(conn, cases, handed_off=True)
            ids: dict[tuple[str, str], int] = {}
            for connection in sorted({c for c, _p, _e in events}):
                wanted = sorted({p for c, p, _e in events if c == connection})
                for start in range(0, len(wanted), IN_CHUNK):
                    query = select(i.platform_id, i.id).where(
                        i.connection == connection, i.platform_id.in_(wanted[start:start + IN_CHUNK]))
                    ids.update({(connection, platform_id): row_id for platform_id, row_id in conn.execute(query)})
            rows = []
            for connection, platform_id, event in events:
                if (connection, platform_id) not in ids:
                    raise StoreError(f"invoice id {platform_id} is not in the store", connection=connection)
                rows.append({"invoice_id": ids[(connection, platform_id)], "kind": event.kind.value,
                             "on_date": event.on, "step": event.step, "data": event.data,
                             "recorded_at": event.recorded_at or now})
            if rows:
                conn.execute(schema.events.insert(), rows)
            keys = [key for _c, key, _p in notes]
            queued: set[str] = set()
            for start in range(0, len(keys), IN_CHUNK):
                chunk = keys[start:start + IN_CHUNK]
                queued.update(conn.execute(select(o.idempotency_key).where(o.idempotency_key.in_(chunk))).scalars())
            new = [
                {"idempotency_key": key, "connection": connection, "kind": note_kind, "payload": dict(payload),
                 "status": "pending", "attempts": 0, "created_at": now, "updated_at": now}
                for connection, key, payload in notes if key not in queued
            ]
            if new:
                conn.execute(schema.outbox.insert(), new)

    def _set_cases(
        self, conn: Connection, updates: Sequence[tuple[int, CaseStatus, Mapping[str, Any]]], *, handed_off: bool
    ) -> None:
        """One executemany UPDATE for all the cases (exported ones get their export time)."""
        if not updates:
            return
        h = schema.handoff_cases.c
        now = self._clock()
        wanted = [case_id_ for case_id_, _s, _p in updates]
        known: set[int] = set()
        for start in range(0, len(wanted), IN_CHUNK):
            known.update(conn.execute(select(h.id).where(h.id.in_(wanted[start:start + IN_CHUNK]))).scalars())
        unknown = [case_id_ for case_id_ in wanted if case_id_ not in known]
        if unknown:
            raise StoreError(f"handoff case {case_reference(unknown[0])} is not in the store")
        statement = (
            schema.handoff_cases.update()
            .where(h.id == bindparam("case_id"))
            .values(status=bindparam("new_status"), payload=bindparam("new_payload"),
                    exported_at=func.coalesce(bindparam("new_exported_at", type_=h.exported_at.type), h.exported_at))
        )
        conn.execute(statement, [
            {"case_id": case_id_, "new_status": status,
             "new_payload": dict(payload) | ({"handed_off": True} if handed_off else {}),
             "new_exported_at": now if status in ("exported", "uploaded") else None}
            for case_id_, status, payload in updates
        ])


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
