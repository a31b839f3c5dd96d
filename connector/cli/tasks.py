"""`dunning tasks` / `dunning task done ID`: the open call, letter and refused-reminder tasks."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from connector.cli.base import AsOf, DunningGroup, Json, LangOption, app, application, exit_codes, parse_date, print_json_lines, print_table

task_app = typer.Typer(name="task", cls=DunningGroup, help="Work on one task.", no_args_is_help=True)
app.add_typer(task_app)


@app.command()
def tasks(ctx: typer.Context, as_of: AsOf = None, json_out: Json = False, lang: LangOption = None) -> None:
    """The open call, letter and refused-reminder tasks, with the debtor's dossier (a task whose invoices have all
    closed since, closes itself first; one closed so whose invoice is open again, opens again)."""
    from connector.delivery import close_settled, open_tasks, reopen_unsettled

    app_ = application(ctx)
    with exit_codes(), app_.store() as store:
        reopen_unsettled(store, on=as_of or app_.today())
        close_settled(store, on=as_of or app_.today())
        found = open_tasks(store)
        formats = app_.formats(lang)
    if json_out:
        print_json_lines(task.as_json() for task in found)
        return
    if not found:
        typer.echo("No open tasks.")
        return
    rows = [task.as_json() | {"invoices": ", ".join(task.invoice_numbers or task.invoices),
                              "since": formats.date(date.fromisoformat(task.created_on)) if task.created_on else "",
                              "reason": formats.text(task.reason)}
            for task in found]
    print_table("Open tasks", rows, ["id", "kind", "connection", "invoices", "step", "since", "reason"])
    for task in found:
        if task.dossier or task.letter:
            typer.echo(f"\nTask {task.id} ({task.kind}){': ' + task.letter if task.letter else ''}")
            for line in task.dossier:
                typer.echo(f"  {formats.text(line)}")


@task_app.command("done")
def task_done(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task's id (see dunning tasks).")],
    sent_on: Annotated[
        date | None,
        typer.Option("--sent-on", parser=parse_date, metavar="YYYY-MM-DD",
                     help="The day a letter was posted, or a refused reminder sent by hand (default: today)."),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="What was done (kept in the invoice's history).")] = None,
    as_of: AsOf = None,
) -> None:
    """Close a task (a letter, or a reminder the platform refused and you sent yourself: with the day it went, from
    which its terms count)."""
    from connector.casebook import UsageError
    from connector.delivery import complete_task

    app_ = application(ctx)
    with exit_codes():
        if not task_id.isdigit():
            raise UsageError(f"task {task_id!r}: a task id is a number (see dunning tasks)")
        with app_.store() as store:
            task = complete_task(store, int(task_id), on=as_of or app_.today(), sent_on=sent_on, note=note)
    when = f", sent on {sent_on}" if sent_on and task.kind == "letter" else ""
    typer.echo(f"Task {task.id} ({task.kind}, {', '.join(task.invoice_numbers or task.invoices)}) done{when}.")
