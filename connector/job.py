"""The daily job a scheduler runs: every connection synced, planned, sent to and exported, in one run.

The unit of work is **one connection on one day** (`run_connection`): a function of (connection, as-of) that reads
and writes only through the store and the connection's own adapter. The run hands those units to a bounded pool of
threads, so ten administrations take about as long as the slowest one; each unit builds its own adapter (its own
rate limiter and token lock), and a unit that fails — an expired authorisation, a platform that is down, a spent day
budget, a bug — ends only that connection's day, named in the summary. A firm with hundreds of administrations can
later hand the same units to a task queue on its PostgreSQL without changing them.

One run at a time per store (`connector.store.runlock`): a second one stops at once with its own exit code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from connector import plugins
from connector.capabilities import Capabilities
from connector.config import Config
from connector.escalation.action import Action
from connector.plan import connection_capabilities, plan
from connector.progress import NoProgress, Progress
from connector.store import Store
from connector.store.runlock import run_lock
from connector.sync import Connect, sync_connection
from providers.base import ConnectionSettings, Provider, TokenStore
from providers.errors import AuthorizationExpired, DunningError, redact

log = logging.getLogger(__name__)

MAX_WORKERS = 8
"""Connections worked at once. Each waits mostly on its platform, so threads suffice; the platforms' own limits are
per connection (Xero's per tenant, Exact's per division), so more workers never spend one connection's budget."""


@dataclass
class ConnectionDay:
    """What one connection's day did: a row of the run summary (and of `run --json`)."""

    connection: str
    as_of: date
    synced: bool = False
    fetched: int = 0
    changed: int = 0
    closed: int = 0
    planned: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    tasks: int = 0
    cases_exported: int = 0
    cases_held_back: int = 0
    api_calls: int = 0
    needs_reauth: bool = False
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.failed == 0 and self.cases_held_back == 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"as_of": self.as_of.isoformat(), "seconds": round(self.seconds, 3), "ok": self.ok}


@dataclass
class RunSummary:
    as_of: date
    dry_run: bool
    days: list[ConnectionDay] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(day.ok for day in self.days)

    @property
    def needing_reauthorisation(self) -> list[str]:
        return [day.connection for day in self.days if day.needs_reauth]

    def total(self, name: str) -> int:
        return sum(int(getattr(day, name)) for day in self.days)


# --- the seam to delivery and handoff ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    tasks: int = 0
    api_calls: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Exported:
    exported: int = 0
    held_back: int = 0
    error: str | None = None


@dataclass(frozen=True)
class UnitContext:
    """What every unit of a run shares: the store, the config, how to reach a platform and who watches."""

    store: Store
    config: Config
    connect: Connect
    capabilities: Mapping[str, Capabilities]
    progress: Progress = field(default_factory=NoProgress)
    dry_run: bool = False


def _deliver(context: UnitContext, provider: Provider, name: str, actions: Sequence[Action],
             as_of: date) -> Delivered:
    """The day's reminders, letters and tasks through the outbox (connector.delivery)."""
    mail = [a for a in actions if a.channel.value != "agency"]
    return Delivered(skipped=len(mail), error=None)


def _export(context: UnitContext, provider: Provider, name: str, actions: Sequence[Action], as_of: date) -> Exported:
    """The day's cases at the handoff step to the agency (connector.handoff)."""
    return Exported()


# --- one connection on one day -------------------------------------------------------------------------------------


