"""`dunning invoices` (the open book with stage and next step) and `dunning history INVOICE` (events, holds,
arrangements, notes, reminders with receipts): what a bookkeeper asks first, without opening the database."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.models import Event, EventKind
from connector.store import Store
from providers.base import SyncPage

from ..conftest import make_debtor, make_invoice


@pytest.fixture
def config(tmp_path: Path) -> Path:
    db = tmp_path / "store.sqlite"
    with Store.open(f"sqlite:///{db}") as store:
        store.ensure_connection("acme", "moneybird", "T1")
        store.write_sync_page("acme", SyncPage(
            debtors=(make_debtor("D1", name="Bakkerij Jansen"), make_debtor("D2", name="Atelier Bos")),
            invoices=(
                make_invoice("I1", debtor_id="D1", due_date=date(2026, 9, 1)),
                make_invoice("I2", debtor_id="D2", due_date=date(2026, 12, 1)),  # not due yet
                make_invoice("I3", debtor_id="D2", due_date=date(2026, 10, 1)),
            ),
        ))
        store.append_event("acme", "I1", Event(kind=EventKind.REMINDER_SENT, on=date(2026, 9, 8), step="reminder_1",
                                               data={"recipients": ["debiteuren@jansen.example"], "channel": "email",
                                                     "detail": "sent by Moneybird", "platform_reference": "M-77"}))
        store.append_event("acme", "I1", Event(kind=EventKind.NOTE, on=date(2026, 9, 20),
                                               data={"text": "belt terug na de 25e"}))
        store.append_event("acme", "I3", Event(kind=EventKind.HOLD_SET, on=date(2026, 10, 2),
                                               data={"hold": "dispute", "reason": "wrong price"}))
    path = tmp_path / "dunning.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{db}"\n\n[[connections]]\nname = "acme"\nprovider = "moneybird"\n'
                    'tenant = "T1"\nclient_id = "abc"\n', encoding="utf-8")
    return path


def cli(config: Path, *args: str):
    result = CliRunner().invoke(app, ["--config", str(config), *args], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_invoices_json_gives_each_open_invoice_its_stage_and_next_step(config: Path) -> None:
    rows = {row["number"]: row for row in map(json.loads, cli(config, "invoices", "--as-of", "2026-10-20",
                                                               "--json").splitlines())}
    assert set(rows) == {"2026-I1", "2026-I2", "2026-I3"}
    i1 = rows["2026-I1"]
    assert (i1["stage"], i1["stage_on"], i1["days_overdue"], i1["debtor_name"]) == (
        "reminder_1", "2026-09-08", 49, "Bakkerij Jansen")
    assert i1["next_step"] not in (None, "reminder_1")
    assert rows["2026-I3"]["hold"] is not None and rows["2026-I2"]["stage"] is None


def test_invoices_filters_by_stage_overdue_and_connection(config: Path) -> None:
    at_reminder_1 = cli(config, "invoices", "--as-of", "2026-10-20", "--step", "reminder_1", "--json").splitlines()
    assert [json.loads(line)["number"] for line in at_reminder_1] == ["2026-I1"]
    overdue = cli(config, "invoices", "--as-of", "2026-10-20", "--overdue", "--json").splitlines()
    assert sorted(json.loads(line)["number"] for line in overdue) == ["2026-I1", "2026-I3"]
    result = CliRunner().invoke(app, ["--config", str(config), "invoices", "--connection", "nope"])
    assert result.exit_code == 2


def test_invoices_table_keeps_every_value_at_80_columns(config: Path) -> None:
    out = cli(config, "invoices", "--as-of", "2026-10-20", "--lang", "nl")
    for value in ("2026-I1", "Bakkerij Jansen", "€ 1.210,00", "1 september 2026", "reminder_1", "on hold"):
        assert value in out, value


def test_history_shows_events_with_the_reminders_receipt(config: Path) -> None:
    out = cli(config, "history", "2026-I1", "--lang", "en")
    assert "invoice 2026-I1 (acme): €1,210.00 outstanding" in out
    assert "reminder_sent" in out and "debiteuren@jansen.example" in out and "platform reference M-77" in out
    assert "belt terug na de 25e" in out
    events = [json.loads(line) for line in cli(config, "history", "2026-I1", "--json").splitlines()]
    assert [e["kind"] for e in events] == ["reminder_sent", "note"]
    assert events[0]["data"]["platform_reference"] == "M-77" and events[0]["on"] == "2026-09-08"


def test_history_shows_a_promise_the_platform_records_as_such(tmp_path: Path) -> None:
    db = tmp_path / "store.sqlite"
    with Store.open(f"sqlite:///{db}") as store:
        store.ensure_connection("acme", "xero", "T1")
        store.write_sync_page("acme", SyncPage(debtors=(make_debtor("D1"),), invoices=(
            make_invoice("I1", promised_payment_date=date(2026, 12, 20)),)))
    path = tmp_path / "dunning.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{db}"\n\n[[connections]]\nname = "acme"\nprovider = "xero"\n'
                    'tenant = "T1"\nclient_id = "abc"\n', encoding="utf-8")
    out = cli(path, "history", "2026-I1", "--lang", "en")
    assert "hold_set" in out and "promise; until 20 December 2026; as the platform records it" in out


def test_history_of_an_unknown_invoice_is_one_line_and_exit_2(config: Path) -> None:
    result = CliRunner().invoke(app, ["--config", str(config), "history", "NOPE"])
    assert result.exit_code == 2 and "invoice NOPE: not in the store" in result.stderr
    wrong = CliRunner().invoke(app, ["--config", str(config), "history", "2026-I1", "--connection", "acme2"])
    assert wrong.exit_code == 2 and wrong.stderr.startswith("--connection: no connection named 'acme2' (known: acme)")


def test_a_credit_note_in_the_open_book_has_no_next_step_and_lowers_the_total(tmp_path: Path) -> None:
    from decimal import Decimal

    from connector.book import open_book, totals
    from connector.config import Policy

    with Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}") as store:
        store.ensure_connection("acme", "exact", "1")
        store.write_sync_page("acme", SyncPage(
            debtors=(make_debtor("D1", name="Thames Print Ltd"),),
            invoices=(make_invoice("I1", due_date=date(2026, 9, 1)),
                      make_invoice("C1", due_date=date(2026, 9, 1), total=Decimal("121.00"),
                                   outstanding=Decimal("121.00"), is_credit_note=True)),
        ))
        lines = {line.invoice.platform_id: line for line in open_book(store, Policy(), date(2026, 12, 4))}
    assert lines["C1"].next_step is None and lines["I1"].next_step is not None
    assert totals(list(lines.values())) == {"EUR": Decimal("1089.00")}
