"""What every command shares: the typer app, the global options, one-line usage errors, exit codes and the
common option types. Commands live in the modules beside this one, one per command or group.

Exit codes: 0 all done; 1 partial failure (some connection, action or case failed); 2 usage or configuration error
(nothing touched a platform). `--json` prints JSON Lines on stdout and nothing else; logs and errors go to stderr.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

from connector.app import App
from connector.config import DEFAULT_PATH, ConfigError
from connector.logs import error_line, setup_logging
from connector.store.errors import StoreUnavailable
from providers.errors import DunningError, UsageError

_UsageError: type[Exception] = typer.BadParameter.__mro__[1]
"""click's UsageError (vendored by newer typer, so reached through its public subclass)."""


@contextmanager
def _usage_errors_on_one_line() -> Iterator[None]:
    try:
        yield
    except _UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # plain `dunning`: the help itself
            raise
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "dunning"  # type: ignore[attr-defined]
        line = f"{command}: {exc.format_message()} (see: {command} --help)"  # type: ignore[attr-defined]
        exc.show = lambda file=None: error_line(line)  # type: ignore[attr-defined]
        raise


class DunningGroup(typer.core.TyperGroup):
    """A bad flag or argument is one stderr line naming the command (cli.md: errors one line each), exit 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_errors_on_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _usage_errors_on_one_line():
            return super().invoke(ctx)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command with its whole first sentence (wrapped, never cut off with "...")."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    cls=DunningGroup,
    name="dunning",
    help="Dunning Connector: syncs open invoices from Exact Online, Moneybird and Xero, reminds through the "
    "platform itself and hands late cases to a collection agency.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help and one-line errors; help texts may show TOML's [tables] verbatim
)


class LogFormat(StrEnum):
    PLAIN = "plain"
    JSON = "json"


@dataclass(frozen=True)
class Options:
    """The global options, handed to every command through the typer context."""

    config_path: Path
    log_format: LogFormat


def parse_date(value: str) -> date:
    """A `YYYY-MM-DD` option value (a bad one is a one-line usage error)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-02")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in the calendar; use YYYY-MM-DD") from None


AsOf = Annotated[
    date | None,
    typer.Option(
        "--as-of",
        parser=parse_date,
        metavar="YYYY-MM-DD",
        help="Act as if today were this date (default: today).",
    ),
]
ConnectionName = Annotated[
    str | None, typer.Option("--connection", metavar="NAME", help="Only this connection (its name).")
]
Json = Annotated[bool, typer.Option("--json", help="JSON Lines on stdout, one object per line.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would happen; write nothing to a platform.")]
InvoiceRef = Annotated[str, typer.Argument(metavar="INVOICE", help="The invoice number (or platform id).")]


class LangChoice(StrEnum):
    NL = "nl"
    EN = "en"


LangOption = Annotated[
    LangChoice | None,
    typer.Option("--lang", help="Amounts and dates in nl (€ 1.234,56; 4 december 2026) or en "
                 "(default: [ui] lang, else nl for a creditor in NL or BE)."),
]
Tsv = Annotated[bool, typer.Option("--tsv", help="Tab-separated values with a header line, for a spreadsheet.")]


def _print_version(value: bool | None) -> None:
    if value:
        typer.echo(f"dunning {package_version()}")
        raise typer.Exit()


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dunning-connector")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="PATH",
            envvar="DUNNING_CONFIG",
            help=f"The config file (default: $DUNNING_CONFIG, else ./{DEFAULT_PATH}).",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log lines on stderr as plain text or JSON.")
    ] = LogFormat.PLAIN,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    ctx.obj = Options(config_path=config or DEFAULT_PATH, log_format=log_format)
    setup_logging(log_format.value)


# --- helpers for the commands ---------------------------------------------------------------------------------------


def options(ctx: typer.Context) -> Options:
    found: Options = ctx.obj
    return found


def application(ctx: typer.Context) -> App:
    """The application layer for this invocation (one per command run)."""
    return App(options(ctx).config_path)


@contextmanager
def exit_codes() -> Iterator[None]:
    """Configuration problems, a store that cannot be opened and requests that cannot be carried out as given →
    each on its own stderr line, exit 2; other known errors → stderr, exit 1."""
    try:
        yield
    except ConfigError as exc:
        for problem in exc.problems:
            error_line(problem)
        raise typer.Exit(2) from None
    except (UsageError, StoreUnavailable) as exc:
        error_line(str(exc))
        raise typer.Exit(2) from None
    except DunningError as exc:
        error_line(str(exc))
        raise typer.Exit(1) from None


def print_json_lines(objects: Iterable[Mapping[str, Any]]) -> None:
    for obj in objects:
        typer.echo(json.dumps(obj, default=str, ensure_ascii=False))


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A titled table of plain aligned text: no value is ever cut (numbers right-aligned; on a terminal only the
    last column wraps)."""
    from connector.cli.output import Column, echo_lines, render, terminal_width

    cells = [["" if row.get(c) is None else str(row[c]) for c in columns] for row in rows]
    numeric = [bool(cells) and all(_numeric(line[i]) for line in cells) for i in range(len(columns))]
    heads = [Column(c.replace("_", " "), right=numeric[i]) for i, c in enumerate(columns)]
    echo_lines([title, *render(heads, cells, width=terminal_width())])


def _numeric(text: str) -> bool:
    return text == "" or text.replace(",", "").replace(".", "").lstrip("-").isdigit()
