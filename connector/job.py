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
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from connector import plugins
from connector.config import Config
from connector.delivery import Outcome, deliver_connection
from connector.handoff import AgencyFormat, export_cases, load_format
from connector.handoff.export import Upload
from connector.handoff.upload import configured_upload
from connector.plan import plan
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
    """Actions delivery worked today (reminders, letters, call tasks); handoffs are counted apart."""
    sent: int = 0
    """Reminders the platforms (or the mail server) sent."""
    skipped: int = 0
    """Reminders not sent, each with its reason (paid since the sync, already sent, left for the next run)."""
    failed: int = 0
    """Outbox rows that failed (a reminder, note or confirmation), each named in the log."""
    tasks: int = 0
    letters: int = 0
    """Of the tasks: letters (PDF) to post."""
    notes: int = 0
    """Notes and confirmations written on the platforms (e.g. the handoff note on each invoice)."""
    left_pending: int = 0
    """Rows delivery left for the next run (a spent day budget, an expired authorisation)."""
    sent_by_step: dict[str, int] = field(default_factory=dict)
    handoffs_due: int = 0
    cases_exported: int = 0
    cases_held_back: int = 0
    export_folder: str | None = None
    api_calls: int = 0
    needs_reauth: bool = False
    anomalies: list[str] = field(default_factory=list)
    """Open invoices the sync kept open and named (the platform did not return them): the day ends in exit 1, as
    `dunning sync` does."""
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.failed == 0 and self.cases_held_back == 0 and not self.anomalies

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


@dataclass(frozen=True)
class UnitContext:
    """What every unit of a run shares: the store, the config, how to reach a platform and who watches."""

    store: Store
    config: Config
    connect: Connect
    agency: AgencyFormat | None = None
    """The agency format cases are exported in (None: `[handoff] agency` not set, nothing is exported)."""
    upload: Upload | None = None
    """Delivers an export where the agency takes uploads (`[handoff] upload`)."""
    progress: Progress = field(default_factory=NoProgress)
    dry_run: bool = False


# --- one connection on one day -------------------------------------------------------------------------------------


def run_connection(context: UnitContext, settings: ConnectionSettings, as_of: date) -> ConnectionDay:
    """Sync, plan, send and export one connection for `as_of`, through one adapter (its own rate limits and token
    lock) and the store; never raises (errors are in the result). A connection whose sync fails sends nothing that
    day: its plan would rest on stale data."""
    name = settings.name
    day = ConnectionDay(connection=name, as_of=as_of)
    started = time.monotonic()
    try:
        context.store.ensure_connection(name, settings.provider, settings.tenant)
        provider = context.connect(settings)
    except DunningError as exc:
        day.error, day.needs_reauth = exc.named(name), isinstance(exc, AuthorizationExpired)
        return _finish(day, started)
    except Exception as exc:  # a broken adapter must not stop the other connections
        log.exception("%s: the adapter could not be started", name, extra={"connection": name})
        day.error = redact(f"{name}: the adapter could not be started: {exc}")
        return _finish(day, started)
    try:
        _sync(context, provider, name, day)
        if day.synced:
            _send(context, provider, name, as_of, day)
        if day.error is None and not context.dry_run and context.agency is not None:
            _export(context, provider, name, as_of, day)
    except AuthorizationExpired as exc:
        day.error, day.needs_reauth = exc.named(name), True
    except DunningError as exc:
        day.error = exc.named(name)
    except Exception as exc:  # a bug in one connection's day must not stop the others
        log.exception("%s: the day's work failed unexpectedly", name, extra={"connection": name})
        day.error = redact(f"{name}: the day's work failed unexpectedly: {exc}")
    finally:
        provider.close()
    return _finish(day, started)


def _sync(context: UnitContext, provider: Provider, name: str, day: ConnectionDay) -> None:
    store = context.store
    with _task(context.progress, name, "sync") as outcome:
        synced = sync_connection(store, provider, name, full_every=timedelta(days=context.config.sync.full_every_days))
        outcome.ok = synced.ok
    day.synced, day.fetched, day.changed, day.closed = synced.ok, synced.fetched, synced.changed, synced.closed
    day.api_calls += synced.api_calls
    day.anomalies = [_named(anomaly, name) for anomaly in synced.anomalies]
    if not synced.ok:
        day.error, day.needs_reauth = synced.error, _needs_reauth(store, name)


