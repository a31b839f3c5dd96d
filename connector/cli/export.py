"""`dunning export`: hand the cases past the last step to the collection agency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from connector.cli.base import AsOf, Json, LangOption, app, application, exit_codes, print_json_lines, print_table
from connector.cli.progress import progress_display


@app.command()
def export(
    ctx: typer.Context,
    as_of: AsOf = None,
    agency: Annotated[
        str | None,
        typer.Option("--agency", metavar="NAME", help="The agency format (default: [handoff] agency): a name in "
                     "mappings/agencies/ or the path of your own .toml file."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="Where the export folder goes (default: [handoff] "
                                  "out_dir).")
    ] = None,
    zip_: Annotated[bool, typer.Option("--zip", help="Deliver the export as one zip archive, not a folder.")] = False,
    again: Annotated[
        str | None, typer.Option("--again", metavar="CASE", help="Export this case again (see `dunning cases`).")
    ] = None,
    json_out: Json = False,
    lang: LangOption = None,
) -> None:
    """Hand the cases past the last step to the collection agency: the data file in the agency's format, the
    invoice PDFs and our letters, and a manifest with SHA-256 hashes; each case once. A case missing what the format
    requires is held back with the list (exit 1); the rest go out."""
    from connector.handoff.commands import export as run_export

    app_ = application(ctx)
    today = as_of or app_.today()
    with exit_codes(), progress_display() as shown:
        result = run_export(app_, today, agency=agency, out=out, as_zip=zip_, again=again, progress=shown)
        formats = app_.formats(lang)
    if json_out:
        print_json_lines(outcome.as_json() for outcome in result.outcomes)
    elif not result.outcomes:
        typer.echo(f"No case is due for the collection agency on {formats.date(today)}.")
    else:
        rows = [o.as_json() | {"invoices": ", ".join(o.invoice_numbers),
                               "total": formats.money(o.claim["total"], o.currency) if o.status != "held_back" else ""}
                for o in result.outcomes]
        print_table(f"Cases for the collection agency on {formats.date(today)}", rows,
                    ["case", "connection", "debtor_name", "invoices", "status", "total"])
    for outcome in result.outcomes:
        if outcome.status == "held_back":
            # the debtor by its id: error output carries no personal data
            typer.echo(f"case {outcome.case} ({outcome.connection}, debtor {outcome.debtor}): held back, missing: "
                       + "; ".join(outcome.missing), err=True)
        for warning in outcome.warnings:
            typer.echo(f"case {outcome.case}: warning: {warning}", err=True)
    if result.path is not None:
        exported = sum(1 for o in result.outcomes if o.status != "held_back")
        typer.echo(f"{exported} case(s) written to {result.path}"
                   + (f", uploaded to {result.uploaded_to}" if result.uploaded_to else ""), err=True)
    if result.upload_error:
        typer.echo(f"{result.upload_error}; the export stays in {result.path} and its cases are offered again by the "
                   "next export", err=True)
    if not result.ok:
        raise typer.Exit(1)
