"""`dunning invoices` and `dunning history INVOICE`: the open book and one invoice's history, from the store."""

from __future__ import annotations

from typing import Annotated

import typer

from connector.book import describe_event, event_json
from connector.cli.base import (
    AsOf,
    ConnectionName,
    InvoiceRef,
    Json,
    LangOption,
    Tsv,
    app,
    application,
    exit_codes,
    print_json_lines,
)
from connector.cli.output import Column, echo_lines, render, terminal_width

INVOICE_COLUMNS = (
    Column("connection"), Column("invoice"), Column("debtor"), Column("due"), Column("days", right=True),
    Column("outstanding", right=True), Column("stage"), Column("next step"),
)


@app.command()
def invoices(
    ctx: typer.Context,
    connection: ConnectionName = None,
    step: Annotated[
        str | None, typer.Option("--step", metavar="STEP", help="Only invoices at this stage (e.g. reminder_1).")
    ] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only invoices past their due date.")] = False,
    as_of: AsOf = None,
    json_out: Json = False,
    lang: LangOption = None,
    tsv: Tsv = False,
) -> None:
    """The open book: each open invoice with its stage and next step."""
    app_ = application(ctx)
    today = as_of or app_.today()
    with exit_codes():
        lines = app_.invoices(today, connection=connection, step=step, overdue=overdue)
        if json_out:
            print_json_lines(line.as_json() for line in lines)
            return
        found = sorted(lines, key=lambda line: (line.invoice.connection, line.debtor.name.casefold(),
                                                line.invoice.due_date, line.invoice.number))
        formats = app_.formats(lang)
    if not found:
        typer.echo("No open invoices" + (" at that stage." if step else "."))
        return
    rows = []
    for line in found:
        upcoming = line.next_step or "-"
        if line.hold:
            upcoming = f"on hold ({formats.text(line.hold)})"
        elif line.due_today:
            upcoming += " (due today)"
        rows.append([line.invoice.connection, line.invoice.number, line.debtor.name, formats.date(line.invoice.due_date),
                     formats.number(line.days_overdue), formats.money(line.invoice.outstanding, line.invoice.currency),
                     line.stage or "-", upcoming])
    echo_lines(render(INVOICE_COLUMNS, rows, tsv=tsv, width=terminal_width()))


@app.command()
def history(
    ctx: typer.Context,
    invoice: InvoiceRef,
    connection: ConnectionName = None,
    json_out: Json = False,
    lang: LangOption = None,
) -> None:
    """One invoice's history: events, holds, arrangements, notes and reminders sent with their receipts."""
    app_ = application(ctx)
    with exit_codes():
        found, events = app_.history(invoice, connection=connection)
        formats = app_.formats(lang) if not json_out else None
    if json_out:
        print_json_lines(event_json(event) for event in events)
        return
    assert formats is not None
    typer.echo(f"invoice {found.label} ({found.connection}): {formats.money(found.outstanding, found.currency)} "
               f"outstanding of {formats.money(found.total, found.currency)}, due {formats.date(found.due_date)}"
               + ("" if found.is_open else ", closed"))
    if not events:
        typer.echo("No history yet.")
        return
    rows = [[formats.date(event.on), event.kind.value, formats.text(describe_event(event))] for event in events]
    echo_lines(render((Column("on"), Column("what"), Column("details")), rows, width=terminal_width()))
