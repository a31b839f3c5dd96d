"""`dunning run`: the daily job for a scheduler."""

from __future__ import annotations

from typing import Annotated

import typer

from connector.cli.base import AsOf, ConnectionName, DryRun, LogFormat, app, not_built
from connector.logs import setup_logging


@app.command()
def run(
    ctx: typer.Context,
    as_of: AsOf = None,
    connection: ConnectionName = None,
    dry_run: DryRun = False,
    log_format: Annotated[
        LogFormat | None, typer.Option("--log-format", help="Log lines on stderr as plain text or JSON.")
    ] = None,
) -> None:
    """The daily job for a scheduler: sync, plan, send, export."""
    if log_format is not None:
        setup_logging(log_format.value)
    not_built("run", "the daily run")
