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
