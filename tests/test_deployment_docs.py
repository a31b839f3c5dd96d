"""The deployment recipes in docs/deployment.md work as written: the systemd service and timer pass
`systemd-analyze verify` (where it exists; else they are parsed and their keys checked), the cron line is a valid
/etc/cron.d line, and every recipe runs `dunning run` with flags the command has and the token-store environment a
scheduler needs."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.store.runlock import ALREADY_RUNNING_EXIT

DOC = Path(__file__).parents[1] / "docs" / "deployment.md"
VENV_DUNNING = "/srv/dunning/.venv/bin/dunning"


def recipes() -> dict[str, str]:
    """Each fenced block whose first line names its file (`# /etc/...`), by that file's name."""
    found = {}
    for block in re.findall(r"```[a-z]*\n(.*?)```", DOC.read_text(), flags=re.S):
        first, _, body = block.partition("\n")
        if first.startswith("# /etc/"):
            found[Path(first[2:].strip()).name] = body
    return found


def unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def run_arguments(command: str) -> list[str]:
    """The arguments after `dunning` in a recipe's command line."""
    words = command.split(">>")[0].split()
    return words[words.index(VENV_DUNNING) + 1:]


def test_the_recipes_are_all_there() -> None:
    assert {"dunning.service", "dunning.timer", "dunning", "environment"} <= set(recipes())


def test_the_service_runs_the_job_with_the_scheduler_environment() -> None:
    service = unit(recipes()["dunning.service"])["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"].startswith(VENV_DUNNING)
    assert service["SuccessExitStatus"] == str(ALREADY_RUNNING_EXIT)  # another run working is not a failure
    assert service["EnvironmentFile"] == "/etc/dunning/environment"
    environment = recipes()["environment"]
    assert "DUNNING_TOKEN_STORE=file" in environment and "DUNNING_TOKEN_KEY=" in environment
    timer = unit(recipes()["dunning.timer"])
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_service_and_timer(tmp_path: Path) -> None:
    dunning = Path(sys.executable).parent / "dunning"
    for name in ("dunning.service", "dunning.timer"):
        text = recipes()[name].replace(VENV_DUNNING, str(dunning)).replace("/srv/dunning", str(tmp_path))
        (tmp_path / name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "dunning.service"),
                             str(tmp_path / "dunning.timer")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "dunning." not in result.stderr, result.stderr  # no warning about our units either


def test_the_cron_line_is_a_cron_d_line_loading_the_same_environment() -> None:
    lines = [line for line in recipes()["dunning"].splitlines() if line.strip()]
    assert len(lines) == 1
    minute, hour, day, month, weekday, user, command = lines[0].split(None, 6)
    for value, low, high in ((minute, 0, 59), (hour, 0, 23)):
        assert value.isdigit() and low <= int(value) <= high
    assert (day, month, weekday) == ("*", "*", "*") and user == "dunning"
    assert "%" not in command  # cron would cut the command there
    assert ". /etc/dunning/environment" in command and "set -a" in command


@pytest.mark.parametrize("source", ["dunning.service", "dunning"])
def test_every_recipe_calls_flags_that_dunning_run_has(source: str) -> None:
    text = recipes()[source]
    command = unit(text)["Service"]["ExecStart"] if source.endswith(".service") else text.strip().split(None, 6)[6]
    arguments = run_arguments(command)
    assert "run" in arguments
    flags = [a for a in arguments[arguments.index("run") + 1:] if a.startswith("--")]
    help_text = CliRunner().invoke(app, ["run", "--help"]).stdout
    assert flags and all(flag in help_text for flag in flags), (flags, help_text)
