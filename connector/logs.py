"""Logging on stderr: readable lines for a person, JSON lines for a scheduler; secrets redacted either way.

stdout stays free for command output (`--json` results), so logs never mix into what a script parses. With the
JSON format *everything* on stderr is a JSON line: log records, command errors (`error_line`), the wizard's lines
and anything else a command writes there (`JsonLinesStderr` wraps stray text). Times are ISO 8601 in UTC.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Literal, TextIO

from providers.errors import redact

LogFormat = Literal["plain", "json"]

_OURS = "_dunning_handler"
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactFilter(logging.Filter):
    """Runs `providers.errors.redact` over every record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None  # formatters would otherwise render the unredacted traceback again
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def iso_time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class IsoFormatter(logging.Formatter):
    """Plain lines with an ISO 8601 UTC time (never a locale's `12/04/26`)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return iso_time(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, any `extra=` fields, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRS}
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


_format: LogFormat = "plain"


def current_format() -> LogFormat:
    """The format `setup_logging` chose last (what `error_line` and the progress display follow)."""
    return _format


def error_line(message: str, *, level: str = "error") -> None:
    """One line for a person on stderr: as it is in plain mode, a JSON object in JSON mode."""
    message = redact(message)
    if _format == "json":
        entry = {"time": iso_time(time.time()), "level": level, "logger": "dunning", "message": message}
        sys.stderr.write(json.dumps(entry, ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(message + "\n")
    sys.stderr.flush()


class JsonLinesStderr(io.TextIOBase):
    """stderr in JSON mode: a line that is already a JSON object passes; any other text (a command's message, a
    warning from a library) becomes {"time", "level": "info", "message"}, so a log collector parses every line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._partial = ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False  # no rich progress or colour: a collector reads these lines

    def fileno(self) -> int:
        return self.stream.fileno()

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.stream.write(_as_json_line(line) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self.stream.write(_as_json_line(self._partial) + "\n")
            self._partial = ""
        self.stream.flush()


def _as_json_line(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            if isinstance(json.loads(stripped), dict):
                return stripped
        except ValueError:
            pass
    entry = {"time": iso_time(time.time()), "level": "info", "logger": "dunning", "message": redact(line)}
    return json.dumps(entry, ensure_ascii=False)


def setup_logging(log_format: LogFormat = "plain", *, level: int = logging.INFO) -> None:
    """Install the one stderr handler (replacing an earlier one of ours, so calling it twice is harmless)."""
    global _format
    _format = log_format
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
    handler: logging.Handler
    if log_format == "json":
        if not isinstance(sys.stderr, JsonLinesStderr):
            sys.stderr = JsonLinesStderr(sys.stderr)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False,
                              log_time_format="%Y-%m-%dT%H:%M:%S")
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(IsoFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter())
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO; our own messages already say what was fetched.
    logging.getLogger("httpx").setLevel(logging.WARNING)
