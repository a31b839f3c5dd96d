"""The application layer: wires config, store, token store, plugins and the clock once, and offers each command the
one function it calls. The CLI parses and prints; everything between the two lives here or in the modules this calls.

An `App` is cheap: it reads the config on first use and opens the store per call, so a command that fails on its
arguments has touched nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

from connector import casebook, plugins
from connector.book import BookLine, open_book
from connector.clock import Clock, utc_now
from connector.config import Config, load_config, write_starter_config
from connector.escalation.action import Action
from connector.escalation.policy import STEP_ORDER
from connector.formatting import Formats, formats_for
from connector.models import Event, Invoice
from connector.progress import Progress
from connector.setup import SetupOptions, SetupResult
from connector.status import status_rows
from connector.store import Store
from connector.sync import SyncSummary
from providers.base import ConnectionSettings, Provider, TokenStore
from providers.errors import DunningError, UsageError


@dataclass
class App:
    """What every command needs, built from the config path (and a clock tests may replace)."""

    config_path: Path
    now: Clock = utc_now
    """The one clock (an aware datetime); "today" comes from it too."""
    _config: Config | None = field(default=None, init=False, repr=False)

    # --- the wiring -------------------------------------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The config, read once (a problem raises `ConfigError` with every problem named)."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def formats(self, lang: str | None = None) -> Formats:
        """How human output writes amounts and dates: `lang`, else `[ui] lang`, else by the creditor's country."""
        config = self.config
        return formats_for(lang or config.ui.lang, config.creditor.country if config.creditor else None)

    def today(self) -> date:
        """Today by the application's clock (what `--as-of` replaces)."""
        return self.now().date()

    @contextmanager
    def store(self) -> Iterator[Store]:
        with Store.open(self.config.store_url, clock=self.now) as store:
            yield store

    @property
    def state_dir(self) -> Path:
        from providers.tokens import default_state_dir

        return default_state_dir(self.config.path or self.config_path)

    def tokens(self) -> TokenStore:
        """The token store (created on first use)."""
        from providers.tokens import open_token_store

        return open_token_store(self.state_dir)

    def connect(self, tokens: TokenStore) -> Callable[[ConnectionSettings], Provider]:
        """Builds a connection's adapter through its provider plugin."""
        return lambda settings: plugins.provider_class(settings.provider).connect(settings, tokens=tokens)

    def check_connection(self, name: str | None) -> None:
        """An unknown connection name is a usage error (`ConfigError`), also when none are configured."""
        if name is not None:
            self.config.connection(name)

    # --- the commands' functions ------------------------------------------------------------------------------

    def init(self, *, force: bool) -> Path:
        write_starter_config(self.config_path, force=force)
        return self.config_path

    def status(self) -> list[dict[str, Any]]:
        """One row per configured connection; creates nothing (no token store where there is none yet)."""
        from providers.tokens import open_token_store

        config = self.config
        tokens, problem = None, None
        if self.state_dir.exists():
            try:
                tokens = open_token_store(self.state_dir)
            except DunningError as exc:  # e.g. the keyring is out of reach: still show what the store knows
                problem = str(exc)
        with self.store() as store:
            return status_rows(config, store, tokens, now=self.now(), token_problem=problem)

    def sync(self, *, connection: str | None, full: bool, progress: Progress | None = None) -> list[SyncSummary]:
        from connector.sync import sync_all

        self.check_connection(connection)
        if not self.config.connections:
            return []
        with self.store() as store:
            tokens = self.tokens()
            return sync_all(self.config, store, tokens, connection=connection, full=full, progress=progress)

    def plan(self, as_of: date, *, connection: str | None) -> Iterator[Action]:
        """The actions due on `as_of` for the configured connections (or the one named), debtor by debtor."""
        from connector.plan import connection_capabilities
        from connector.plan import plan as plan_actions

        check_plannable(as_of)
        config = self.config
        self.check_connection(connection)
        capabilities = connection_capabilities((c.name, c.provider) for c in config.connections)
        names = [connection] if connection else [c.name for c in config.connections]  # configured ones only
        with self.store() as store:
            for name in names:
                yield from plan_actions(store, config.policy, as_of, connection=name, capabilities=capabilities)

    def setup(self, options: SetupOptions, *, ask: Callable[[str, str | None], str] | None,
              paste: IO[str] | None) -> tuple[SetupResult, bool]:
        """The OAuth wizard; returns its result and whether the OS keyring holds the token key (then a scheduled job
        must run where that keyring is unlocked)."""
        from connector import setup as wizard
        from providers.tokens import KeyringTokenStore, default_state_dir, open_token_store

        opened: list[TokenStore] = []

        def token_store() -> TokenStore:  # opened only once there is a token to save
            opened.append(open_token_store(default_state_dir(self.config_path)))
            return opened[-1]

        result = wizard.run_setup(options, config_path=self.config_path, tokens=token_store, ask=ask, paste=paste)
        return result, any(isinstance(store, KeyringTokenStore) for store in opened)

    def mark_reauthorised(self, names: Sequence[str]) -> None:
        """The last sync flagged these as needing re-authorisation; setup just renewed it."""
        self._config = None  # setup has just rewritten the file
        with self.store() as store:
            store.mark_reauthorised(names)

    def invoices(self, today: date, *, connection: str | None, step: str | None,
                 overdue: bool) -> Iterator[BookLine]:
        """The open book with each invoice's stage and next step."""
        from connector.plan import connection_capabilities

        config = self.config
        self.check_connection(connection)
        if step is not None and step not in STEP_ORDER:
            raise UsageError(f"--step {step!r}: not a step; use one of {', '.join(STEP_ORDER)}")
        capabilities = connection_capabilities((c.name, c.provider) for c in config.connections)
        with self.store() as store:
            yield from open_book(store, config.policy, today, connection=connection, step=step, overdue=overdue,
                                 capabilities=capabilities)

    def history(self, reference: str, *, connection: str | None) -> tuple[Invoice, tuple[Event, ...]]:
        """One invoice and its whole history (events, holds, arrangements, notes, reminders with receipts)."""
        with self._invoice(reference, connection) as (store, invoice):
            return invoice, store.events(invoice.connection, invoice.platform_id)

    # --- the case book ----------------------------------------------------------------------------------------

    @contextmanager
    def _invoice(self, reference: str, connection: str | None) -> Iterator[tuple[Store, Invoice]]:
        self.check_connection(connection)  # a mistyped --connection says so, not "invoice not in the store"
        with self.store() as store:
            yield store, casebook.find_invoice(store, reference, connection)

    def hold(self, reference: str, kind: str, on: date, *, connection: str | None, until: date | None = None,
             reason: str | None = None) -> Invoice:
        with self._invoice(reference, connection) as (store, invoice):
            casebook.record_hold(store, invoice, kind, on, until=until, reason=reason)
        return invoice

    def release(self, reference: str, on: date, *, connection: str | None, reason: str | None = None) -> Invoice:
        with self._invoice(reference, connection) as (store, invoice):
            casebook.release_hold(store, invoice, on, reason=reason)
        return invoice

    def arrange(self, reference: str, instalments: Sequence[str], on: date, *, connection: str | None,
                down_payment: str | None = None, partial: bool = False) -> Invoice:
        with self._invoice(reference, connection) as (store, invoice):
            casebook.record_arrangement(store, invoice, instalments, on, down_payment=down_payment, partial=partial)
        return invoice

    def end_arrangement(self, reference: str, on: date, *, connection: str | None) -> Invoice:
        with self._invoice(reference, connection) as (store, invoice):
            casebook.end_arrangement(store, invoice, on)
        return invoice

    def note(self, reference: str, text: str, on: date, *, connection: str | None) -> tuple[Invoice, Event]:
        with self._invoice(reference, connection) as (store, invoice):
            event = casebook.record_note(store, invoice, text, on)
        return invoice, event


PLANNING_HORIZON = timedelta(days=3660)
"""How far past `--as-of` planning may count (terms, steps, ten years of interest): the calendar must reach it."""


def check_plannable(as_of: date) -> None:
    """Refuse (one line, exit 2) a date the statutory interest table or the calendar cannot cover."""
    from connector.escalation.legal import rate_table

    table = rate_table()
    first = max(table.commercial[0].start, table.consumer[0].start)
    last = date.max - PLANNING_HORIZON
    if not first <= as_of <= last:
        raise UsageError(f"--as-of {as_of}: planning covers {first} to {last} only (the statutory interest table "
                         f"starts on {first}); give a date in that range")


__all__ = ["App", "check_plannable"]
