"""The CLI as a script uses it, against the three simulators served on 127.0.0.1: `sync`, `plan --json`,
`send --json`, a second `send` that mails nothing, `tasks --json` and `task done`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.formatting import formats_for
from connector.simworld import SECRET, SECRET_ENV, World
from providers.tokens import EncryptedFileTokenStore, default_state_dir

KEY = "zB4m0P3B0ZQ5M2tqv1oYb8x2n6yP0gV4cW7dK9sH1aE="


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, Path]]:
    # the world's clock at the real time: the CLI's adapters run on the real clock
    world = World.build(datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.setenv("DUNNING_TOKEN_KEY", KEY)
    monkeypatch.delenv("DUNNING_CONFIG", raising=False)
    with world.serving():
        config = world.write_config(tmp_path / "dunning.toml", store_url="sqlite:///dunning.sqlite")
        world.grant(EncryptedFileTokenStore(default_state_dir(config), key=KEY))
        yield world, config


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_send_then_send_again_mails_each_reminder_once(served: tuple[World, Path]) -> None:
    world, config = served
    runner = CliRunner()
    base = ["--config", str(config)]
    assert runner.invoke(app, [*base, "sync"]).exit_code == 0
    planned = lines(runner.invoke(app, [*base, "plan", "--json"]).stdout)
    mail = [a for a in planned if a["channel"] == "platform_mail"]

    first = runner.invoke(app, [*base, "send", "--json"])
    again = runner.invoke(app, [*base, "send", "--json"])

    sent = [line for line in lines(first.stdout) if line["status"] == "sent"]
    assert sent and {line["status"] for line in lines(first.stdout)} <= {"sent", "task", "skipped"}
    assert all({"connection", "debtor", "invoices", "invoice_numbers", "step", "channel", "status", "reason"}
               <= set(line) for line in lines(first.stdout))
    assert len(sent) == world.sent_mail() <= len(mail)
    assert not [line for line in lines(again.stdout) if line["status"] == "sent"]
    assert world.sent_mail() == len(sent)
    assert "sent" in first.stderr and "platform calls" in first.stderr  # the per-connection summary
    # a debtor without an e-mail address: that reminder is a task naming the invoice, the rest went out, exit 1;
    # the next send finds nothing new wrong
    assert (first.exit_code, again.exit_code) == (1, 0)

    open_tasks = lines(runner.invoke(app, [*base, "tasks", "--json"]).stdout)
    table = runner.invoke(app, [*base, "tasks", "--lang", "nl"])  # human output follows --lang (cli.md)
    created = formats_for("nl").date(date.fromisoformat(open_tasks[0]["created_on"]))
    assert table.exit_code == 0 and created in table.stdout and created != open_tasks[0]["created_on"]
    # the dossier's amounts and days too (its JSON keeps EUR 1,234.56 and ISO days)
    assert "open invoice(s), € " in table.stdout and "EUR " not in table.stdout
    assert any("EUR " in line for task in open_tasks for line in task["dossier"])
    refused = [t for t in open_tasks if t["kind"] == "refused"]
    assert refused and all(t["reason"] and t["invoices"] and t["dossier"] for t in refused)  # no e-mail address
    done = runner.invoke(app, [*base, "task", "done", str(refused[0]["id"]), "--note", "phoned, will pay",
                               "--as-of", "2026-12-03"])
    assert done.exit_code == 0, done.output
    noted = lines(runner.invoke(app, [*base, "history", refused[0]["invoices"][0], "--connection",
                                      refused[0]["connection"], "--json"]).stdout)
    assert {"2026-12-03"} == {e["on"] for e in noted if "phoned, will pay" in json.dumps(e)}  # dated by --as-of
    # the refused reminder, done by hand, now counts as sent (what the notice of default and the handoff rest on)
    assert [(e["kind"], e["step"], e["data"]["channel"]) for e in noted if e["data"].get("source") == "task done"] == [
        ("reminder_sent", refused[0]["step"], "by hand")]
    assert refused[0]["id"] not in {t["id"] for t in lines(runner.invoke(app, [*base, "tasks", "--json"]).stdout)}
    # closed already: a request that cannot be carried out as given, nothing touched (cli.md: exit 2)
    assert runner.invoke(app, [*base, "task", "done", str(refused[0]["id"])]).exit_code == 2


    # a task whose invoices were all paid since closes itself: `tasks` lists only work still to do
    settled = next(t for t in open_tasks if t["id"] != refused[0]["id"])
    for invoice in settled["invoices"]:
        world.place(settled["connection"]).simulator.record_payment(invoice)
    assert runner.invoke(app, [*base, "sync"]).exit_code == 0
    left = lines(runner.invoke(app, [*base, "tasks", "--json"]).stdout)
    assert settled["id"] not in {t["id"] for t in left} and left
    assert all({"id", "kind", "connection", "debtor", "invoices", "step", "reason"} <= set(t) for t in left)
    closed = runner.invoke(app, [*base, "task", "done", str(settled["id"])])
    assert closed.exit_code == 2 and "on the platform; closed automatically" in closed.output


def test_a_mail_password_variable_that_is_not_set_is_a_usage_error_before_any_call(
    served: tuple[World, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, config = served
    config.write_text(config.read_text() + '\n[mail]\nhost = "127.0.0.1"\nfrom = "a@b.example"\n'
                      'password_env = "DUNNING_TEST_NO_SUCH_PASSWORD"\n')
    monkeypatch.delenv("DUNNING_TEST_NO_SUCH_PASSWORD", raising=False)
    calls = sum(p.simulator.call_count() for p in world.places)

    result = CliRunner().invoke(app, ["--config", str(config), "send"])

    assert result.exit_code == 2 and "mail.password_env" in result.stderr
    assert sum(p.simulator.call_count() for p in world.places) == calls
