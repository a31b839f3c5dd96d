"""`dunning demo`: the whole product in one command, with no account, no credentials and no network.

It serves the installed platform simulators on 127.0.0.1, seeds each with a realistic book (`connector.demo_book`),
connects to each through the same OAuth wizard a user goes through (the simulator plays the user at the consent
page), and then runs the daily job day by day on a virtual clock: the simulators' clocks move with the days, the
debtors pay as their story says (after a reminder, on a promised date, by instalments — or never), and a new customer
orders every week. It leaves a config, a SQLite store, the agency export folder, the letters and the HTML report in its
folder.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import tomlkit
from filelock import FileLock, Timeout

from connector.app import App
from connector.config import load_config
from connector.delivery import complete_task, open_tasks
from connector.demo_book import PAY_DELAY, SALE_EVERY, Behaviour, behaviours, new_sale, sale_behaviour
from connector.formatting import formats_for
from connector.job import RunSummary, run_job
from connector.plan import connection_capabilities
from connector.report import build_report
from connector.report.figures import DSO_DAYS, DsoPoint, days_sales_outstanding
from connector.report.texts import TEXTS, step_name
from connector.simworld import CLIENT_ID, CREDITOR, SECRET, SECRET_ENV, World
from connector.store import Store
from providers.base import TokenStore
from providers.errors import DunningError
from providers.tokens import default_state_dir, open_token_store

START = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)
"""The demo's first morning (fixed, so every demo tells the same story)."""
MARKER = ".dunning-demo"
"""Marks a folder as the demo's own: a later demo may clear it; a folder without it is never touched."""
CONFIG_NAME = "dunning.toml"
OWN = (CONFIG_NAME, "dunning.sqlite*", ".dunning-tokens", "export", "letters", "report.html")
"""What a demo writes in its folder (and a later demo clears): the store comes with its journal and lock files."""


class DemoRefused(DunningError):
    """The demo will not run in this folder (it names why)."""


@dataclass
class Payment:
    connection: str
    invoice_id: str
    on_day: int
    share: int = 1
    """Pay 1/share of what is outstanding (instalments); 1 pays the rest."""


@dataclass
class DemoResult:
    folder: Path
    start: date
    end: date
    connections: list[str]
    reminders_by_step: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    new_sales: int = 0
    """Invoices of new customers' orders booked on the platforms during the demo."""
    confirmations_mailed: int = 0
    """Written confirmations (of a promise, an arrangement) a platform's own mailing carried: in its mail log too."""
    tasks: int = 0
    letters_posted: int = 0
    cases_exported: int = 0
    failed_days: list[str] = field(default_factory=list)
    collected: Decimal = Decimal("0")
    dso_start: dict[tuple[str, str], DsoPoint] = field(default_factory=dict)
    dso_end: dict[tuple[str, str], DsoPoint] = field(default_factory=dict)
    """The report's DSO per connection and currency on the first and the last day."""
    report: Path | None = None
    world: World | None = None

    def add(self, summary: RunSummary) -> None:
        for day in summary.days:
            self.reminders_by_step.update(day.sent_by_step)
            self.sent += day.sent
            self.tasks += day.tasks
            self.cases_exported += day.cases_exported
            if day.error:
                self.failed_days.append(f"{day.as_of}: {day.error}")

    def platform_mail(self) -> dict[str, int]:
        """Mails each platform's own log shows (what the debtors received)."""
        assert self.world is not None
        return {p.connection: len(p.simulator.sent_mail()) for p in self.world.places}


# --- the folder ------------------------------------------------------------------------------------------------------


