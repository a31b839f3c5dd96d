"""`dunning status`: connections, tenants, last sync and whether one needs re-authorisation.

Exits 1 when a connection needs re-authorisation, so monitoring can act on it (as `gh auth status` does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from connector.cli.base import Json, LangOption, Tsv, app, application, exit_codes, print_json_lines
from connector.cli.output import Column, echo_lines, render
from connector.formatting import Formats

COLUMNS = (Column("name"), Column("provider"), Column("tenant"), Column("last sync (UTC)"),
           Column("token expires (UTC)"), Column("open", right=True), Column("authorisation"))


@app.command()
def status(ctx: typer.Context, json_out: Json = False, lang: LangOption = None, tsv: Tsv = False) -> None:
    """Connections, tenants, last sync and whether one needs re-authorisation (then exit 1)."""
    with exit_codes():
        app_ = application(ctx)
        rows = sorted(app_.status(), key=lambda row: row["name"])
        formats = app_.formats(lang) if not json_out else None
    if json_out:
        print_json_lines(rows)
    elif not rows:
        typer.echo(f"No connections yet in {app_.config.path}. Connect an administration with: dunning setup")
    else:
        assert formats is not None
        echo_lines(status_lines(rows, formats, tsv=tsv))
    if any(row["needs_reauth"] for row in rows):
        raise typer.Exit(1)


def status_lines(rows: list[dict[str, Any]], formats: Formats, *, tsv: bool = False) -> list[str]:
    """A row per connection, every value whole; then what needs attention, in full (a `dunning setup --reconnect
    NAME` cut short would be no help)."""
    table = []
    for row in rows:
        expires = _moment(row["token_expires_at"], formats) or ("no expiry" if row["authorisation"] == "ok" else "")
        table.append([row["name"], row["provider"], row["tenant"] or "", _moment(row["last_sync_at"], formats)
                      or "never", expires, formats.number(row["open_invoices"]),
                      "re-authorise" if row["needs_reauth"] else row["authorisation"]])
    lines = list(render(COLUMNS, table, tsv=tsv))
    if tsv:
        return lines
    for row in rows:
        if row["attention"]:
            lines.append(f"{row['name']}: {formats.text(row['attention'])}")  # its days as the table's own
        lines.extend(f"{row['name']}: warning: {warning}" for warning in row["platform_warnings"])
    return lines


def _moment(iso: str | None, formats: Formats) -> str | None:
    return formats.moment(datetime.fromisoformat(iso).astimezone(UTC)) if iso else None
