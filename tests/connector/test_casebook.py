"""The case book from the command line: hold, arrange and note refuse what cannot be meant, in one line, exit 2,
and write nothing; a date planning cannot cover is refused the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.models import EventKind
from connector.store import Store
from providers.base import SyncPage

from ..conftest import make_debtor, make_invoice


@pytest.fixture
def config(tmp_path: Path) -> Path:
    db = tmp_path / "store.sqlite"
    with Store.open(f"sqlite:///{db}") as store:
        store.ensure_connection("acme", "moneybird", "T1")
        store.write_sync_page("acme", SyncPage(debtors=(make_debtor("D1"),), invoices=(make_invoice("I1"),)))
    path = tmp_path / "dunning.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{db}"\n\n[[connections]]\nname = "acme"\nprovider = "moneybird"\n'
                    'tenant = "T1"\nclient_id = "abc"\n', encoding="utf-8")
    return path


def cli(config: Path, *args: str):
    return CliRunner().invoke(app, ["--config", str(config), *args], env={"COLUMNS": "200"})


def events(config: Path) -> list:
    with Store.open(f"sqlite:///{config.parent / 'store.sqlite'}") as store:
        return store.events("acme", "I1")


def refused(config: Path, *args: str) -> str:
    result = cli(config, *args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not events(config)  # nothing written
    return result.stderr


ARRANGE = ("arrange", "2026-I1", "--as-of", "2026-10-20")


@pytest.mark.parametrize(
    ("instalments", "expected"),
    [
        (["2026-11-01:-10", "2026-12-01:1220"], "must be a positive amount"),
        (["2026-11-01:0", "2026-12-01:1210"], "must be a positive amount"),
        (["2026-11-01:600.005", "2026-12-01:609.995"], "whole cents"),
        (["2026-10-01:610", "2026-12-01:600"], "lies in the past"),
        (["2026-11-01:605", "2026-11-01:605"], "more than one instalment on 2026-11-01"),
        (["2026-11-01:800", "2026-12-01:800"], "more than the 1210.00 outstanding"),
    ],
)
def test_arrange_refuses_instalments_that_cannot_be_meant(config: Path, instalments: list[str], expected: str) -> None:
    args = [arg for day in instalments for arg in ("--instalment", day)]
    assert expected in refused(config, *ARRANGE, *args)


def test_arrange_says_plainly_when_the_instalments_do_not_cover_the_debt_and_partial_means_it(config: Path) -> None:
    message = refused(config, *ARRANGE, "--instalment", "2026-11-01:400", "--instalment", "2026-12-01:400")
    assert "add up to 800.00, not the 1210.00 outstanding" in message and "--partial" in message

    result = cli(config, *ARRANGE, "--instalment", "2026-11-01:400", "--instalment", "2026-12-01:400", "--partial")
    assert result.exit_code == 0, result.output
    (event,) = events(config)
    assert event.kind is EventKind.ARRANGEMENT_SET
    assert (event.data["covers"], event.data["outstanding"], event.data["partial"]) == ("800.00", "1210.00", True)


def test_arrange_with_instalments_adding_up_is_recorded_in_cents(config: Path) -> None:
    result = cli(config, *ARRANGE, "--instalment", "2026-12-01:605", "--instalment", "2026-11-01:605,00")
    assert result.exit_code == 0, result.output
    (event,) = events(config)
    assert event.data["instalments"] == [{"due": "2026-11-01", "amount": "605.00"},
                                         {"due": "2026-12-01", "amount": "605.00"}]
    assert event.data["partial"] is False


@pytest.mark.parametrize("args", [
    ("note", "2026-I1", "belde, zei caf\udce9 betaalt"),  # Latin-1 bytes in a UTF-8 argv arrive as surrogates
    ("hold", "2026-I1", "--dispute", "--reason", "prijs \udce9"),
])
def test_text_that_is_not_utf8_is_one_line_and_exit_2(config: Path, args: tuple[str, ...]) -> None:
    assert "is not valid UTF-8 text" in refused(config, *args, "--as-of", "2026-10-20")


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_plan_on_a_date_the_tables_cannot_cover_is_one_line_and_exit_2(config: Path, day: str) -> None:
    for extra in ([], ["--json"]):
        result = cli(config, "plan", "--as-of", day, *extra)
        assert result.exit_code == 2, result.output
        assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
        assert f"--as-of {day}: planning covers" in result.stderr


def test_plan_on_an_ordinary_date_still_plans(config: Path) -> None:
    result = cli(config, "plan", "--as-of", "2026-10-02", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout.splitlines()[0])["invoice_numbers"] == ["2026-I1"]
