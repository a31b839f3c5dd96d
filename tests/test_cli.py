"""The `dunning` command line as scripts see it: exit codes, stdout/stderr, JSON Lines, help for every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.config import starter_config
from providers.base import SyncPage
from providers.errors import AuthorizationExpired

DOCUMENTED_FLAGS = {  # shared/reference/cli.md
    "init": ["--force"],
    "setup": [
        "--provider", "--name", "--client-id", "--client-secret-env", "--redirect-uri", "--tenant", "--all-tenants",
        "--api-url", "--authorize-url", "--token-url", "--no-browser", "--timeout", "--reconnect",
    ],
    "status": ["--json"],
    "sync": ["--connection", "--full", "--json"],
    "plan": ["--as-of", "--connection", "--json"],
    "send": ["--as-of", "--connection", "--dry-run", "--limit", "--step", "--json"],
    "hold": ["--as-of", "--connection"],
    "arrange": ["--as-of", "--connection"],
    "note": ["--as-of", "--connection"],
    "export": ["--as-of", "--agency", "--out", "--zip", "--again", "--json"],
    "run": ["--as-of", "--connection", "--dry-run", "--log-format"],
    "report": ["--as-of", "--out"],
    "demo": ["--dir", "--days"],
}
AS_OF_COMMANDS = [command for command, flags in DOCUMENTED_FLAGS.items() if "--as-of" in flags]
EXTRA_ARGS = {"hold": ["INV-1"], "arrange": ["INV-1"], "note": ["INV-1", "called"]}

CONFIG = """
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


@pytest.fixture
def runner(monkeypatch, tmp_path) -> CliRunner:
    monkeypatch.delenv("DUNNING_CONFIG", raising=False)
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.setenv("ACME_SECRET", "s3cret-s3cret")
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def _config_file(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "dunning.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_init_writes_the_starter_config_and_refuses_to_overwrite(runner, tmp_path):
    first = runner.invoke(app, ["init"])
    assert first.exit_code == 0, first.output
    assert (tmp_path / "dunning.toml").read_text(encoding="utf-8") == starter_config()

    (tmp_path / "dunning.toml").write_text("# mine\n", encoding="utf-8")
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 2
    assert again.stderr.strip() == "dunning.toml: already exists; edit it, or replace it with `dunning init --force`"
    assert (tmp_path / "dunning.toml").read_text(encoding="utf-8") == "# mine\n"

    forced = runner.invoke(app, ["init", "--force"])
    assert forced.exit_code == 0 and (tmp_path / "dunning.toml").read_text(encoding="utf-8") == starter_config()


def test_init_then_status_works_on_a_fresh_folder(runner, tmp_path):
    assert runner.invoke(app, ["--config", str(tmp_path / "sub" / "d.toml"), "init"]).exit_code == 0
    status = runner.invoke(app, ["--config", str(tmp_path / "sub" / "d.toml"), "status"])
    assert status.exit_code == 0, status.output
    assert "No connections yet" in status.stdout and "dunning setup" in status.stdout
    assert (tmp_path / "sub" / "dunning.sqlite").exists()  # the store sits next to the config


@pytest.mark.parametrize("command", ["--help", *DOCUMENTED_FLAGS])
def test_every_command_has_real_help_with_its_documented_flags(runner, command):
    result = runner.invoke(app, [command, "--help"] if command != "--help" else ["--help"])
    assert result.exit_code == 0
    for flag in DOCUMENTED_FLAGS.get(command, ["--config", "--log-format", *DOCUMENTED_FLAGS]):
        assert flag in result.stdout, f"{flag} missing from `dunning {command} --help`"


@pytest.mark.parametrize("command", AS_OF_COMMANDS)
@pytest.mark.parametrize("bad", ["2026-13-01", "02-11-2026", "tomorrow"])
def test_a_bad_as_of_date_is_a_usage_error(runner, command, bad):
    result = runner.invoke(app, [command, *EXTRA_ARGS.get(command, []), "--as-of", bad])
    assert result.exit_code == 2
    assert "--as-of" in result.stderr and "YYYY-MM-DD" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sync", "--bogus"], "dunning sync: No such option: --bogus (see: dunning sync --help)"),
        (["status", "extra"], "dunning status: Got unexpected extra argument(s) (extra) (see: dunning status --help)"),
        (["note"], "dunning note: Missing argument 'INVOICE'. (see: dunning note --help)"),
        (["bogus"], "dunning: No such command 'bogus'. (see: dunning --help)"),
    ],
)
def test_a_bad_flag_or_argument_is_one_line_on_stderr_and_exit_2(runner, args, expected):
    result = runner.invoke(app, args, prog_name="dunning")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [expected] and result.stdout == ""


