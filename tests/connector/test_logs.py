"""Logs on stderr: plain or JSON lines, and never a secret."""

from __future__ import annotations

import json
import logging

from connector.logs import setup_logging

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"


def test_json_logs_are_one_object_per_line_with_extra_fields(capsys):
    setup_logging("json")
    logging.getLogger("connector.sync").info("%s: %d invoices fetched", "acme", 3, extra={"connection": "acme"})

    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["message"] == "acme: 3 invoices fetched"
    assert (entry["level"], entry["logger"], entry["connection"]) == ("info", "connector.sync", "acme")


def test_secrets_are_redacted_in_messages_arguments_and_tracebacks(capsys):
    setup_logging("json")
    log = logging.getLogger("providers.http")
    log.warning("calling with Authorization: Bearer %s", TOKEN)
    try:
        raise RuntimeError(f"refresh failed: refresh_token={TOKEN}")
    except RuntimeError:
        log.exception("token endpoint said no")

    err = capsys.readouterr().err
    assert TOKEN not in err and TOKEN[:20] not in err
    first, second = (json.loads(line) for line in err.splitlines())
    assert first["message"].startswith("calling with Authorization: ***")
    assert "refresh_token=***" in second["exception"]


def test_plain_logs_are_redacted_too_and_setup_twice_keeps_one_handler(capsys):
    setup_logging("plain")
    setup_logging("plain")
    logging.getLogger("connector").error("client_secret=%s leaked?", "hunter2hunter2")

    err = capsys.readouterr().err
    assert err.count("leaked?") == 1
    assert "hunter2hunter2" not in err and "client_secret=***" in err


def test_plain_log_lines_carry_an_iso_8601_time(capsys):
    import re

    setup_logging("plain")
    logging.getLogger("connector").warning("acme: something to look at")
    line = capsys.readouterr().err.strip()
    assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00 WARNING connector: acme: something", line)


def test_with_json_logs_every_stderr_line_is_json_command_errors_and_wizard_lines_included(tmp_path):
    from typer.testing import CliRunner

    from connector.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["--log-format", "json", "--config", str(tmp_path / "nope.toml"), "status"])
    assert missing.exit_code == 2
    (entry,) = [json.loads(line) for line in missing.stderr.splitlines()]
    assert entry["level"] == "error" and "no such config file" in entry["message"]

    usage = runner.invoke(app, ["--log-format", "json", "plan", "--as-of", "yesterday"])
    assert usage.exit_code == 2 and json.loads(usage.stderr)["message"].startswith("dunning plan: ")

    wizard = runner.invoke(app, ["--log-format", "json", "--config", str(tmp_path / "d.toml"), "setup",
                                 "--provider", "xero", "--client-id", "x", "--client-secret-env", "NOT_SET_HERE"],
                           env={"NOT_SET_HERE": ""})
    assert wizard.exit_code == 2
    lines = [json.loads(line) for line in wizard.stderr.splitlines()]
    assert lines and all(set(line) >= {"time", "level", "message"} for line in lines)


def test_stray_text_on_stderr_becomes_a_json_line():
    import io

    from connector.logs import JsonLinesStderr

    sink = io.StringIO()
    stream = JsonLinesStderr(sink)
    stream.write('{"already": "json"}\nplain text from a library\npart')
    stream.write("ial line")
    stream.flush()
    first, second, third = sink.getvalue().splitlines()
    assert json.loads(first) == {"already": "json"}
    assert json.loads(second)["message"] == "plain text from a library"
    assert json.loads(third)["message"] == "partial line"
