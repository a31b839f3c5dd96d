"""`dunning plan` for people: a compact table sorted by connection, debtor and step, every value whole at 80
columns and when piped, per-step and per-currency totals, short reasons (full with --verbose), Dutch formats."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.formatting import formats_for
from connector.cli.output import Column, render
from connector.store import Store
from providers.base import SyncPage

from ..conftest import make_debtor, make_invoice

AS_OF = "2026-10-20"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    db = tmp_path / "store.sqlite"
    with Store.open(f"sqlite:///{db}") as store:
        store.ensure_connection("acme", "moneybird", "T1")
        debtors = (make_debtor("D1", name="Zuidas Logistiek en Transport B.V."), make_debtor("D2", name="Abel B.V."))
        invoices = (
            make_invoice("I1", debtor_id="D1", number="INV-2026-000123", total=Decimal("4405.44"),
                         outstanding=Decimal("4405.44"), due_date=date(2026, 10, 5)),
            make_invoice("I2", debtor_id="D2", number="INV-2026-000124", currency="USD", due_date=date(2026, 10, 5)),
        )
        store.write_sync_page("acme", SyncPage(debtors=debtors, invoices=invoices))
    path = tmp_path / "dunning.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{db}"\n\n[[connections]]\nname = "acme"\nprovider = "moneybird"\n'
                    'tenant = "T1"\nclient_id = "abc"\n', encoding="utf-8")
    return path


def plan(config: Path, *args: str, columns: int = 80):
    result = CliRunner().invoke(app, ["--config", str(config), "plan", "--as-of", AS_OF, *args],
                                env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_piped_at_80_columns_every_value_is_whole_and_rows_are_sorted_by_debtor(config: Path) -> None:
    out = plan(config, "--lang", "en")
    for value in ("INV-2026-000123", "INV-2026-000124", "Zuidas Logistiek en Transport B.V.", "€4,405.44",
                  "US$1,210.00", "20 October 2026", "reminder_1"):
        assert value in out, value
    rows = [line for line in out.splitlines() if line.startswith("acme")]
    assert [("Abel" in rows[0]), ("Zuidas" in rows[1])] == [True, True]  # by debtor name, not by id
    assert "…" not in out


def test_short_reasons_by_default_and_the_full_reason_with_verbose(config: Path) -> None:
    short = plan(config)
    assert "15 d overdue" in short and "after the due date" not in short
    full = plan(config, "--verbose", "--lang", "nl")
    actions = [json.loads(line) for line in plan(config, "--json").splitlines()]
    # the full reason, its amounts and days as the table's own columns write them (--json keeps the neutral form)
    assert all(formats_for("nl").text(action["reason"]) in full for action in actions)
    assert "after the due date 5 oktober 2026, € 4.405,44 outstanding" in full
    assert any("after the due date 2026-" in action["reason"] for action in actions)


def test_totals_per_step_and_per_currency(config: Path) -> None:
    out = plan(config, "--lang", "en")
    per_step = out.split("Totals per step")[1].split("Totals per currency")[0]
    assert "reminder_1" in per_step and "€4,405.44" in per_step and "US$1,210.00" in per_step
    per_currency = out.split("Totals per currency")[1].splitlines()
    assert any(line.startswith("EUR") and "€4,405.44" in line for line in per_currency)
    assert any(line.startswith("USD") and "US$1,210.00" in line for line in per_currency)


def test_dutch_amounts_and_dates(config: Path) -> None:
    out = plan(config, "--lang", "nl")
    assert "€ 4.405,44" in out and "20 oktober 2026" in out


def test_a_dutch_creditor_reads_dutch_by_default_and_ui_lang_overrides_it(config: Path) -> None:
    text = config.read_text()
    config.write_text(text + '\n[creditor]\nname = "Acme B.V."\ncountry = "NL"\n', encoding="utf-8")
    assert "€ 4.405,44" in plan(config)
    config.write_text(text + '\n[creditor]\nname = "Acme B.V."\ncountry = "NL"\n\n[ui]\nlang = "en"\n',
                      encoding="utf-8")
    assert "€4,405.44" in plan(config)


def test_tsv_is_one_header_and_one_line_per_action(config: Path) -> None:
    lines = plan(config, "--tsv").splitlines()
    assert lines[0].split("\t")[:3] == ["connection", "debtor", "invoices"]
    assert len(lines) == 3 and all(len(line.split("\t")) == 9 for line in lines)


def test_on_a_narrow_terminal_only_the_last_column_wraps() -> None:
    reason = "reminder_1: 15 days after the due date 2026-10-05, EUR 4,405.44 outstanding"
    lines = list(render([Column("invoice"), Column("amount", right=True), Column("reason")],
                        [["INV-2026-000123", "€ 4.405,44", reason]], width=60))
    assert lines[1].startswith("INV-2026-000123  € 4.405,44  ")
    assert all(len(line) <= 60 for line in lines) and len(lines) > 2
    assert " ".join(part.strip() for part in lines[1:]).endswith(reason.split()[-1])
    assert "".join(lines[1:]).replace(" ", "").endswith(reason.replace(" ", "")[-20:])


def test_a_warning_is_shown_once_per_connection_not_once_per_action(config: Path) -> None:
    from connector.models import Event, EventKind

    with Store.open(f"sqlite:///{config.parent / 'store.sqlite'}") as store:
        for invoice in ("I1", "I2"):  # both stand before the notice of default, which states interest
            for step, day in (("reminder_1", 6), ("reminder_2", 13), ("final_reminder", 20), ("written_reminder", 30)):
                store.append_event("acme", invoice, Event(kind=EventKind.REMINDER_SENT, on=date(2026, 10, day),
                                                          step=step))
    result = CliRunner().invoke(app, ["--config", str(config), "plan", "--as-of", "2031-06-01"])
    assert result.exit_code == 0, result.output
    actions = [json.loads(line) for line in plan_json(config, "2031-06-01")]
    warnings = {w for action in actions for w in action["warnings"]}
    assert warnings, "the far future lies past the interest table's sure half-year"
    lines = [line for line in result.stderr.splitlines() if ": warning: " in line]
    assert len(lines) == len(warnings) and all(line.startswith("acme: warning: ") for line in lines)
    assert all(line.count("acme") == 1 for line in lines)


def plan_json(config: Path, day: str) -> list[str]:
    return CliRunner().invoke(app, ["--config", str(config), "plan", "--as-of", day, "--json"]).stdout.splitlines()


def test_on_a_terminal_too_narrow_for_the_columns_each_row_wraps_between_values() -> None:
    columns = [Column("debtor"), Column("invoices"), Column("step"), Column("due"), Column("outstanding", right=True),
               Column("reason")]
    row = ["Zuidas Logistiek en Transport B.V.", "INV-2026-000123", "final_reminder", "20 oktober 2026",
           "€ 4.405,44", "22 d overdue"]
    lines = list(render(columns, [row], width=60))
    assert lines[0] == "debtor  invoices  step  due  outstanding  reason"
    assert all(len(line) <= 60 for line in lines)
    text = "  ".join(line.strip() for line in lines[1:])
    assert text == "  ".join(row)  # every value whole, in column order
