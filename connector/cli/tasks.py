"""`dunning tasks` / `dunning task done ID`: the open call, letter and refused-reminder tasks."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from connector.cli.base import Json, app, not_built, parse_date

task_app = typer.Typer(name="task", help="Work on one task.", no_args_is_help=True)
app.add_typer(task_app)


@app.command()
def tasks(ctx: typer.Context, json_out: Json = False) -> None:
    """The open call, letter and refused-reminder tasks, with the debtor's dossier."""
    not_built("tasks", "reminder delivery")


@task_app.command("done")
def task_done(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task's id (see dunning tasks).")],
    sent_on: Annotated[
        date | None,
        typer.Option("--sent-on", parser=parse_date, metavar="YYYY-MM-DD", help="The day a letter was posted."),
    ] = None,
) -> None:
    """Close a task (a letter: with the day it was posted)."""
    not_built("task done", "reminder delivery")