@contextmanager
def demo_folder(folder: Path) -> Iterator[Path]:
    """The folder, cleared of an earlier demo's files, held against a second demo running in it at the same time."""
    folder = folder.expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise DemoRefused(f"{folder} is a file, not a folder: choose another --dir")
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(p.name for p in folder.iterdir() if p.name != f"{MARKER}.lock")
    if found and not (folder / MARKER).exists():
        raise DemoRefused(f"{folder} is not empty and was not made by dunning demo (it holds {', '.join(found[:5])}"
                          f"{', …' if len(found) > 5 else ''}); choose an empty or new --dir")
    lock = FileLock(str(folder / f"{MARKER}.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DemoRefused(f"another dunning demo is running in {folder}; wait for it or choose another --dir") \
            from None
    try:
        for path in [own for pattern in OWN for own in folder.glob(pattern)]:  # a clean start
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        (folder / MARKER).write_text("Made by `dunning demo`; the next demo in this folder clears it.\n")
        yield folder
    finally:
        lock.release()


# --- connecting ------------------------------------------------------------------------------------------------------


def base_config() -> str:
    document = tomlkit.document()
    document.add(tomlkit.comment("Written by `dunning demo`: the simulators it ran against are gone with it."))
    document["store"] = {"url": "sqlite:///dunning.sqlite"}
    document["creditor"] = CREDITOR
    document["handoff"] = {"agency": "generic-json", "out_dir": "export"}
    return tomlkit.dumps(document)


def connect_with_wizard(world: World, config_path: Path, tokens: TokenStore) -> None:
    """Each connection through `dunning setup`'s own code path, the simulator consenting in place of the user."""
    from connector.setup import SetupOptions, run_setup

    for place in world.places:
        urls = place.simulator.connection_urls(place.base_url or "")
        options = SetupOptions(provider=place.platform, name=place.connection, client_id=CLIENT_ID,
                               client_secret_env=SECRET_ENV, redirect_uri=place.redirect_uri,
                               tenants=(place.seeded.tenant,), api_url=urls.get("api_url"),
                               authorize_url=urls.get("authorize_url"), token_url=urls.get("token_url"), timeout=30)
        run_setup(options, config_path=config_path, tokens=tokens, ask=None, say=lambda _text: None,
                  open_browser=place.simulator.browser(), clock=world.clock.time, environ={SECRET_ENV: SECRET})


# --- the story -------------------------------------------------------------------------------------------------------


class Story:
    """The debtors' side: who pays when, and the agreements the bookkeeper records."""

    def __init__(self, world: World, start: date) -> None:
        self.world, self.start = world, start
        self.behaviour: dict[tuple[str, str], Behaviour] = {}
        self.planned: list[Payment] = []
        self.convinced: set[tuple[str, str]] = set()
        for place in world.places:
            for key, behaviour in behaviours(place.index).items():
                if key in place.seeded.invoices:
                    self._expect(place.connection, place.seeded.invoices[key], behaviour)

    def _expect(self, connection: str, invoice_id: str, behaviour: Behaviour) -> None:
        """Note how the debtor will behave about the invoice, and plan the payments that fall on a known day."""
        self.behaviour[(connection, invoice_id)] = behaviour
        if behaviour.pays_on_day is not None:
            self.planned.append(Payment(connection, invoice_id, behaviour.pays_on_day))
        if behaviour.promise_day is not None:
            self.planned.append(Payment(connection, invoice_id, behaviour.promise_day))
        days = behaviour.instalment_days
        self.planned += [Payment(connection, invoice_id, day, share=len(days) - n) for n, day in enumerate(days)]

    def sell(self, offset: int, today: date) -> int:
        """Today's order by a new customer, invoiced on each platform (before the morning's run, which syncs it in);
        returns how many invoices were booked."""
        booked = 0
        for place in self.world.places:
            book = new_sale(place.index, offset, today)
            if book is None:
                continue
            for invoice_id in place.simulator.seed(book).invoices.values():
                self._expect(place.connection, invoice_id, sale_behaviour(offset))
                booked += 1
        return booked

    def pay(self, offset: int, store: Store) -> Decimal:
        """Today's payments reach the platforms (before the morning's run); returns how much came in."""
        collected = Decimal("0")
        for payment in [p for p in self.planned if p.on_day == offset]:
            invoice = store.invoice(payment.connection, payment.invoice_id)
            if invoice is None or not invoice.is_open or invoice.outstanding <= 0:
                continue
            amount = invoice.outstanding if payment.share == 1 else (invoice.outstanding / payment.share).quantize(
                Decimal("0.01"))
            self.world.place(payment.connection).simulator.record_payment(
                payment.invoice_id, None if payment.share == 1 else amount)
            collected += amount
        return collected

    def agree(self, app: App, today: date) -> None:
        """What the debtors said after the first reminders: a dispute, a promise, an arrangement."""
        for (connection, invoice_id), behaviour in self.behaviour.items():
            if behaviour.dispute:
                app.hold(invoice_id, "dispute", today, connection=connection,
                         reason="the debtor says the work was not finished")
            if behaviour.promise_day is not None:
                app.hold(invoice_id, "promise", today, connection=connection,
                         until=self.start + timedelta(days=behaviour.promise_day))
            if behaviour.instalment_days:
                with app.store() as store:
                    invoice = store.invoice(connection, invoice_id)
                assert invoice is not None
                count = len(behaviour.instalment_days)
                part = (invoice.outstanding / count).quantize(Decimal("0.01"))
                amounts = [part] * (count - 1) + [invoice.outstanding - part * (count - 1)]
                app.arrange(invoice_id, [f"{self.start + timedelta(days=day)}:{amount}"
                                         for day, amount in zip(behaviour.instalment_days, amounts, strict=True)],
                            today, connection=connection)

    def post_letters(self, store: Store, today: date) -> int:
        """The bookkeeper posts the day's letters (notices of default the platform cannot carry) and says so, as
        `dunning task done ID` does: the letter counts as sent today. Calls stay on the task list."""
        letters = [task for task in open_tasks(store) if task.kind == "letter"]
        for task in letters:
            complete_task(store, task.id, on=today, note="posted by the bookkeeper")
        return len(letters)

    def read_mail(self, offset: int) -> None:
        """Debtors who pay after their k-th reminder arrange the payment once that many have reached them."""
        for (connection, invoice_id), behaviour in self.behaviour.items():
            needed = behaviour.pays_after_reminders
            if needed is None or (connection, invoice_id) in self.convinced:
                continue
            mails = [m for m in self.world.place(connection).simulator.sent_mail() if invoice_id in m.invoice_ids]
            if len(mails) >= needed:
                self.convinced.add((connection, invoice_id))
                self.planned.append(Payment(connection, invoice_id, offset + PAY_DELAY))


# --- the run ---------------------------------------------------------------------------------------------------------


def run_demo(folder: Path, *, days: int = 90, on_day: Callable[[int, int], None] | None = None) -> DemoResult:
    """The demo in `folder` over `days` simulated days; `on_day(done, days)` after each (a progress display)."""
    with demo_folder(folder) as folder:
        start = START
        world = World.build(start)
        config_path = folder / CONFIG_NAME
        config_path.write_text(base_config())
        result = DemoResult(folder=folder, start=start.date(), end=start.date() + timedelta(days=days - 1),
                            connections=[p.connection for p in world.places], world=world)
        previous_secret = os.environ.get(SECRET_ENV)
        os.environ[SECRET_ENV] = SECRET  # the demo apps' secret, as a scheduler's environment would hold it
        try:
            with world.serving():
                tokens = open_token_store(default_state_dir(config_path), backend="file")
                connect_with_wizard(world, config_path, tokens)
                config = load_config(config_path)
                app = App(config_path, now=world.clock.now)
                story = Story(world, start.date())
                connect = world.connect(tokens, in_process=False)
                with Store.open(config.store_url, clock=world.clock.now) as store:
                    for offset in range(days):
                        today = start.date() + timedelta(days=offset)
                        world.advance_to(datetime.combine(today, time(7), UTC))
                        result.new_sales += story.sell(offset, today)
                        result.collected += story.pay(offset, store)
                        result.add(run_job(config, store, tokens, as_of=today, connect=connect))
                        if offset == 0:
                            result.dso_start = days_sales_outstanding(store.iter_invoice_records(), today)
                            story.agree(app, today)
                        result.letters_posted += story.post_letters(store, today)
                        story.read_mail(offset)
                        if on_day is not None:
                            on_day(offset + 1, days)
                    result.dso_end = days_sales_outstanding(store.iter_invoice_records(), result.end)
                    result.confirmations_mailed = sum(
                        1 for entry in store.outbox_rows(status=["sent"], kind=["confirmation"])
                        if (entry.receipt or {}).get("channel") == "platform_mail")
                    result.report = folder / "report.html"
                    build_report(store, config.policy, result.end, result.report, store_url=config.store_url,
                                 made_at=world.clock.now(), lang="en",
                                 capabilities=connection_capabilities((c.name, c.provider) for c in config.connections))
        finally:
            if previous_secret is None:
                os.environ.pop(SECRET_ENV, None)
            else:
                os.environ[SECRET_ENV] = previous_secret
        return result


STEP_ORDER = ("pre_due", "reminder_1", "reminder_2", "written_reminder", "final_reminder", "notice_of_default",
              "consumer_14_day_letter")


def _dso_change(result: DemoResult) -> list[str]:
    """Per connection (and currency, where it has several): the DSO on the first and on the last day."""
    currencies = Counter(connection for connection, _currency in result.dso_start | result.dso_end)

    def shown(point: DsoPoint | None) -> str:
        return f"none (no sales in the {DSO_DAYS} days)" if point is None or point.dso is None else str(point.dso)

    changes = []
    for key in sorted(result.dso_start | result.dso_end):
        connection, currency = key
        name = f"{connection} {currency}" if currencies[connection] > 1 else connection
        changes.append(f"{name} {shown(result.dso_start.get(key))} → {shown(result.dso_end.get(key))}")
    return changes


def describe(result: DemoResult, lang: str | None = None) -> list[str]:
    """What happened, for a person: reminders per step, tasks, letters, cases, money, DSO, and where things are;
    money and days in `lang` (default: the demo creditor's language; the DSO figures as the report records them)."""
    formats = formats_for(lang, CREDITOR["country"])
    start, end = formats.date(result.start), formats.date(result.end)
    steps = sorted(result.reminders_by_step.items(), key=lambda item: (
        STEP_ORDER.index(item[0]) if item[0] in STEP_ORDER else len(STEP_ORDER), item[0]))
    mail = result.platform_mail()
    lines = [
        f"Dunning Connector demo: {len(result.connections)} administrations ({', '.join(result.connections)}), "
        f"{start} to {end} ({(result.end - result.start).days + 1} days)",
        f"Reminders sent: {result.sent} — "
        + (", ".join(f"{step_name(TEXTS['en'], step)}: {count}" for step, count in steps) or "none"),
        f"Mails in the platforms' own logs: {sum(mail.values())} — "
        + ", ".join(f"{name} {count}" for name, count in mail.items())
        + (f" (the reminders and {result.confirmations_mailed} written confirmation"
           f"{'s' if result.confirmations_mailed > 1 else ''} of a promise or an arrangement)"
           if result.confirmations_mailed else ""),
        f"Tasks created: {result.tasks} (calls, letters, reminders a platform refused); letters posted by the "
        f"bookkeeper: {result.letters_posted} (notices of default and written confirmations)",
        f"Cases handed off to the collection agency: {result.cases_exported}",
        f"New orders invoiced on the platforms: {result.new_sales} (a new customer every {SALE_EVERY} days in each "
        f"administration)",
        f"Money collected: {formats.money(result.collected, 'EUR')}",
        f"Days sales outstanding, as in the report (receivables ÷ sales of the {DSO_DAYS} days up to the day × "
        f"{DSO_DAYS}), on {start} → {end}: " + "; ".join(_dso_change(result)),
    ]
    lines += [f"Problem on {problem}" for problem in result.failed_days]
    folder = result.folder
    left = [f"{folder / CONFIG_NAME} (config)", f"{folder / 'dunning.sqlite'} (store)"]
    left += [f"{folder / name} ({what})" for name, what in (("export", "agency exports"), ("letters", "letters"))
             if (folder / name).exists()]
    if result.report is not None:
        left.append(f"{result.report} (report)")
    lines.append("Left in " + str(folder) + ": " + "; ".join(left))
    lines.append(f"Look around: dunning --config {folder / CONFIG_NAME} status (or tasks, cases, history INVOICE; "
                 f"report --as-of {result.end}: the store stops on the demo's last day)")
    return lines
