"""`dunning run` as a scheduler runs it: the three simulators served on loopback, tokens in the file store, the
exit codes a scheduler acts on (0, 1, 2, and 75 while another run holds the store), `--json` summaries on stdout
and `--log-format json` lines on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from connector.cli import app
from connector.config import load_config
from connector.simworld import SECRET, SECRET_ENV, World
from connector.store import Store
from connector.store.runlock import ALREADY_RUNNING_EXIT, run_lock
from providers.tokens import EncryptedFileTokenStore, default_state_dir


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def env(key: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"DUNNING_TOKEN_STORE": "file", "DUNNING_TOKEN_KEY": key, SECRET_ENV: SECRET}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return os.environ | values


@pytest.fixture
def world() -> Iterator[World]:
    # Served over HTTP, the adapters run on the wall clock: the simulators' clock starts now and stands still.
    built = World.build(datetime.now(UTC).replace(microsecond=0))
    with built.serving():
        yield built


@pytest.fixture
def config(world: World, tmp_path: Path, key: str, env: dict[str, str], store_url: str) -> Path:
    path = world.write_config(tmp_path / "dunning.toml", store_url=store_url)
    world.grant(EncryptedFileTokenStore(default_state_dir(path), key=key))
    return path


def dunning(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_good_day_exits_0_with_a_json_summary_per_connection(world: World, config: Path) -> None:
    code, out, err = dunning(config, "run", "--json", "--as-of", world.today.isoformat())

    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["connection"] for r in rows] == [p.connection for p in world.places]
    for row in rows:
        assert row["ok"] and row["synced"] and row["error"] is None
        assert row["sent"] == len(world.place(row["connection"]).simulator.sent_mail()) > 0


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_connection_runs_that_connection_only(world: World, config: Path) -> None:
    chosen = world.places[1]
    code, out, err = dunning(config, "run", "--connection", chosen.connection, "--json")

    assert code == 0, err
    assert [json.loads(line)["connection"] for line in out.splitlines()] == [chosen.connection]
    assert world.sent_mail() == world.sent_mail(chosen.connection) > 0
    assert all(p.simulator.call_count() == 0 for p in world.places if p is not chosen)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_dry_run_shows_what_would_go_out_and_sends_nothing(world: World, config: Path) -> None:
    code, out, err = dunning(config, "run", "--dry-run", "--json")

    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(r["dry_run"] and r["synced"] for r in rows)
    assert sum(r["sent"] for r in rows) > 0  # what would go out
    assert world.sent_mail() == 0  # and nothing did
    with Store.open(load_config(config).store_url) as store:
        assert store.outbox_pending() == []
    code, out, _err = dunning(config, "run", "--json")
    assert code == 0 and sum(json.loads(line)["sent"] for line in out.splitlines()) == world.sent_mail() > 0


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_log_format_json_makes_every_stderr_line_a_json_object(world: World, config: Path) -> None:
    code, out, err = dunning(config, "run", "--log-format", "json")

    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines()]  # every line parses
    done = {line["connection"]: line for line in lines if line.get("event") == "connection_done"}
    assert set(done) == {p.connection for p in world.places}
    assert all(d["level"] == "info" and d["ok"] and d["sent"] > 0 for d in done.values())
    assert {line.get("task") for line in lines if line.get("event") == "task_finished"} >= {"sync", "plan", "send"}
    assert "Run for" in out  # the summary table stays on stdout
    assert SECRET not in err


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_platform_down_exits_1_naming_it_while_the_others_go_through(world: World, config: Path) -> None:
    down = world.places[2]
    down.simulator.faults.server_error("*", times=1000, status=503)

    code, out, err = dunning(config, "run", "--json")

    assert code == 1
    rows = {r["connection"]: r for r in map(json.loads, out.splitlines())}
    assert not rows[down.connection]["ok"] and rows[down.connection]["error"].startswith(down.connection)
    assert all(r["ok"] and r["sent"] > 0 for name, r in rows.items() if name != down.connection)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_usage_errors_exit_2_before_touching_a_platform(world: World, config: Path) -> None:
    code, _out, err = dunning(config, "run", "--connection", "nope")
    assert code == 2 and "no connection named 'nope'" in err
    code, _out, err = dunning(config, "run", "--as-of", "2026-02-30")
    assert code == 2
    assert all(p.simulator.call_count() == 0 for p in world.places)


def test_a_second_run_exits_75_at_once_while_another_holds_the_store(
    world: World, config: Path, env: dict[str, str]
) -> None:
    """The first run is played by this process holding the lock; the second is a real process (another machine,
    on PostgreSQL: the advisory lock is the database's)."""
    command = [str(Path(sys.executable).parent / "dunning"), "--config", str(config), "run"]
    with Store.open(load_config(config).store_url) as store, run_lock(store.engine):
        second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert second.returncode == ALREADY_RUNNING_EXIT
    assert "another dunning run is working on" in second.stderr
    assert world.sent_mail() == 0 and all(p.simulator.call_count() == 0 for p in world.places)

    after = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert after.returncode == 0, after.stderr
    assert world.sent_mail() > 0