def test_a_bad_config_prints_each_problem_and_exits_2_before_any_sync(runner, tmp_path, fake_provider):
    _config_file(tmp_path, CONFIG.replace('provider = "fake"\ntenant = "T2"', 'provider = "sage"\ntenant = "T2"')
                 + '\n[creditor]\nname = "X"\niban = "NL00ABNA0417164300"\n')
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "connections[1].provider: must be one of exact, fake, moneybird, xero",
        "creditor.iban: 'NL00ABNA0417164300' is not a valid IBAN: its check digits do not match (a typo?)",
    ]
    assert fake_provider.instances == []


def test_a_missing_config_points_to_init(runner, tmp_path):
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "dunning.toml: no such config file; run `dunning init` to create a starter config"


def test_the_config_path_comes_from_the_environment(runner, tmp_path, fake_provider):
    (tmp_path / "elsewhere").mkdir()
    path = _config_file(tmp_path / "elsewhere")
    result = runner.invoke(app, ["status", "--json"], env={"DUNNING_CONFIG": str(path)})
    assert result.exit_code == 1, result.output  # neither connection is authorised yet
    assert [json.loads(line)["name"] for line in result.stdout.splitlines()] == ["acme", "beta"]


def test_sync_json_prints_one_summary_per_connection_and_nothing_else(runner, tmp_path, fake_provider,
                                                                      invoice_factory, debtor_factory):
    _config_file(tmp_path)
    fake_provider.script["acme"] = [
        SyncPage(invoices=(invoice_factory("I1"), invoice_factory("I2")), debtors=(debtor_factory(),), cursor="1"),
        SyncPage(closed_invoice_ids=("I2",), cursor="2"),
    ]
    fake_provider.script["beta"] = [SyncPage(invoices=(invoice_factory("B1", connection="beta"),))]

    result = runner.invoke(app, ["sync", "--json"])

    assert result.exit_code == 0, result.output
    acme, beta = (json.loads(line) for line in result.stdout.splitlines())
    assert {k: acme[k] for k in ("connection", "fetched", "changed", "closed", "api_calls")} == {
        "connection": "acme", "fetched": 2, "changed": 2, "closed": 1, "api_calls": 2,
    }
    assert (beta["connection"], beta["fetched"], beta["ok"]) == ("beta", 1, True)

    status = runner.invoke(app, ["status", "--json"])
    rows = {row["name"]: row for row in map(json.loads, status.stdout.splitlines())}
    assert rows["acme"]["open_invoices"] == 1 and rows["acme"]["last_sync_at"] is not None


def test_sync_off_a_terminal_reports_progress_as_log_lines_on_stderr(runner, tmp_path, fake_provider,
                                                                     invoice_factory):
    _config_file(tmp_path)
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="1")]
    fake_provider.script["beta"] = [SyncPage(invoices=(invoice_factory("B1", connection="beta"),))]

    result = runner.invoke(app, ["--log-format", "json", "sync", "--json"])

    assert result.exit_code == 0, result.output
    messages = [json.loads(line)["message"] for line in result.stderr.splitlines()]
    assert "acme: sync started" in messages and "beta: sync finished" in messages
    assert any(m.startswith("acme: page 1: 1 invoices") for m in messages)
    assert all(json.loads(line) for line in result.stdout.splitlines())  # stdout stays JSON Lines only


def test_sync_json_says_whether_the_run_was_full_and_full_forces_one(runner, tmp_path, fake_provider,
                                                                    invoice_factory):
    _config_file(tmp_path)
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="1")]

    def run(*flags: str) -> tuple[bool, ...]:
        result = runner.invoke(app, ["sync", "--connection", "acme", "--json", *flags])
        assert result.exit_code == 0, result.output
        return tuple(json.loads(line)["full"] for line in result.stdout.splitlines())

    assert run() == (True,)  # the first sync reads everything
    assert run() == (False,)
    assert run("--full") == (True,)
    assert [state.full for state in fake_provider.states] == [False, False, True]
    status = runner.invoke(app, ["status", "--json"])
    rows = {row["name"]: row for row in map(json.loads, status.stdout.splitlines())}
    assert rows["acme"]["last_full_sync_at"] is not None and rows["beta"]["last_full_sync_at"] is None


