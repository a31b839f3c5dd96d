"""`dunning hold / arrange / note`: what the bookkeeper records in an invoice's history (`connector.casebook`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from connector.cli.base import AsOf, ConnectionName, InvoiceRef, app, application, exit_codes, parse_date
from connector.logs import error_line


@app.command()
def hold(
    ctx: typer.Context,
    invoice: InvoiceRef,
    connection: ConnectionName = None,
    dispute: Annotated[bool, typer.Option("--dispute", help="The debtor disputes it: pause until released.")] = False,
    promise: Annotated[
        date | None,
        typer.Option("--promise", parser=parse_date, metavar="YYYY-MM-DD", help="Promised to pay by this date."),
    ] = None,
    exclude: Annotated[bool, typer.Option("--exclude", help="Never escalate this invoice.")] = False,
    release: Annotated[bool, typer.Option("--release", help="End the hold; escalation resumes.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the history.")] = None,
    as_of: AsOf = None,
) -> None:
    """Pause escalation of an invoice: a dispute, a promise to pay, or an exclusion."""
    chosen = [flag for flag, on in (("--dispute", dispute), ("--promise", promise), ("--exclude", exclude),
                                    ("--release", release)) if on]
    if len(chosen) != 1:
        error_line("dunning hold: give exactly one of --dispute, --promise YYYY-MM-DD, --exclude, --release")
        raise typer.Exit(2)
    app_ = application(ctx)
    on = as_of or app_.today()
    with exit_codes():
        if release:
            found = app_.release(invoice, on, connection=connection, reason=reason)
        else:
            kind = "dispute" if dispute else "promise" if promise else "excluded"
            found = app_.hold(invoice, kind, on, connection=connection, until=promise, reason=reason)
    typer.echo(f"invoice {found.label} ({found.connection}): {chosen[0].lstrip('-')} recorded on {on}")


@app.command()
def arrange(
    ctx: typer.Context,
    invoice: InvoiceRef,
    instalment: Annotated[
        list[str] | None,
        typer.Option("--instalment", metavar="YYYY-MM-DD:AMOUNT", help="One instalment (repeatable)."),
    ] = None,
    end: Annotated[bool, typer.Option("--end", help="End the arrangement.")] = False,
    connection: ConnectionName = None,
    as_of: AsOf = None,
    down_payment: Annotated[
        str | None,
        typer.Option("--down-payment", metavar="YYYY-MM-DD:AMOUNT", help="A down payment before the instalments."),
    ] = None,
    partial: Annotated[
        bool,
        typer.Option("--partial", help="The instalments cover only part of what is outstanding; the rest goes on "
                     "being chased."),
    ] = False,
) -> None:
    """Record a payment arrangement (instalments with dates and amounts)."""
    if end and (instalment or down_payment):
        error_line("dunning arrange: --end cannot be combined with --instalment or --down-payment")
        raise typer.Exit(2)
    app_ = application(ctx)
    on = as_of or app_.today()
    with exit_codes():
        if end:
            found = app_.end_arrangement(invoice, on, connection=connection)
        else:
            found = app_.arrange(invoice, instalment or [], on, connection=connection, down_payment=down_payment,
                                 partial=partial)
    what = "arrangement ended" if end else "arrangement recorded"
    typer.echo(f"invoice {found.label} ({found.connection}): {what} on {on}")


@app.command()
def note(
    ctx: typer.Context,
    invoice: InvoiceRef,
    text: Annotated[str, typer.Argument(help="The note, e.g. what the debtor said on the phone.")],
    connection: ConnectionName = None,
    as_of: AsOf = None,
) -> None:
    """Add a call note to an invoice's history."""
    app_ = application(ctx)
    on = as_of or app_.today()
    with exit_codes():
        found, _ = app_.note(invoice, text, on, connection=connection)
    typer.echo(f"invoice {found.label} ({found.connection}): note recorded on {on}")
