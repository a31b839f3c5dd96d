"""The planning driver on a real store: streaming per debtor, consolidation, one mail per debtor, events."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connector.escalation.policy import Channel, Policy
from connector.models import Event, EventKind
from connector.plan import plan
from connector.store import Store
from providers.base import Capabilities, SyncPage

from ..conftest import make_debtor, make_invoice

DUE = date(2026, 10, 1)
CONSOLIDATING = Capabilities(native_reminder=True, custom_message=True, consolidated_reminders=True)
SINGLE = Capabilities(native_reminder=True, custom_message=False, consolidated_reminders=False)


@pytest.fixture
def store(store_url: str) -> Store:
    store = Store.open(store_url)
    store.ensure_connection("acme", "fake", "T1")
    store.write_sync_page(
        "acme",
        SyncPage(
            debtors=(make_debtor("D1"), make_debtor("D2", kind="consumer", language="en")),
            invoices=(
                make_invoice("I1", debtor_id="D1", due_date=DUE),
                make_invoice("I2", debtor_id="D1", due_date=DUE, total=Decimal(500), outstanding=Decimal(500)),
                make_invoice("I3", debtor_id="D2", issue_date=DUE, due_date=DUE + timedelta(days=3)),  # no pre_due
                make_invoice("I4", debtor_id="D1", due_date=DUE, is_open=False, status="PAID"),
            ),
        ),
    )
    yield store
    store.close()


def test_invoices_of_one_debtor_due_on_one_day_become_one_reminder_where_the_platform_allows(store: Store) -> None:
    actions = list(plan(store, Policy(), DUE + timedelta(days=1), capabilities={"acme": CONSOLIDATING}))
    assert [(a.debtor_id, a.step, a.invoice_ids) for a in actions] == [("D1", "reminder_1", ("I1", "I2"))]
    assert actions[0].outstanding == Decimal("1710.00")
    assert actions[0].as_json()["invoice_numbers"] == ["2026-I1", "2026-I2"]


def test_without_consolidation_each_invoice_due_gets_its_own_mail_that_day_and_the_gap_counts_between_days(
    store: Store,
) -> None:
    # domain.md: mails due the same day go out that day, one per invoice where the platform cannot consolidate
    actions = list(plan(store, Policy(), DUE + timedelta(days=1), capabilities={"acme": SINGLE}))
    assert [(a.debtor_id, a.invoice_ids) for a in actions] == [("D1", ("I1",)), ("D1", ("I2",))]
    store.append_event("acme", "I1", Event(kind=EventKind.REMINDER_SENT, on=DUE + timedelta(days=1), step="reminder_1"))
    # the same day stays a mail day: the other invoice's reminder still goes out today
    same_day = list(plan(store, Policy(), DUE + timedelta(days=1), capabilities={"acme": SINGLE}))
    assert [(a.debtor_id, a.invoice_ids) for a in same_day] == [("D1", ("I2",))]
    store.append_event("acme", "I2", Event(kind=EventKind.REMINDER_SENT, on=DUE + timedelta(days=1), step="reminder_1"))
    assert list(plan(store, Policy(), DUE + timedelta(days=3), capabilities={"acme": SINGLE})) == []
    later = list(plan(store, Policy(), DUE + timedelta(days=4), capabilities={"acme": SINGLE}))
    assert [(a.debtor_id, a.step, a.invoice_ids) for a in later] == [("D2", "reminder_1", ("I3",))]


def test_a_recorded_step_is_never_planned_again(store: Store) -> None:
    today = DUE + timedelta(days=1)
    for action in plan(store, Policy(), today, capabilities={"acme": CONSOLIDATING}):
        for invoice_id in action.invoice_ids:
            store.append_event("acme", invoice_id, Event(kind=EventKind.REMINDER_SENT, on=today, step=action.step))
    assert list(plan(store, Policy(), today, capabilities={"acme": CONSOLIDATING})) == []


def test_call_tasks_are_one_per_debtor_with_every_invoice(store: Store) -> None:
    for invoice_id in ("I1", "I2"):
        store.append_event("acme", invoice_id, Event(kind=EventKind.REMINDER_SENT, on=DUE + timedelta(days=1),
                                                     step="reminder_1"))
    actions = list(plan(store, Policy(), DUE + timedelta(days=16), connection="acme", capabilities={"acme": SINGLE}))
    calls = [a for a in actions if a.channel is Channel.CALL_TASK]
    assert [(a.debtor_id, a.invoice_ids) for a in calls] == [("D1", ("I1", "I2"))]


def test_plan_json_has_the_contract_fields(store: Store) -> None:
    action = next(plan(store, Policy(), DUE + timedelta(days=4)))
    assert {"connection", "debtor", "invoices", "invoice_numbers", "step", "channel", "due_on", "outstanding",
            "currency", "reason"} <= action.as_json().keys()


def test_consolidated_notice_costs_are_on_one_principal(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    store.ensure_connection("acme", "fake", "T1")
    store.write_sync_page("acme", SyncPage(debtors=(make_debtor("D1"),), invoices=(
        make_invoice("A", debtor_id="D1", due_date=DUE, total=Decimal(200), outstanding=Decimal(200)),
        make_invoice("B", debtor_id="D1", due_date=DUE, total=Decimal(300), outstanding=Decimal(300)),
    )))
    for invoice_id in ("A", "B"):
        store.append_event("acme", invoice_id, Event(kind=EventKind.REMINDER_SENT, on=DUE + timedelta(days=30),
                                                     step="written_reminder"))
    (one,) = plan(store, Policy(), DUE + timedelta(days=45), capabilities={"acme": CONSOLIDATING})
    assert one.step == "notice_of_default" and one.costs == Decimal("75.00")  # 15 % of 500, not 40 + 45
    separate = Policy.model_validate({"consolidate_principal": False})
    (two,) = plan(store, separate, DUE + timedelta(days=45), capabilities={"acme": CONSOLIDATING})
    assert two.costs == Decimal("85.00")  # max(40, 30) + 45
    store.close()


def test_a_mail_about_an_invoice_closed_since_still_counts_for_the_gap(store: Store) -> None:
    for invoice_id in ("I1", "I2"):
        store.append_event("acme", invoice_id, Event(kind=EventKind.REMINDER_SENT, on=DUE + timedelta(days=1),
                                                     step="reminder_1"))
    store.append_event("acme", "I1", Event(kind=EventKind.REMINDER_SENT, on=DUE + timedelta(days=4), step="reminder_2"))
    store.write_sync_page("acme", SyncPage(closed_invoice_ids=("I1",)))  # paid the next day
    assert store.recent_mails(DUE, "acme") == {("acme", "D1"): DUE + timedelta(days=4)}
    # I2's second reminder falls due on day 6, within the 3-day gap after the mail about I1 on day 4
    steps = {a.debtor_id: a.invoice_ids for a in plan(store, Policy(), DUE + timedelta(days=6),
                                                       capabilities={"acme": SINGLE})}
    assert "D1" not in steps
    steps = {a.debtor_id: a.invoice_ids for a in plan(store, Policy(), DUE + timedelta(days=7),
                                                       capabilities={"acme": SINGLE})}
    assert steps["D1"] == ("I2",)


# --- the CLI: dunning plan / hold / arrange / note ------------------------------------------------------------------


@pytest.fixture
def cli_config(tmp_path: Path) -> Path:
    db = tmp_path / "store.sqlite"
    store = Store.open(f"sqlite:///{db}")
    store.ensure_connection("acme", "moneybird", "T1")
    store.write_sync_page("acme", SyncPage(
        debtors=(make_debtor("D1"),),
        invoices=(make_invoice("I1", debtor_id="D1", due_date=DUE), make_invoice("I2", debtor_id="D1", due_date=DUE)),
    ))
    store.close()
    config = tmp_path / "dunning.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{db}"\n\n[[connections]]\nname = "acme"\nprovider = "moneybird"\n'
        'tenant = "T1"\nclient_id = "abc"\n\n[policy]\nmin_gap_days = 3\n',
        encoding="utf-8",
    )
    return config


def _cli(config: Path, *args: str):
    from typer.testing import CliRunner

    from connector.cli import app

    return CliRunner().invoke(app, ["--config", str(config), *args], env={"COLUMNS": "250"})


def test_plan_json_prints_one_object_per_action_and_nothing_else(cli_config: Path) -> None:
    import json

    result = _cli(cli_config, "plan", "--as-of", "2026-10-02", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) >= 1 and all(line["step"] == "reminder_1" for line in lines)
    assert {i for line in lines for i in line["invoices"]} <= {"I1", "I2"}
    table = _cli(cli_config, "plan", "--as-of", "2026-10-02")
    assert table.exit_code == 0 and "reminder_1" in table.stdout


def test_hold_arrange_and_note_write_events_the_planner_obeys(cli_config: Path) -> None:
    assert _cli(cli_config, "hold", "2026-I1", "--dispute", "--reason", "wrong price", "--as-of", "2026-10-01").exit_code == 0
    assert _cli(cli_config, "arrange", "2026-I2", "--down-payment", "2026-10-01:210", "--instalment",
                "2026-11-01:1000.00", "--as-of", "2026-10-01").exit_code == 0
    assert _cli(cli_config, "note", "2026-I2", "Promised to pay in instalments", "--as-of", "2026-10-01").exit_code == 0
    result = _cli(cli_config, "plan", "--as-of", "2026-10-02", "--json")
    assert result.exit_code == 0 and result.stdout.strip() == ""  # both paused (the down payment's grace runs)
    store = Store.open(f"sqlite:///{cli_config.parent / 'store.sqlite'}")
    kinds = [e.kind for e in store.events("acme", "I2")]
    store.close()
    assert EventKind.ARRANGEMENT_SET in kinds and EventKind.NOTE in kinds
    assert _cli(cli_config, "hold", "2026-I1", "--release", "--as-of", "2026-10-05").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("hold", "NOPE", "--dispute"),
        ("hold", "2026-I1"),
        ("hold", "2026-I1", "--dispute", "--exclude"),
        ("arrange", "2026-I1", "--instalment", "tomorrow:12"),
        ("arrange", "2026-I1", "--end", "--instalment", "2026-11-01:10"),
        ("plan", "--connection", "other"),
    ],
)
def test_bad_requests_are_usage_errors_with_exit_2(cli_config: Path, args: tuple[str, ...]) -> None:
    result = _cli(cli_config, *args)
    assert result.exit_code == 2, result.output


def test_a_call_task_carries_the_debtors_dossier(store: Store) -> None:
    for invoice_id in ("I1", "I2"):
        store.append_event("acme", invoice_id, Event(kind=EventKind.REMINDER_SENT, on=DUE + timedelta(days=1),
                                                     step="reminder_1"))
    store.append_event("acme", "I1", Event(kind=EventKind.NOTE, on=DUE + timedelta(days=3),
                                           data={"text": "says the bank made a mistake"}))
    (call,) = [a for a in plan(store, Policy(), DUE + timedelta(days=16)) if a.channel is Channel.CALL_TASK]
    assert call.dossier[0] == "2 open invoice(s), EUR 1,710.00 in total"
    assert any("says the bank made a mistake" in line for line in call.dossier)
    assert any(line.startswith("invoice 2026-I2: EUR 500.00") for line in call.dossier)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7])
def test_streaming_pages_through_every_open_invoice_once_in_debtor_order(store_url: str, batch_size: int) -> None:
    store = Store.open(store_url)
    for name in ("acme", "beta"):
        store.ensure_connection(name, "fake", "T1")
        store.write_sync_page(name, SyncPage(
            debtors=tuple(make_debtor(f"D{d}", connection=name) for d in range(3)),
            invoices=tuple(make_invoice(f"{name}-{n}", connection=name, debtor_id=f"D{n % 3}") for n in range(7)),
        ))
    everything = [(i.connection, i.debtor_id, i.platform_id) for i, _, _ in store.iter_open_invoices(batch_size=batch_size)]
    assert len(everything) == len(set(everything)) == 14
    assert [row[:2] for row in everything] == sorted(row[:2] for row in everything)
    beta = [i.platform_id for i, _, _ in store.iter_open_invoices("beta", batch_size=batch_size)]
    assert sorted(beta) == sorted(f"beta-{n}" for n in range(7)) and len(beta) == 7
    store.close()


def _days_of_steps(store_url: str, name: str, clears_on: int | None) -> list[tuple[str, int]]:
    """Sync an invoice whose platform promises payment by D+40 (seen at D-5), plan and carry out every day to D+90;
    the platform clears its lapsed promised date on D+`clears_on` (None: never). → (step, day) taken."""
    today = [DUE - timedelta(days=5)]
    with Store.open(store_url, clock=lambda: datetime.combine(today[0], time(7), UTC)) as store:
        store.ensure_connection(name, "fake", "T1")
        promised = make_invoice("P1", connection=name, promised_payment_date=DUE + timedelta(days=40))
        store.write_sync_page(name, SyncPage(debtors=(make_debtor("D1", connection=name),), invoices=(promised,)))
        taken: list[tuple[str, int]] = []
        for offset in range(-5, 91):
            today[0] = DUE + timedelta(days=offset)
            if offset == clears_on:
                cleared = promised.model_copy(update={"promised_payment_date": None, "version": "2"})
                store.write_sync_page(name, SyncPage(invoices=(cleared,)))
            for action in plan(store, Policy(), today[0], connection=name, capabilities={name: CONSOLIDATING}):
                kind = EventKind.REMINDER_SENT if action.is_mail else EventKind.TASK_CREATED
                store.append_event(name, "P1", Event(kind=kind, on=today[0], step=action.step.value))
                taken.append((action.step.value, offset))
        return taken


def test_a_lapsed_platform_promise_the_platform_clears_later_still_shifts_the_schedule(store_url: str) -> None:
    # domain.md: the time a promise held shifts the later steps, wherever it comes from; when it lapses, escalation
    # resumes where it stood. The platform clearing its lapsed promised date afterwards must not undo that shift
    # (a catch-up jump over the steps the promise postponed).
    kept = _days_of_steps(store_url, "kept", clears_on=None)
    cleared = _days_of_steps(store_url, "cleared", clears_on=44)

    assert kept[:2] == [("reminder_1", 45), ("reminder_2", 50)]  # held D..D+43 (3 days' grace): shifted 44 days
    assert cleared == kept
