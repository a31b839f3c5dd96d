"""`dunning export` and `dunning cases` through the CLI: JSON Lines per cli.md, exit codes, --again, a wrong
agency format as a configuration error."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.formatting import formats_for
from connector.models import Invoice
from connector.store import Store
from providers.base import SyncPage

from ...conftest import FakeProvider, make_debtor
from .conftest import seed_book

CONFIG = """
[store]
url = "sqlite:///dunning.sqlite"

[creditor]
name = "Acme Installaties B.V."
address_lines = ["Damrak 1"]
postal_code = "1012 LG"
city = "Amsterdam"
iban = "NL91 ABNA 0417 1643 00"

[handoff]
agency = "generic-csv"
out_dir = "agency"

[[connections]]
name = "acme"
provider = "fake"
tenant = "T1"
client_id = "app"
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_provider: type[FakeProvider]) -> CliRunner:
    monkeypatch.delenv("DUNNING_CONFIG", raising=False)
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.chdir(tmp_path)

    def fetch_pdf(self: FakeProvider, invoice: Invoice) -> bytes:
        return b"%PDF-1.4 " + invoice.platform_id.encode()

    monkeypatch.setattr(FakeProvider, "fetch_pdf", fetch_pdf)
    (tmp_path / "dunning.toml").write_text(CONFIG, encoding="utf-8")
    with Store.open(f"sqlite:///{tmp_path / 'dunning.sqlite'}") as store:
        seed_book(store)
        store.write_sync_page("acme", SyncPage(debtors=(make_debtor(
            "C1", name="J. Jansen", kind="consumer", address={"lines": ("Dorpsstraat 12",), "country": "NL"}),)))
    return CliRunner()


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_export_json_lines_hold_back_and_exit_1_then_cases_lists_the_states(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["export", "--as-of", "2026-09-30", "--json"])
    assert result.exit_code == 1, result.output
    exported, held = sorted(_lines(result.stdout), key=lambda o: o["status"])
    assert exported["status"] == "exported" and exported["debtor"] == "B1" and exported["invoices"] == ["IB1"]
    assert exported["folder"] == str(tmp_path / "agency" / "2026-09-30-generic-csv")
    assert (exported["principal"], exported["interest"], exported["costs"], exported["total"]) == (
        "1000.00", "30.78", "150.00", "1180.78")
    assert held["status"] == "held_back" and held["case"] != exported["case"]
    assert held["missing"] == ["debtor.address.postal_code (column 'postal_code')",
                               "debtor.address.city (column 'city')"]
    assert "held back, missing: debtor.address.postal_code" in result.stderr
    pdf = tmp_path / "agency" / "2026-09-30-generic-csv" / "documents" / exported["case"] / "invoice-2026-0101.pdf"
    assert pdf.read_bytes() == b"%PDF-1.4 IB1"

    listed = cli.invoke(app, ["cases", "--json"])
    assert listed.exit_code == 0
    states = {row["case"]: row for row in _lines(listed.stdout)}
    assert states[exported["case"]]["status"] == "exported" and states[exported["case"]]["handed_off"] is True
    assert states[held["case"]]["status"] == "held_back" and states[held["case"]]["missing"] == held["missing"]

    again = cli.invoke(app, ["export", "--as-of", "2026-10-01", "--again", exported["case"], "--json", "--zip"])
    assert again.exit_code == 0, again.output
    (line,) = _lines(again.stdout)
    assert line["case"] == exported["case"] and line["folder"].endswith("2026-10-01-generic-csv.zip")

    table = cli.invoke(app, ["cases"])
    assert table.exit_code == 0 and f"{held['case']} held back, missing: debtor.address.postal_code" in table.stdout
    dutch = cli.invoke(app, ["cases", "--lang", "nl"], env={"COLUMNS": "200"})  # human output follows --lang (cli.md): € 1.234,56
    now = {row["case"]: row for row in _lines(cli.invoke(app, ["cases", "--json"]).stdout)}
    total = now[exported["case"]]["total"]  # as the export --again above left it
    assert dutch.exit_code == 0 and formats_for("nl").money(Decimal(total), "EUR") in dutch.stdout
    assert formats_for("nl").money(Decimal(total), "EUR").startswith("€ ")
    assert f"{exported['case']} in " in table.stdout


def test_a_wrong_agency_is_a_configuration_error(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["export", "--agency", "no-such-agency"])
    assert result.exit_code == 2
    assert result.stderr.startswith("--agency: unknown agency format 'no-such-agency'; shipped: ")
    (tmp_path / "dunning.toml").write_text(CONFIG.replace('"generic-csv"', '"mine.toml"'), encoding="utf-8")
    (tmp_path / "mine.toml").write_text('file_type = "xlsx"\n[[columns]]\nname = "A"\nsource = "debtor.nam"\n')
    result = cli.invoke(app, ["cases"])
    assert result.exit_code == 2
    assert f"handoff.agency: {tmp_path / 'mine.toml'}: columns[0]: " in result.stderr
    assert "unknown source path 'debtor.nam'" in result.stderr


def test_again_with_a_case_the_store_does_not_have_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["export", "--as-of", "2026-10-01", "--again", "C999999"])
    assert result.exit_code == 2  # cli.md: a request that cannot be carried out as given, nothing exported
    assert result.stderr.startswith("case C999999: not in the store")
    assert not (tmp_path / "agency").exists()


def test_nothing_due_says_so(cli: CliRunner) -> None:
    result = cli.invoke(app, ["export", "--as-of", "2026-07-01"])
    assert result.exit_code == 0 and "No case is due" in result.stdout
    dutch = cli.invoke(app, ["export", "--as-of", "2026-07-01", "--lang", "nl"])
    assert dutch.exit_code == 0 and "on 1 juli 2026" in dutch.stdout  # human output follows --lang (cli.md)


def test_the_export_table_writes_amounts_in_the_chosen_language(cli: CliRunner) -> None:
    result = cli.invoke(app, ["export", "--as-of", "2026-09-30", "--lang", "nl"], env={"COLUMNS": "200"})
    assert "€ 1.180,78" in result.stdout and "30 september 2026" in result.stdout


def test_an_export_without_an_agency_format_or_creditor_is_a_configuration_error(cli: CliRunner,
                                                                                 tmp_path: Path) -> None:
    (tmp_path / "dunning.toml").write_text(CONFIG.replace('agency = "generic-csv"\n', ""), encoding="utf-8")
    result = cli.invoke(app, ["export", "--as-of", "2026-09-30"])
    assert result.exit_code == 2 and result.stderr.startswith("handoff.agency: no agency format is configured")
    without_creditor = CONFIG.split("[creditor]")[0] + "[handoff]" + CONFIG.split("[handoff]")[1]
    (tmp_path / "dunning.toml").write_text(without_creditor, encoding="utf-8")
    result = cli.invoke(app, ["export", "--as-of", "2026-09-30"])
    assert result.exit_code == 2 and result.stderr.startswith("creditor: the agency export needs your company's")
    assert not (tmp_path / "agency").exists()
