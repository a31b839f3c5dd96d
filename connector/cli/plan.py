"""`dunning plan`: the actions due, with reasons."""

from __future__ import annotations

from datetime import date

import typer

from connector.cli.base import AsOf, ConnectionName, Json, app, application, exit_codes, print_json_lines, print_table


@app.command()
def plan(ctx: typer.Context, as_of: AsOf = None, connection: ConnectionName = None, json_out: Json = False) -> None:
    """The actions due (reminders, calls, letters, handoffs), with reasons, grouped by debtor."""
    app_ = application(ctx)
    today = as_of or date.today()
    with exit_codes():
        actions = app_.plan(today, connection=connection)
        if json_out:
            print_json_lines(action.as_json() for action in actions)
            return
        rows, previous = [], None
        for action in actions:
            debtor = (action.connection, action.debtor_id)
            rows.append(
                {
                    "debtor": f"{action.debtor_name} ({action.connection})" if debtor != previous else "",
                    "invoices": ", ".join(action.invoice_numbers),
                    "step": action.step,
                    "channel": action.channel.value,
                    "due_on": action.due_on.isoformat(),
                    "outstanding": f"{action.currency} {action.outstanding:,.2f}",
                    "costs": None if action.costs is None else f"{action.costs:,.2f}",
                    "reason": action.reason,
                }
            )
            previous = debtor
    if not rows:
        typer.echo(f"Nothing due on {today}.")
        return
    print_table(f"Actions due on {today}", rows,
                ["debtor", "invoices", "step", "channel", "due_on", "outstanding", "costs", "reason"])
