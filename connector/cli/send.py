"""`dunning send`: the due reminders through each platform's own mailing."""

from __future__ import annotations

from typing import Annotated

import typer

from connector.cli.base import AsOf, ConnectionName, DryRun, Json, app, not_built


@app.command()
def send(
    ctx: typer.Context,
    as_of: AsOf = None,
    connection: ConnectionName = None,
    dry_run: DryRun = False,
    limit: Annotated[int | None, typer.Option("--limit", metavar="N", min=0, help="Send at most N.")] = None,
    step: Annotated[str | None, typer.Option("--step", metavar="NAME", help="Only this escalation step.")] = None,
    json_out: Json = False,
) -> None:
    """Send the due reminders through each platform's own mailing."""
    not_built("send", "reminder delivery")
