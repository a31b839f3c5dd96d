"""`dunning send`: the due reminders through each platform's own mailing (and letters, tasks, our mail server)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from connector.cli.base import (
    AsOf,
    ConnectionName,
    DryRun,
    Json,
    LangOption,
    app,
    application,
    exit_codes,
    print_table,
)
from connector.cli.progress import progress_display


@app.command()
def send(
    ctx: typer.Context,
    as_of: AsOf = None,
    connection: ConnectionName = None,
    dry_run: DryRun = False,
    limit: Annotated[int | None, typer.Option("--limit", metavar="N", min=0, help="Send at most N.")] = None,
    step: Annotated[str | None, typer.Option("--step", metavar="NAME", help="Only this escalation step.")] = None,
    json_out: Json = False,
    lang: LangOption = None,
) -> None:
    """Send the due reminders through each platform's own mailing; a per-connection summary goes to stderr."""
    from connector.casebook import UsageError
    from connector.delivery import Outcome, send_all
    from connector.escalation.policy import STEP_ORDER

    app_ = application(ctx)
    rows: list[dict[str, object]] = []

    def emit(outcome: Outcome) -> None:
        line = outcome.as_json()
        if json_out:
            typer.echo(json.dumps(line, default=str, ensure_ascii=False))
        else:
            rows.append(line | {"invoices": ", ".join(map(str, line.get("invoice_numbers") or line["invoices"]))})

    with exit_codes():
        app_.check_connection(connection)
        if step is not None and step not in STEP_ORDER:
            raise UsageError(f"--step: unknown step {step!r}; one of {', '.join(STEP_ORDER)}")
        today = as_of or app_.today()
        formats = app_.formats(lang)
        with app_.store() as store, progress_display() as shown:
            tokens = None if dry_run else app_.tokens()  # a dry run reaches no platform (and creates no token store)
            summaries = send_all(app_.config, store, tokens, as_of=today, emit=emit,  # type: ignore[arg-type]
                                 connection=connection, step=step, limit=limit, dry_run=dry_run, progress=shown)
    if not json_out and rows:
        rows = [row | {"reason": formats.text(str(row.get("reason") or ""))} for row in rows]
        print_table(f"{'Would send' if dry_run else 'Sent'} on {formats.date(today)}", rows,
                    ["connection", "debtor_name", "invoices", "step", "channel", "status", "reason"])
    for summary in summaries:
        typer.echo(("(dry run) " if dry_run else "") + summary.line(), err=True)
    if any(not summary.ok for summary in summaries):
        raise typer.Exit(1)
