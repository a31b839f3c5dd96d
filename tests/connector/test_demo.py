"""`dunning demo`, shortened: the simulators served on loopback, connected through the setup wizard, the job run day
by day. The figures it prints must agree with what the simulators themselves logged and with the store it leaves."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy
from typer.testing import CliRunner

from connector.cli import app
from connector.config import load_config
from connector.demo import MARKER, DemoRefused, DemoResult, describe, run_demo
from connector.demo_book import SALE_EVERY
from connector.formatting import formats_for
from connector.models import EventKind
from connector.report.texts import TEXTS, step_name
from connector.report import build_report
from connector.store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, list[str]]:
    result = run_demo(tmp_path_factory.mktemp("demo") / "dunning-demo", days=31)  # up to the first handoffs
    return result, describe(result)


def figure(lines: list[str], label: str) -> str:
    return next(line for line in lines if line.startswith(label)).split(":", 1)[1].strip()


def platform_confirmations(result: DemoResult) -> int:
    engine = sqlalchemy.create_engine(load_config(result.folder / "dunning.toml").store_url)
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text("SELECT receipt FROM outbox WHERE kind = 'confirmation' AND status = "
                                            "'sent'")).all()
    engine.dispose()
    return sum(1 for (receipt,) in rows if json.loads(receipt).get("channel") == "platform_mail")


def test_the_printed_reminders_are_the_mails_the_platforms_logged(demo: tuple[DemoResult, list[str]]) -> None:
    result, lines = demo
    assert result.world is not None
    logged = {p.connection: len(p.simulator.sent_mail()) for p in result.world.places}
    sent, _, per_step = figure(lines, "Reminders sent").partition(" — ")
    printed_steps = {step: int(count) for step, count in (part.split(": ") for part in per_step.split(", "))}
    mails_total, _, per_platform = figure(lines, "Mails in the platforms' own logs").partition(" — ")
    per_platform, _, explained = per_platform.partition(" (")
    printed_platforms = {name: int(count) for name, count in (part.rsplit(" ", 1) for part in per_platform.split(", "))}

    # besides the reminders, a promise's written confirmation that Exact's own mailing carried
    assert int(sent) + platform_confirmations(result) == sum(logged.values()) == int(mails_total) > 0
    # the line says why it counts more mails than reminders
    assert result.confirmations_mailed == platform_confirmations(result)
    assert not result.confirmations_mailed or f"and {result.confirmations_mailed} written confirmation" in explained
    assert printed_platforms == logged
    assert sum(printed_steps.values()) == int(sent)
    assert len(printed_steps) >= 2  # the days moved: later steps followed the first reminders


def test_the_printed_steps_are_the_reminders_the_store_recorded(demo: tuple[DemoResult, list[str]]) -> None:
    result, lines = demo
    config = load_config(result.folder / "dunning.toml")
    engine = sqlalchemy.create_engine(config.store_url)
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text("SELECT step, data FROM events WHERE kind = 'reminder_sent'")).all()
    engine.dispose()
    mails = [(step, json.loads(data)) for step, data in rows]
    keys = {(step, data["key"]) for step, data in mails if data.get("channel") != "letter"}  # one key per mail
    recorded = Counter(step_name(TEXTS["en"], step) for step, _key in keys)  # printed as the report names them
    printed = dict(part.split(": ") for part in figure(lines, "Reminders sent").partition(" — ")[2].split(", "))
    assert {step: int(count) for step, count in printed.items()} == dict(recorded)


def test_the_story_moves_money_and_lowers_days_sales_outstanding(demo: tuple[DemoResult, list[str]]) -> None:
    result, lines = demo
    assert not result.failed_days, result.failed_days
    # in the demo creditor's language (nl), like every other command's human output
    assert result.collected > 0 and formats_for("nl").money(result.collected, "EUR") in figure(lines, "Money collected")
    english = figure(describe(result, "en"), "Money collected")
    assert english == formats_for("en").money(result.collected, "EUR") and english.startswith("€")
    assert result.dso_end.keys() == result.dso_start.keys() == {(name, "EUR") for name in result.connections}
    assert all(end.dso is not None and start.dso is not None and end.dso < start.dso
               for end, start in zip(result.dso_end.values(), result.dso_start.values(), strict=True))
    assert result.tasks > 0  # the debtor without an e-mail address, the written steps


def test_the_printed_dso_is_the_reports(demo: tuple[DemoResult, list[str]]) -> None:
    result, lines = demo
    report = (result.folder / "report.html").read_text()
    in_report = dict(re.findall(r'data-connection="([^"]+)".*?data-figure="dso" data-value="([^"]*)"', report,
                                flags=re.DOTALL))
    printed = dict(part.rsplit(" → ", 1) for part in figure(lines, "Days sales outstanding").split("; "))
    assert {name.split(" ")[0]: value for name, value in printed.items()} == in_report
    assert len(in_report) == len(result.connections) and all(in_report.values())


def test_the_full_demo_keeps_trading_so_its_last_day_has_a_dso(tmp_path: Path) -> None:
    """The default 90 days: with only the opening book, no sale would fall in the 90 days before the last day and
    the demo would end on "DSO: none". New customers order every week; their invoices are synced and mostly paid."""
    result = run_demo(tmp_path / "dunning-demo")
    assert result.world is not None and not result.failed_days, result.failed_days
    assert result.new_sales == len(result.world.places) * len(range(0, 90, SALE_EVERY))
    config = load_config(result.folder / "dunning.toml")
    with Store.open(config.store_url) as store:
        for place in result.world.places:
            sales = [record for record in store.iter_invoice_records(place.connection)
                     if record.first_seen_on > result.start]  # booked during the demo, synced the same morning
            assert len(sales) == len(range(SALE_EVERY, 90, SALE_EVERY))
            assert all(record.first_seen_on == record.invoice.issue_date for record in sales)
            assert sum(record.closed_on is not None for record in sales) >= len(sales) // 2  # most paid
    assert result.dso_end.keys() == result.dso_start.keys() == {(name, "EUR") for name in result.connections}
    for key, start in result.dso_start.items():
        end = result.dso_end[key]
        assert start.dso is not None and end.dso is not None and end.dso < start.dso
    printed = figure(describe(result), "Days sales outstanding")
    assert "none" not in printed and figure(describe(result), "New orders invoiced").startswith(str(result.new_sales))


def test_the_debtors_behave_as_their_story_says(demo: tuple[DemoResult, list[str]]) -> None:
    result, _lines = demo
    assert result.world is not None
    config = load_config(result.folder / "dunning.toml")
    with Store.open(config.store_url) as store:
        for place in result.world.places:
            slow = place.seeded.invoices[f"slow-{place.index}-1"]
            reminded = [e for e in store.events(place.connection, slow) if e.kind is EventKind.REMINDER_SENT]
            paid = store.invoice(place.connection, slow)
            assert len(reminded) == 2 and paid is not None and not paid.is_open  # paid after the second reminder
            never = place.seeded.invoices[f"never-{place.index}-1"]
            assert any(e.kind is EventKind.HANDOFF for e in store.events(place.connection, never))
    assert result.cases_exported >= len(result.world.places)
    assert result.letters_posted > 0  # Xero's notice of default went out as a letter the bookkeeper posted
    assert any((result.folder / "export").glob("*/manifest.json"))


def test_the_folder_holds_a_config_a_store_and_the_export_folder(demo: tuple[DemoResult, list[str]]) -> None:
    result, _lines = demo
    folder = result.folder
    config = load_config(folder / "dunning.toml")
    assert [c.name for c in config.connections] == result.connections  # written by the setup wizard
    assert config.handoff.agency and (folder / "dunning.sqlite").is_file() and (folder / MARKER).exists()
    report = (folder / "report.html").read_text()
    assert result.report == folder / "report.html" and "<svg" in report and "http://" not in report.split("<svg")[0]
    tokens = folder / ".dunning-tokens"
    assert all((tokens / f"{name}.token").is_file() for name in result.connections)


def test_a_second_demo_in_the_same_folder_starts_clean(tmp_path: Path) -> None:
    folder = tmp_path / "dunning-demo"
    first = CliRunner().invoke(app, ["demo", "--dir", str(folder), "--days", "1"])
    assert first.exit_code == 0, first.stderr
    (folder / "export" / "stale-export").mkdir(parents=True)
    second = CliRunner().invoke(app, ["demo", "--dir", str(folder), "--days", "1"])
    assert second.exit_code == 0, second.stderr
    assert not (folder / "export" / "stale-export").exists()
    assert re.search(r"Reminders sent: (\d+)", first.stdout).group(1) == re.search(  # type: ignore[union-attr]
        r"Reminders sent: (\d+)", second.stdout).group(1)  # type: ignore[union-attr]


def test_a_folder_the_demo_did_not_make_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "dunning.toml").write_text("# my real config\n")
    with pytest.raises(DemoRefused, match="not made by dunning demo"):
        run_demo(tmp_path, days=1)
    assert [p.name for p in tmp_path.iterdir()] == ["dunning.toml"]  # not even a lock file left behind
    assert (tmp_path / "dunning.toml").read_text() == "# my real config\n"
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path), "--days", "1"])
    assert result.exit_code == 2 and "not made by dunning demo" in result.stderr


def test_the_dutch_report_words_the_call_tasks_in_dutch(demo: tuple[DemoResult, list[str]], tmp_path: Path) -> None:
    result, _lines = demo
    config = load_config(result.folder / "dunning.toml")
    out = tmp_path / "rapport.html"
    with Store.open(config.store_url) as store:
        page = build_report(store, config.policy, result.end, out, store_url=config.store_url,
                            made_at=datetime(2026, 10, 2, 7, 0, tzinfo=UTC), lang="nl")
    html = out.read_text()
    calls = [task for task in page.tasks if task.kind == "call"]
    assert calls and all(task.reason.startswith("call ") for task in calls)  # delivery words them in English
    assert all(f"<td>bel {task.reason.removeprefix('call ')}</td>" in html for task in calls)
