"""Connections: which platform and tenant a name stands for, its cursor's bookkeeping and its authorisation state."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from connector.store import schema
from connector.store.base import StoreBase
from connector.store.errors import StoreError


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


class ConnectionsMixin(StoreBase):
    """The store's connection methods (mixed into `Store`)."""

    def ensure_connection(self, name: str, provider: str, tenant: str | None) -> None:
        """Register a configured connection; refuses to mix another platform's or tenant's data under its name."""
        c = schema.connections.c
        with self._write() as conn:
            row = conn.execute(select(c.provider, c.tenant).where(c.name == name)).one_or_none()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            schema.connections.insert().values(
                                name=name, provider=provider, tenant=tenant, needs_reauth=False,
                                created_at=self._clock(),
                            )
                        )
                    return
                except IntegrityError:  # another process registered it since (PostgreSQL): check what it wrote
                    row = conn.execute(select(c.provider, c.tenant).where(c.name == name)).one()
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