def _send(context: UnitContext, provider: Provider, name: str, as_of: date, day: ConnectionDay) -> None:
    def count(outcome: Outcome) -> None:
        fields = outcome.fields
        if fields.get("channel") == "agency":
            day.handoffs_due += 1
        elif outcome.status == "failed":
            day.failed += 1
        elif outcome.status == "task":
            day.tasks += 1
            day.letters += fields.get("channel") == "letter"
        elif fields.get("kind", "reminder") != "reminder":  # a note or confirmation written on the platform
            day.notes += outcome.status == "sent"
        elif outcome.status == "sent":
            step = str(fields.get("step"))
            day.sent_by_step[step] = day.sent_by_step.get(step, 0) + 1
            day.sent += 1
        else:
            day.skipped += 1

    with _task(context.progress, name, "plan"):
        actions = list(plan(context.store, context.config.policy, as_of, connection=name,
                            capabilities={name: provider.capabilities}))
    day.planned = sum(1 for a in actions if a.channel.value != "agency")
    # delivery opens and closes the connection's "send" row itself (with the tasks it left for a person)
    sent = deliver_connection(context.store, context.config, provider, name, actions, as_of=as_of, emit=count,
                              dry_run=context.dry_run, progress=context.progress)
    day.left_pending, day.api_calls = sent.left_pending, day.api_calls + sent.api_calls
    if sent.error is not None:
        day.error, day.needs_reauth = _named(sent.error, name), _needs_reauth(context.store, name)


def _needs_reauth(store: Store, name: str) -> bool:
    """Whether sync or delivery found the authorisation withdrawn or expired (they flag it in the store)."""
    status = store.connection_status().get(name)
    return bool(status and status.needs_reauth)


_EXPORT_FOLDER = threading.Lock()
"""Connections of one run export into the same folder: one at a time picks its export's free name."""


def _export(context: UnitContext, provider: Provider, name: str, as_of: date, day: ConnectionDay) -> None:
    assert context.agency is not None
    config = context.config.model_copy(update={"connections": (context.config.connection(name),)})
    with _task(context.progress, name, "export") as outcome, _EXPORT_FOLDER:
        result = export_cases(context.store, config, context.agency, as_of, out_dir=config.handoff_dir,
                              fetch_pdf=lambda _connection: provider.fetch_pdf, upload=context.upload,
                              progress=context.progress)
        outcome.ok = result.ok
    day.cases_exported = sum(1 for o in result.outcomes if o.status == "exported")
    day.cases_held_back = sum(1 for o in result.outcomes if o.status == "held_back")
    day.export_folder = str(result.path) if result.path else None
    if result.upload_error:
        day.error = _named(result.upload_error, name)


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
    tokens: TokenStore,
    *,
    as_of: date,
    connect: Connect | None = None,
    connection: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    workers: int = MAX_WORKERS,
) -> RunSummary:
    """Work every configured connection (or the one named) for `as_of`, concurrently, under the store's run lock.

    Settings (secrets from the environment included) and the agency format are resolved first, so a configuration
    problem raises `ConfigError` before anything touches a platform; `AlreadyRunning` when another run holds the
    lock. `--dry-run` still syncs (reading the platforms, writing the store) and shows what delivery would do;
    it writes nothing to a platform and exports nothing.
    """
    chosen = [config.connection(connection)] if connection else list(config.connections)
    settings = [config.settings(c.name) for c in chosen]
    agency = load_format(config.handoff.agency, base_dir=config.base_dir) if config.handoff.agency else None
    progress = progress or NoProgress()
    context = UnitContext(store=store, config=config, connect=connect or default_connect(tokens, progress),
                          agency=agency, upload=agency_upload(config), progress=progress, dry_run=dry_run)
    summary = RunSummary(as_of=as_of, dry_run=dry_run)
    with run_lock(store.engine):
        log.info("run for %s: %d connection(s)%s", as_of, len(settings), " (dry run)" if dry_run else "",
                 extra={"event": "run_started", "as_of": as_of.isoformat(), "connections": len(settings)})
        if settings:
            with ThreadPoolExecutor(max_workers=max(1, min(workers, len(settings))),
                                    thread_name_prefix="dunning-run") as pool:
                summary.days = list(pool.map(lambda s: run_connection(context, s, as_of), settings))
    return summary


def agency_upload(config: Config) -> Upload | None:
    """The SFTP upload `[handoff] upload` asks for (key and known hosts relative to the config's folder)."""
    handoff = config.handoff
    return configured_upload(handoff.upload, handoff.upload_key, handoff.upload_known_hosts, base_dir=config.base_dir)


def exit_code(summary: RunSummary) -> int:
    """0 every connection's day went through; 1 one or more failed (the rest went through)."""
    return 0 if summary.ok else 1

