"""`dunning run`: the daily job for a scheduler (sync → plan → send → export for every connection).

Exit codes: 0 every connection's day went through; 1 a connection, reminder or case failed (the rest went through);
2 usage or configuration error (nothing touched a platform); 75 another run is working on the same store (this one
did nothing; docs/deployment.md).
"""

from __future__ import annotations

from typing import Annotated

import typer

from connector.cli.base import AsOf, ConnectionName, DryRun, Json, LogFormat, app, application, exit_codes, options
from connector.logs import setup_logging


@app.command()
def run(
    ctx: typer.Context,
    as_of: AsOf = None,
    connection: ConnectionName = None,
    dry_run: DryRun = False,
    json_out: Json = False,
    log_format: Annotated[
        LogFormat | None, typer.Option("--log-format", help="Log lines on stderr as plain text or JSON.")
    ] = None,
) -> None:
    """The daily job for a scheduler: sync, plan, send, export; every connection at once, one run per store.

    Exit 0 all done, 1 a connection, reminder or case failed (the rest went through), 2 usage or configuration
    error, 75 another run is working on this store (nothing done). Recipes: docs/deployment.md.
    """
    from connector.cli.progress import LogProgress, progress_display
    from connector.job import exit_code, run_job
    from connector.progress import Progress
    from connector.run_display import print_summary, summary_json_lines
    from connector.store.runlock import ALREADY_RUNNING_EXIT, AlreadyRunning

    if log_format is not None:
        setup_logging(log_format.value)
    app_ = application(ctx)
    json_logs = (log_format or options(ctx).log_format) is LogFormat.JSON
    with exit_codes():
        app_.check_connection(connection)
        config = app_.config
        if not config.connections:
            typer.echo(f"No connections in {config.path} to run. Connect one with: dunning setup", err=True)
            return
        try:
            with app_.store() as store, progress_display(quiet=json_logs) as shown:
                progress: Progress = LogProgress() if json_logs else shown  # JSON logs: lines, never bars
                summary = run_job(config, store, app_.tokens(), as_of=as_of or app_.today(), connection=connection,
                                  dry_run=dry_run, progress=progress)
        except AlreadyRunning as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(ALREADY_RUNNING_EXIT) from None
    if json_out:
        for line in summary_json_lines(summary):
            typer.echo(line)
    else:
        print_summary(summary)
    raise typer.Exit(exit_code(summary))
