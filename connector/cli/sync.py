"""`dunning sync`: pull open receivables and their debtors into the store."""

from __future__ import annotations

from typing import Annotated

import typer

from connector.cli.base import ConnectionName, Json, app, application, exit_codes, print_json_lines, print_table
from connector.cli.progress import progress_display
from connector.logs import error_line


@app.command()
def sync(
    ctx: typer.Context,
    connection: ConnectionName = None,
    full: Annotated[
        bool,
        typer.Option("--full", help="Ignore the stored cursors and re-read everything now (also done every "
                     "[sync] full_every_days)."),
    ] = False,
    json_out: Json = False,
) -> None:
    """Pull open receivables and their debtors from the platforms into the store."""
    from connector.sync import failed

    app_ = application(ctx)
    with exit_codes():
        with progress_display() as shown:
            summaries = app_.sync(connection=connection, full=full, progress=shown)
        if not summaries:
            error_line(f"No connections in {app_.config.path} to sync. Connect one with: dunning setup",
                       level="warning")
            return
    if json_out:
        print_json_lines(s.as_json() for s in summaries)
    else:
        rows = [s.as_json() | {"kind": "full" if s.full else "changes",
                               "result": "failed" if not s.ok else f"{len(s.anomalies)} kept open, see log"
                               if s.anomalies else "ok"}
                for s in summaries]
        print_table("Sync", rows, ["connection", "kind", "fetched", "changed", "closed", "api_calls", "result"])
    if failed(summaries):
        raise typer.Exit(1)
