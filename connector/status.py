"""What `dunning status` shows: per connection, its tenant, last sync, open invoices and whether its authorisation
still works. Read-only: it refreshes no token and creates no file."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from connector import plugins
from connector.config import Config
from connector.store import Store
from providers.base import TokenStore
from providers.errors import DunningError


def reconnect_command(name: str) -> str:
    return f"dunning setup --reconnect {name}"


@dataclass(frozen=True)
class AuthorisationState:
    """`ok` (usable; an expired access token renews itself), `missing`, `expired` (no way to renew) or `unknown`."""

    state: str
    expires_at: dt.datetime | None = None
    """When the access token expires (None: the platform gives no lifetime, or nothing is stored)."""
    reason: str | None = None
    refresh_lapses_at: dt.datetime | None = None
    """When the platform drops the refresh token unless a sync renews it first (None: no refresh token, or the
    platform documents no such limit)."""

    @property
    def needs_reauth(self) -> bool:
        return self.state in ("missing", "expired")


LAPSE_WARNING = dt.timedelta(days=7)
"""How long before a refresh token lapses `status` says so: time to find out why the job stopped renewing it."""


def authorisation_state(name: str, tokens: TokenStore | None, *, now: dt.datetime,
                        store_problem: str | None = None,
                        refresh_lifetime: dt.timedelta | None = None) -> AuthorisationState:
    """What the token store says about one connection, without refreshing or changing anything.

    `store_problem` says why the token store could not be opened at all (then nothing is known);
    `refresh_lifetime` is how long the platform keeps a refresh token nobody uses (`Provider.refresh_token_lifetime`):
    each sync renews it, so one not renewed within it is gone, and the last week before that is worth a warning.
    """
    if store_problem is not None:
        return AuthorisationState("unknown", reason=f"the token store cannot be opened: {store_problem}")
    if tokens is None:
        return AuthorisationState("missing", reason="no authorisation stored yet")
    try:
        token = tokens.load(name)
    except DunningError as exc:
        return AuthorisationState("unknown", reason=f"the token store cannot be read: {exc}")
    if token is None:
        return AuthorisationState("missing", reason="no authorisation stored")
    if token.refresh_token is None and token.expires_at is not None and token.expires_at <= now:
        return AuthorisationState("expired", token.expires_at, "the access token expired and cannot be renewed")
    lapses, unused = None, ""
    if refresh_lifetime is not None and token.refresh_token is not None:
        lapses = token.issued_at + refresh_lifetime
        unused = f"the platform drops an authorisation not renewed for {refresh_lifetime.days} days"
    if lapses is not None and lapses <= now:
        return AuthorisationState("expired", token.expires_at, f"the authorisation was last renewed on "
                                  f"{token.issued_at:%Y-%m-%d} and {unused}", lapses)
    started = tokens.interrupted_refresh(name, token)
    if started is not None:
        return AuthorisationState("ok", token.expires_at, f"a token refresh was interrupted at "
                                  f"{started:%Y-%m-%d %H:%M} UTC; the next sync tells whether it still works", lapses)
    if lapses is not None and lapses - now <= LAPSE_WARNING:
        return AuthorisationState("ok", token.expires_at, f"the authorisation lapses on {lapses:%Y-%m-%d %H:%M} UTC "
                                  f"unless a sync renews it before then ({unused}): check that `dunning run` is "
                                  "scheduled", lapses)
    return AuthorisationState("ok", token.expires_at, refresh_lapses_at=lapses)


def status_rows(
    config: Config, store: Store, tokens: TokenStore | None, *, now: dt.datetime, token_problem: str | None = None
) -> list[dict[str, Any]]:
    """One row per configured connection (the fields of `status --json`)."""
    known = store.connection_status()
    rows = []
    for connection in config.connections:
        state = known.get(connection.name)
        owner = connection.token_key or connection.name  # connections sharing one consent share its tokens
        authorisation = authorisation_state(owner, tokens, now=now, store_problem=token_problem,
                                            refresh_lifetime=_refresh_lifetime(connection.provider))
        needs_reauth = bool(state and state.needs_reauth) or authorisation.needs_reauth
        reason = state.reauth_reason if state and state.needs_reauth else authorisation.reason
        rows.append(
            {
                "name": connection.name,
                "provider": connection.provider,
                "tenant": connection.tenant,
                "last_sync_at": state.last_sync_at.isoformat() if state and state.last_sync_at else None,
                "last_full_sync_at": state.last_full_sync_at.isoformat() if state and state.last_full_sync_at else None,
                "token_expires_at": authorisation.expires_at.isoformat() if authorisation.expires_at else None,
                "refresh_lapses_at": (authorisation.refresh_lapses_at.isoformat()
                                      if authorisation.refresh_lapses_at else None),
                "authorisation": "needs re-authorisation" if needs_reauth else authorisation.state,
                "open_invoices": state.open_invoices if state else 0,
                "platform_warnings": list(state.platform_warnings) if state else [],
                "needs_reauth": needs_reauth,
                "reauth_command": reconnect_command(connection.name) if needs_reauth else None,
                "attention": _with_command(reason, reconnect_command(connection.name)) if needs_reauth else reason,
            }
        )
    return rows


def _refresh_lifetime(provider: str) -> dt.timedelta | None:
    """The platform's limit on an unused refresh token (None where its adapter cannot be loaded: status still shows
    the rest)."""
    try:
        return plugins.provider_class(provider).refresh_token_lifetime
    except plugins.PluginError:
        return None


def _with_command(reason: str | None, command: str) -> str:
    if reason and command in reason:
        return reason
    return f"{reason or 'needs re-authorisation'}. Run: {command}"