def test_sync_of_one_connection_with_expired_authorisation_exits_1_and_status_shows_it(
    runner, tmp_path, fake_provider, invoice_factory
):
    _config_file(tmp_path)
    fake_provider.script["acme"] = [AuthorizationExpired("the refresh token has expired", connection="acme")]

    result = runner.invoke(app, ["sync", "--connection", "acme", "--json"])

    assert result.exit_code == 1
    (summary,) = map(json.loads, result.stdout.splitlines())
    assert summary["ok"] is False and "dunning setup --reconnect acme" in summary["error"]
    assert "dunning setup --reconnect acme" in result.stderr
    status = runner.invoke(app, ["status", "--json"])
    rows = {row["name"]: row for row in map(json.loads, status.stdout.splitlines())}
    assert rows["acme"]["needs_reauth"] is True and status.exit_code == 1  # monitoring can act on it
    assert "the refresh token has expired" in rows["acme"]["attention"]


def test_sync_of_an_unknown_connection_is_a_usage_error(runner, tmp_path, fake_provider):
    _config_file(tmp_path)
    result = runner.invoke(app, ["sync", "--connection", "gamma"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "--connection: no connection named 'gamma' (known: acme, beta)"


def test_sync_of_a_named_connection_when_none_is_configured_is_a_usage_error(runner, tmp_path):
    _config_file(tmp_path, "")
    result = runner.invoke(app, ["sync", "--connection", "acme"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "--connection: no connection named 'acme' (known: none configured; run `dunning setup`)"
    )


@pytest.mark.parametrize("command", ["status", "plan", "tasks"])
def test_a_store_that_cannot_be_opened_is_one_clear_line_and_a_configuration_error(runner, tmp_path, command):
    (tmp_path / "dunning.sqlite").write_text("not a database\n", encoding="utf-8")
    _config_file(tmp_path, "")
    result = runner.invoke(app, [command])
    assert result.exit_code == 2  # cli.md: a configuration error, nothing touched
    assert result.stderr.splitlines() == [
        f"store.url: cannot open the store sqlite:///{tmp_path.resolve() / 'dunning.sqlite'}: file is not a database"
    ]
    assert (tmp_path / "dunning.sqlite").read_text(encoding="utf-8") == "not a database\n"


def test_log_format_json_makes_stderr_json_lines(runner, tmp_path, fake_provider):
    _config_file(tmp_path)
    result = runner.invoke(app, ["--log-format", "json", "sync"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert {line["message"] for line in lines} >= {
        "acme: full sync, 0 invoices fetched, 0 changed, 0 closed, 0 API calls"
    }


def test_a_successful_reconnect_clears_the_re_authorisation_flag_at_once(
    runner, tmp_path, fake_provider, monkeypatch
):
    import connector.setup as setup_code
    from connector.store import Store

    config = _config_file(tmp_path)
    fake_provider.script["acme"] = [AuthorizationExpired("the refresh token has expired", connection="acme")]
    assert runner.invoke(app, ["sync", "--connection", "acme"]).exit_code == 1
    monkeypatch.setattr(setup_code, "run_setup", lambda *a, **k: setup_code.SetupResult(("acme",), (), "acme"))

    result = runner.invoke(app, ["setup", "--reconnect", "acme", "--no-browser"])

    assert result.exit_code == 0, result.stderr
    with Store.open(f"sqlite:///{tmp_path / 'dunning.sqlite'}") as store:
        assert store.connection_status()["acme"].needs_reauth is False
    assert config.exists()


def test_version_short_help_and_completion(runner):
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"dunning {version('dunning-connector')}\n"
    top = runner.invoke(app, ["-h"])
    assert top.exit_code == 0 and "--install-completion" in top.stdout and "--version" in top.stdout
    assert runner.invoke(app, ["plan", "-h"]).stdout.startswith("Usage: dunning plan [OPTIONS]")


def test_help_never_cuts_a_command_off_and_placeholders_name_the_value(runner):
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "80"}).stdout
    commands = top.split("Commands:")[1]
    assert "..." not in commands and "--config PATH" in top
    assert "invoices" in top and "history" in top
    plan = runner.invoke(app, ["plan", "--help"]).stdout
    assert "--as-of YYYY-MM-DD" in plan and "--connection NAME" in plan
    assert "INVOICE" in runner.invoke(app, ["history", "--help"]).stdout
