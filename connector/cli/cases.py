"""`dunning cases`: the handoff cases and their state."""

from __future__ import annotations

import typer

from datetime import date, datetime
from decimal import Decimal

from connector.cli.base import Json, LangOption, app, application, exit_codes, print_json_lines, print_table


@app.command()
def cases(ctx: typer.Context, json_out: Json = False, lang: LangOption = None) -> None:
    """The handoff cases and their state (exported, held back, uploaded), with what a held-back case misses."""
    from connector.handoff.commands import case_rows

    app_ = application(ctx)
    with exit_codes(), app_.store() as store:
        rows = case_rows(store)
        formats = app_.formats(lang)
    if json_out:
        print_json_lines(rows)
        return
    if not rows:
        typer.echo("No handoff cases yet (`dunning export` creates them once invoices reach the handoff step).")
        return
    shown = [row | {"invoices": ", ".join(row["invoice_numbers"]),
                    "status": row["status"].replace("_", " ") + (" (upload failed)" if row["upload_error"] else ""),
                    "exported_at": formats.date(_day(row["exported_at"])),
                    "total": formats.money(Decimal(row["total"]), row["currency"]) if row["total"] else ""}
             for row in rows]
    print_table("Handoff cases", shown, ["case", "debtor_name", "invoices", "status", "exported_at", "total"])
    for row in rows:  # in full, not cut at the terminal's width
        if row["status"] == "held_back":
            typer.echo(f"{row['case']} held back, missing: {'; '.join(row['missing'])}")
        elif row["folder"]:
            typer.echo(f"{row['case']} in {row['folder']}")
        if row["upload_error"]:
            typer.echo(f"{row['case']} upload failed: {row['upload_error']}")


def _day(moment: str | None) -> date | None:
    """The day of an ISO moment (`exported_at`, UTC), for the table."""
    return datetime.fromisoformat(moment).date() if moment else None
