"""`dunning plan`: the actions due, as a compact table sorted by connection, debtor and step, with totals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import Annotated

import typer

from connector.cli.base import (
    AsOf,
    ConnectionName,
    Json,
    LangOption,
    Tsv,
    app,
    application,
    exit_codes,
    print_json_lines,
)
from connector.cli.output import Column, echo_lines, render, terminal_width
from connector.escalation.action import Action
from connector.escalation.policy import STEP_ORDER
from connector.formatting import Formats
from connector.logs import error_line

Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="The full reason of each action.")]

COLUMNS = (
    Column("connection"), Column("debtor"), Column("invoices"), Column("step"), Column("channel"), Column("due"),
    Column("outstanding", right=True), Column("costs", right=True), Column("reason"),
)
_STEP_INDEX = {step: index for index, step in enumerate(STEP_ORDER)}


@app.command()
def plan(
    ctx: typer.Context,
    as_of: AsOf = None,
    connection: ConnectionName = None,
    json_out: Json = False,
    verbose: Verbose = False,
    lang: LangOption = None,
    tsv: Tsv = False,
) -> None:
    """The actions due (reminders, calls, letters, handoffs), with reasons, grouped by debtor."""
    app_ = application(ctx)
    today = as_of or app_.today()
    with exit_codes():
        actions = app_.plan(today, connection=connection)
        if json_out:
            print_json_lines(action.as_json() for action in actions)
            return
        ordered = sorted(actions, key=sort_key)
        formats = app_.formats(lang)
    if not ordered:
        typer.echo(f"Nothing due on {formats.date(today)}.")
        return
    echo_lines(plan_lines(ordered, today, formats, verbose=verbose, tsv=tsv, width=terminal_width()))
    for line in warning_lines(ordered):
        error_line(line, level="warning")


def warning_lines(actions: Iterable[Action]) -> list[str]:
    """Each warning once per connection, naming it once (a stale interest table would otherwise repeat per
    action)."""
    return list(dict.fromkeys(f"{a.connection}: warning: {w}" for a in actions for w in a.warnings))


def sort_key(action: Action) -> tuple[str, str, int, date, tuple[str, ...]]:
    return (action.connection, action.debtor_name.casefold(), _STEP_INDEX.get(action.step, 99), action.due_on,
            action.invoice_numbers)


def short_reason(action: Action) -> str:
    """Why, in a few words: how late the oldest invoice is (the step, date and amount have their own columns)."""
    days = max((line.days_overdue for line in action.invoices), default=0)
    when = f"{days} d overdue" if days > 0 else "due today" if days == 0 else f"due in {-days} d"
    if len(action.invoices) > 1:
        when = f"{len(action.invoices)} invoices, oldest {when}"
    if "catching up" in action.reason:
        when += ", catching up"
    return when


def plan_lines(actions: list[Action], today: date, formats: Formats, *, verbose: bool, tsv: bool,
               width: int | None) -> Iterator[str]:
    rows = [
        [
            action.connection,
            action.debtor_name,
            ", ".join(action.invoice_numbers),
            action.step,
            action.channel.value,
            formats.date(action.due_on),
            formats.money(action.outstanding, action.currency),
            formats.money(action.costs, action.currency),
            formats.text(action.reason) if verbose else short_reason(action),
        ]
        for action in actions
    ]
    if not tsv:
        yield f"Actions due on {formats.date(today)}: {formats.number(len(actions))}"
    yield from render(COLUMNS, rows, tsv=tsv, width=width)
    if tsv:
        return  # a script sums the columns itself; totals would be rows of another shape
    yield ""
    yield from totals_lines(actions, formats)


def totals_lines(actions: Iterable[Action], formats: Formats) -> Iterator[str]:
    """Per step (in escalation order) and per currency: how many actions, how much outstanding, what costs."""
    per_step: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])
    per_currency: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])
    for action in actions:
        for bucket in (per_step[(action.step, action.currency)], per_currency[action.currency]):
            bucket[0] += 1
            bucket[1] += action.outstanding
            bucket[2] += action.costs or 0
    step_rows = [
        [step, formats.number(int(count)), formats.money(outstanding, currency), formats.money(costs, currency)]
        for (step, currency), (count, outstanding, costs) in sorted(
            per_step.items(), key=lambda item: (_STEP_INDEX.get(item[0][0], 99), item[0][1]))
    ]
    totals = (Column("actions", right=True), Column("outstanding", right=True), Column("costs", right=True))
    yield "Totals per step"
    yield from render((Column("step"), *totals), step_rows)
    yield ""
    yield "Totals per currency"
    currency_rows = [
        [currency, formats.number(int(count)), formats.money(outstanding, currency), formats.money(costs, currency)]
        for currency, (count, outstanding, costs) in sorted(per_currency.items())
    ]
    yield from render((Column("currency"), *totals), currency_rows)
