"""Pulling open receivables from each connection into the store.

Each page an adapter yields is stored in one transaction together with its cursor, so an interrupted sync (a
crash, an expired authorisation, the day's rate limit) keeps every page written so far and the next run carries
on from there.

Incremental reads miss some changes (Xero does not bump UpdatedDateUTC for every edit, Exact's feeds show neither
deleted invoices nor a contact's new e-mail), so every `[sync] full_every_days` a connection re-reads its whole
open set, comparing content. Only a full read that completed counts; an interrupted one, or one that left open
invoices unaccounted for, is started again by the next sync.

What is compared, closed and kept out is decided once for every platform in `providers/streams.py`: an invoice
closes only on the platform's evidence; one it does not account for stays open and is named (exit 1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from connector import plugins
from connector.config import Config
from connector.progress import NoProgress, Progress
from connector.store import Busy, Store
from providers.base import ConnectionSettings, Provider, TokenStore
from providers.errors import AuthorizationExpired, DunningError, RateLimited, redact

log = logging.getLogger(__name__)

SYNC_LOCK_WAIT_SECONDS = 10.0
"""How long a sync waits for another sync of the same connection to finish before it stops (one at a time)."""

Connect = Callable[[ConnectionSettings], Provider]
"""Builds the adapter for a connection (the demo and tests plug in simulators here)."""


@dataclass
class SyncSummary:
    """What one connection's sync did; `error` is set when it stopped early."""

    connection: str
    full: bool = False
    """Whether this run re-read the whole open set (forced, periodic, or the connection's first sync)."""
    fetched: int = 0
    """Invoices handed to the store: new, changed or closed (unchanged ones are compared and left out)."""
    changed: int = 0
    """Invoices that were new or changed in the store."""
    closed: int = 0
    """Invoices that left the open set."""
    api_calls: int = 0
    problems: list[str] = field(default_factory=list)
    """Records the adapter skipped as bad platform data, each naming the record."""
    anomalies: list[str] = field(default_factory=list)
    """Open invoices the platform no longer lists yet did not return when asked: kept open, named (exit 1)."""
    platform_warnings: list[str] | None = None
    """Platform-side settings to fix (e.g. its own automatic reminders), checked on full syncs only."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def sync_connection(
    store: Store,
    provider: Provider,
    connection_name: str,
    *,
    full: bool = False,
    full_every: timedelta = timedelta(0),
    progress: Progress | None = None,
) -> SyncSummary:
    """`_sync_locked` under the connection's sync lock (on both databases, across processes and machines): a second
    sync of the same connection waits `SYNC_LOCK_WAIT_SECONDS`, then ends with an error naming the connection."""
    with ExitStack() as held:
        try:
            held.enter_context(store.lock("sync", connection=connection_name, wait_seconds=SYNC_LOCK_WAIT_SECONDS))
        except Busy as exc:
            return SyncSummary(connection=connection_name, error=str(exc))
        return _sync_locked(store, provider, connection_name, full=full, full_every=full_every, progress=progress)


def _sync_locked(
    store: Store,
    provider: Provider,
    connection_name: str,
    *,
    full: bool = False,
    full_every: timedelta = timedelta(0),
    progress: Progress | None = None,
) -> SyncSummary:
    """Sync one connection page by page; a `DunningError` ends it with `SyncSummary.error` set.

    The sync is full (ignores the cursor) when `full` is asked for, or when the last completed full sync is
    `full_every` or longer ago (zero: never). Pages stored before an error stay stored. An expired authorisation
    marks the connection as needing re-authorisation (shown by `dunning status`); the day's rate limit stops this
    connection only. Anything that is not a `DunningError` is a bug and propagates; Ctrl-C propagates after saying
    what was kept.
    """
    progress = progress or NoProgress()
    state = store.sync_state(connection_name, full=full or store.full_sync_due(connection_name, full_every))
    summary = SyncSummary(connection=connection_name, full=state.full or state.cursor is None)
    calls_before = provider.calls
    debtors = 0
    progress.started(connection_name, "sync")
    try:
        for page in provider.sync(state):
            written = store.write_sync_page(connection_name, page)
            summary.fetched += len(page.invoices)
            summary.changed += written.changed
            summary.closed += written.closed
            debtors += len(page.debtors)
            summary.problems.extend(page.problems)
            summary.anomalies.extend(page.anomalies)
            for problem in page.problems:
                log.warning("%s: skipped %s", connection_name, problem)
            for anomaly in page.anomalies:
                log.warning("%s: %s", connection_name, anomaly)
            for invoice in page.invoices:
                for anomaly in invoice.anomalies:  # stored as the platform has it, but worth a look
                    log.warning("%s: %s", connection_name, anomaly)
            progress.page(connection_name, invoices=summary.fetched, debtors=debtors,
                          calls=provider.calls - calls_before)
        if summary.full:
            summary.platform_warnings = _platform_warnings(provider, connection_name)
    except AuthorizationExpired as exc:
        summary.error = _with_reconnect(exc, connection_name)
        store.mark_needs_reauth(connection_name, summary.error)
    except RateLimited as exc:
        summary.error = (
            f"{connection_name}: the platform's daily API limit is reached; this connection stops here and the "
            "next sync continues from the last stored page"
            if exc.for_the_day
            else exc.named(connection_name)
        )
    except DunningError as exc:
        summary.error = exc.named(connection_name)
    except KeyboardInterrupt:
        log.error("%s: interrupted; %d invoices and %d debtors already stored are kept, and the next sync carries "
                  "on from the last stored page", connection_name, summary.fetched, debtors)
        progress.finished(connection_name, "sync", ok=False)
        raise
    finally:
        summary.api_calls = provider.calls - calls_before
    if summary.ok:  # a full read that left invoices unaccounted for is not a completed one: the next is full again
        store.mark_synced(connection_name, full=summary.full and not summary.anomalies,
                          platform_warnings=summary.platform_warnings)
    progress.finished(connection_name, "sync", ok=summary.ok and not summary.anomalies)
    return summary


def _platform_warnings(provider: Provider, connection_name: str) -> list[str]:
    """What the platform's own settings need fixing (double reminders!). Asked on full syncs only, so an unchanged
    incremental sync keeps its minimal call count; a failure to ask is itself a warning, never a failed sync."""
    try:
        warnings = provider.warnings()
    except (AuthorizationExpired, RateLimited):
        raise
    except DunningError as exc:
        warnings = [f"could not check the platform's own settings: {exc.message}"]  # the log line names it
    for warning in warnings:
        log.warning("%s: %s", connection_name, warning)
    return warnings


def _with_reconnect(exc: AuthorizationExpired, connection_name: str) -> str:
    command = f"dunning setup --reconnect {connection_name}"
    message = exc.named(connection_name)
    return message if command in message else f"{message.rstrip('.')}. Run: {command}"


def sync_all(
    config: Config,
    store: Store,
    tokens: TokenStore,
    *,
    connection: str | None = None,
    full: bool = False,
    connect: Connect | None = None,
    progress: Progress | None = None,
) -> list[SyncSummary]:
    """Sync every configured connection (or the one named), carrying on past a failing one.

    All settings (secrets from the environment included) are resolved before the first call, so a configuration
    problem raises `ConfigError` before anything touches a platform.
    """
    chosen = [config.connection(connection)] if connection else list(config.connections)
    settings = [config.settings(c.name) for c in chosen]
    observer = progress or NoProgress()
    connect = connect or (lambda s: plugins.provider_class(s.provider).connect(
        s, tokens=tokens, on_wait=lambda seconds, reason: observer.waiting(s.name, seconds, reason)))
    full_every = timedelta(days=config.sync.full_every_days)
    summaries = []
    for connection_settings in settings:
        summaries.append(_sync_one(store, connection_settings, connect, full=full, full_every=full_every,
                                   progress=observer))
    return summaries


def _sync_one(
    store: Store, settings: ConnectionSettings, connect: Connect, *, full: bool, full_every: timedelta,
    progress: Progress,
) -> SyncSummary:
    name = settings.name
    try:
        store.ensure_connection(name, settings.provider, settings.tenant)
        provider = connect(settings)
    except DunningError as exc:
        log.error("%s", exc.named(name))
        return SyncSummary(connection=name, error=exc.named(name))
    except Exception as exc:  # a broken adapter must not stop the other connections either
        log.exception("%s: the adapter could not be started", name)
        return SyncSummary(connection=name, error=redact(f"{name}: the adapter could not be started: {exc}"))
    try:
        summary = sync_connection(store, provider, name, full=full, full_every=full_every, progress=progress)
    except Exception as exc:  # a bug in one adapter must not stop the other connections
        log.exception("%s: sync failed unexpectedly", name)
        summary = SyncSummary(connection=name, error=redact(f"{name}: sync failed unexpectedly: {exc}"))
    finally:
        provider.close()
    if summary.ok:
        log.info(
            "%s: %s sync, %d invoices fetched, %d changed, %d closed, %d API calls",
            name, "full" if summary.full else "incremental", summary.fetched, summary.changed, summary.closed,
            summary.api_calls,
        )
    else:
        log.error("%s", summary.error)
    return summary


def failed(summaries: Sequence[SyncSummary]) -> bool:
    """Exit 1: a connection stopped early, or kept invoices open that the platform no longer accounts for."""
    return any(not s.ok or s.anomalies for s in summaries)
