"""`dunning report`: a self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from connector.cli.base import AsOf, ConnectionName, LangOption, app, application, exit_codes


@app.command()
def report(
    ctx: typer.Context,
    as_of: AsOf = None,
    connection: ConnectionName = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Where to write the HTML (default: "
                     "dunning-report-<store>-<date>.html here)."),
    ] = None,
    lang: LangOption = None,
) -> None:
    """A self-contained HTML report of the receivables and the escalation: aging, largest debtors, DSO, what the
    reminders achieve, holds, tasks, cases and what is claimable today. One file, viewable offline and in print."""
    from connector.app import check_plannable
    from connector.plan import connection_capabilities
    from connector.report import build_report, default_file_name

    app_ = application(ctx)
    with exit_codes():
        config = app_.config
        app_.check_connection(connection)
        today = as_of or app_.today()
        check_plannable(today)
        target = out or Path(default_file_name(config.store_url, today))
        if target.is_dir():  # a folder given: the usual name inside it
            target = target / default_file_name(config.store_url, today)
        capabilities = connection_capabilities((c.name, c.provider) for c in config.connections)
        with app_.store() as store:
            build_report(store, config.policy, today, target, store_url=config.store_url, made_at=app_.now(),
                         connection=connection, lang=app_.formats(lang.value if lang else None).lang,
                         capabilities=capabilities)
    typer.echo(f"Report written to {target}")
