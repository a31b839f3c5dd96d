"""`dunning report` from the command line: one file named after the store and the date, private, in the language
asked for; a connection that does not exist is a usage error."""

from __future__ import annotations

import stat

from typer.testing import CliRunner

from connector.cli import app
from connector.store import Store
from tests.connector.conftest import FixedClock
from tests.connector.report.book import AS_OF, BIGGEST, seed

CONFIG = """
[ui]
lang = "nl"

[store]
url = "sqlite:///books.sqlite"

[[connections]]
name = "acme"
provider = "fake"
tenant = "T1"
client_id = "app"
client_secret_env = "ACME_SECRET"

[[connections]]
name = "beta"
provider = "fake"
tenant = "T2"
client_id = "app"
client_secret_env = "ACME_SECRET"
"""


def _setup(tmp_path, monkeypatch) -> CliRunner:
    monkeypatch.delenv("DUNNING_CONFIG", raising=False)
    monkeypatch.setenv("ACME_SECRET", "s3cret-s3cret")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dunning.toml").write_text(CONFIG, encoding="utf-8")
    clock = FixedClock()
    with Store.open(f"sqlite:///{tmp_path / 'books.sqlite'}", clock=clock) as store:
        seed(store, clock)
    return CliRunner()


def test_the_report_is_one_private_file_naming_the_store_the_date_and_the_version(tmp_path, monkeypatch, fake_provider):
    runner = _setup(tmp_path, monkeypatch)

    result = runner.invoke(app, ["report", "--as-of", AS_OF.isoformat()])

    assert result.exit_code == 0, result.output
    written = tmp_path / f"dunning-report-books-{AS_OF.isoformat()}.html"
    assert result.output.strip() == f"Report written to {written.name}"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    html = written.read_text(encoding="utf-8")
    assert "books.sqlite" in html and "4 december 2026" in html and "Dunning Connector 0.1.0" in html
    assert BIGGEST in html and "€\xa018.434,00" in html and "<script" not in html
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left behind


def test_one_connection_in_english_to_a_file_of_choice(tmp_path, monkeypatch, fake_provider):
    runner = _setup(tmp_path, monkeypatch)

    result = runner.invoke(app, ["report", "--as-of", "2026-12-04", "--connection", "beta", "--lang", "en",
                                 "--out", "beta.html"])

    assert result.exit_code == 0, result.output
    html = (tmp_path / "beta.html").read_text(encoding="utf-8")
    assert "Receivables report" in html and "£750.00" in html and "4 December 2026" in html
    assert 'data-connection="acme"' not in html and BIGGEST not in html


def test_an_unknown_connection_or_an_impossible_date_is_a_usage_error(tmp_path, monkeypatch, fake_provider):
    runner = _setup(tmp_path, monkeypatch)

    unknown = runner.invoke(app, ["report", "--connection", "nope"])
    too_early = runner.invoke(app, ["report", "--as-of", "0001-01-01"])

    assert unknown.exit_code == 2 and "nope" in unknown.output
    assert too_early.exit_code == 2 and too_early.output.count("\n") == 1
    assert not list(tmp_path.glob("dunning-report-*"))


def test_a_folder_as_out_gets_the_usual_name_and_an_unwritable_place_is_one_line(tmp_path, monkeypatch, fake_provider):
    runner = _setup(tmp_path, monkeypatch)
    (tmp_path / "reports").mkdir()
    (tmp_path / "taken").write_text("a file, not a folder", encoding="utf-8")

    into_folder = runner.invoke(app, ["report", "--as-of", "2026-12-04", "--out", "reports"])
    blocked = runner.invoke(app, ["report", "--as-of", "2026-12-04", "--out", "taken/report.html"])

    assert into_folder.exit_code == 0, into_folder.output
    assert (tmp_path / "reports" / "dunning-report-books-2026-12-04.html").exists()
    assert blocked.exit_code == 2 and blocked.output.startswith("--out taken/report.html: cannot write the report")
    assert blocked.output.count("\n") == 1
