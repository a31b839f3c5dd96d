"""`dunning demo`: the whole product against the built-in simulators, on a virtual clock, in one command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from connector.cli.base import LangOption, app, options


@app.command()
def demo(
    ctx: typer.Context,
    dir_: Annotated[
        Path | None, typer.Option("--dir", metavar="DIR", help="Where the demo writes its config, store and files "
                                  "(default: ./dunning-demo; a later demo there starts clean).")
    ] = None,
    days: Annotated[int, typer.Option("--days", metavar="N", min=1, max=366, help="Simulate this many days.")] = 90,
    lang: LangOption = None,
) -> None:
    """The whole product against the built-in simulators, on a virtual clock: no account, no network."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from connector.demo import DemoRefused, describe, run_demo
    from connector.logs import setup_logging

    setup_logging(options(ctx).log_format.value, level=logging.WARNING)  # the figures at the end tell the story
    folder = dir_ or Path("dunning-demo")
    bar = Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("days"),
                   disable=not sys.stderr.isatty(), transient=True)
    try:
        with bar:
            task = bar.add_task("days", total=days)
            result = run_demo(folder, days=days, on_day=lambda done, _total: bar.update(task, completed=done))
    except DemoRefused as exc:
        typer.echo(f"dunning demo: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in describe(result, lang):
        typer.echo(line)
    if result.failed_days:
        raise typer.Exit(1)