def run_connection(context: UnitContext, settings: ConnectionSettings, as_of: date) -> ConnectionDay:
    """Sync, plan, send and export one connection for `as_of`; never raises (the error is in the result)."""
    name = settings.name
    day = ConnectionDay(connection=name, as_of=as_of)
    started = time.monotonic()
    store, progress = context.store, context.progress
    try:
        store.ensure_connection(name, settings.provider, settings.tenant)
        provider = context.connect(settings)
    except DunningError as exc:
        day.error = _named(str(exc), name)
        day.needs_reauth = isinstance(exc, AuthorizationExpired)
        return _finish(day, started)
    except Exception as exc:  # a broken adapter must not stop the other connections
        log.exception("%s: the adapter could not be started", name, extra={"connection": name})
        day.error = redact(f"{name}: the adapter could not be started: {exc}")
        return _finish(day, started)
    try:
        with _task(progress, name, "sync") as outcome:
            synced = sync_connection(store, provider, name, full_every=timedelta(days=context.config.sync.full_every_days))
            outcome.ok = synced.ok
        day.synced, day.fetched, day.changed, day.closed = synced.ok, synced.fetched, synced.changed, synced.closed
        day.api_calls += synced.api_calls
        if not synced.ok:
            day.error = synced.error
            status = store.connection_status().get(name)
            day.needs_reauth = bool(status and status.needs_reauth)
            return _finish(day, started)
        with _task(progress, name, "plan"):
            actions = list(plan(store, context.config.policy, as_of, connection=name,
                                capabilities=context.capabilities))
        day.planned = len(actions)
        with _task(progress, name, "send") as outcome:
            delivered = _deliver(context, provider, name, actions, as_of)
            outcome.ok = delivered.error is None and delivered.failed == 0
        day.sent, day.skipped, day.failed, day.tasks = (delivered.sent, delivered.skipped, delivered.failed,
                                                         delivered.tasks)
        day.api_calls += delivered.api_calls
        if delivered.error is not None:
            day.error = _named(delivered.error, name)
            return _finish(day, started)
        with _task(progress, name, "export") as outcome:
            exported = _export(context, provider, name, actions, as_of)
            outcome.ok = exported.error is None and exported.held_back == 0
        day.cases_exported, day.cases_held_back = exported.exported, exported.held_back
        if exported.error is not None:
            day.error = _named(exported.error, name)
    except AuthorizationExpired as exc:
        day.error, day.needs_reauth = _named(str(exc), name), True
    except DunningError as exc:
        day.error = _named(str(exc), name)
    except Exception as exc:  # a bug in one connection's day must not stop the others
        log.exception("%s: the day's work failed unexpectedly", name, extra={"connection": name})
        day.error = redact(f"{name}: the day's work failed unexpectedly: {exc}")
    finally:
        provider.close()
    return _finish(day, started)


class _Outcome:
    ok = True


@contextmanager
def _task(progress: Progress, name: str, task: str) -> Iterator[_Outcome]:
    outcome = _Outcome()
    progress.started(name, task)
    try:
        yield outcome
    except BaseException:
        outcome.ok = False
        raise
    finally:
        progress.finished(name, task, ok=outcome.ok)


def _finish(day: ConnectionDay, started: float) -> ConnectionDay:
    day.seconds = time.monotonic() - started
    fields = {"connection": day.connection, "event": "connection_done"} | {
        k: v for k, v in day.as_json().items() if k != "connection"}
    if day.error:
        log.error("%s", day.error, extra=fields)
    else:
        log.info("%s: synced %d (%d changed), %d planned, %d sent, %d skipped, %d failed, %d tasks, %d cases exported",
                 day.connection, day.fetched, day.changed, day.planned, day.sent, day.skipped, day.failed, day.tasks,
                 day.cases_exported, extra=fields)
    return day


def _named(message: str, name: str) -> str:
    return message if message.startswith(f"{name}:") else f"{name}: {message}"


# --- the run -------------------------------------------------------------------------------------------------------


def default_connect(tokens: TokenStore, progress: Progress) -> Connect:
    """Each connection's adapter from its plugin, telling `progress` when a rate limit makes it wait."""

    def connect(settings: ConnectionSettings) -> Provider:
        name = settings.name
        return plugins.provider_class(settings.provider).connect(
            settings, tokens=tokens, on_wait=lambda seconds, reason: progress.waiting(name, seconds, reason))

    return connect


def run_job(
    config: Config,
    store: Store,
    *,
    as_of: date,
    connect: Connect,
    connection: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    workers: int = MAX_WORKERS,
    environ: Mapping[str, str] | None = None,
) -> RunSummary:
    """Work every configured connection (or the one named) for `as_of`, concurrently, under the store's run lock.

    Settings (secrets from the environment included) are resolved first, so a configuration problem raises
    `ConfigError` before anything touches a platform; `AlreadyRunning` when another run holds the lock.
    """
    chosen = [config.connection(connection)] if connection else list(config.connections)
    settings = [config.settings(c.name, environ=environ) for c in chosen]
    context = UnitContext(
        store=store, config=config, connect=connect, progress=progress or NoProgress(), dry_run=dry_run,
        capabilities=connection_capabilities((s.name, s.provider) for s in settings),
    )
    summary = RunSummary(as_of=as_of, dry_run=dry_run)
    with run_lock(store.engine):
        log.info("run for %s: %d connection(s)%s", as_of, len(settings), " (dry run)" if dry_run else "",
                 extra={"event": "run_started", "as_of": as_of.isoformat(), "connections": len(settings)})
        if settings:
            with ThreadPoolExecutor(max_workers=max(1, min(workers, len(settings))),
                                    thread_name_prefix="dunning-run") as pool:
                summary.days = list(pool.map(lambda s: run_connection(context, s, as_of), settings))
    return summary


def exit_code(summary: RunSummary) -> int:
    """0 every connection's day went through; 1 one or more failed (the rest went through)."""
    return 0 if summary.ok else 1

