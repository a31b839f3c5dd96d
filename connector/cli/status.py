"""`dunning status`: connections, tenants, last sync and whether one needs re-authorisation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from connector.cli.base import Json, app, application, exit_codes, print_json_lines


@app.command()
def status(ctx: typer.Context, json_out: Json = False) -> None:
    """Connections, tenants, last sync and whether one needs re-authorisation."""
    with exit_codes():
        app_ = application(ctx)
        rows = app_.status()
    if json_out:
        print_json_lines(rows)
    elif not rows:
        typer.echo(f"No connections yet in {app_.config.path}. Connect an administration with: dunning setup")
    else:
        _print_status(rows)


def _print_status(rows: list[dict[str, Any]]) -> None:
    """A row per connection, folded rather than cut at any terminal width; then what needs attention, in full
    (a `dunning setup --reconnect NAME` cut short would be no help)."""
    table = Table(title="Connections", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("name", "provider", "tenant", "last sync (UTC)", "token expires (UTC)", "open", "authorisation"):
        table.add_column(column, overflow="fold")
    for row in rows:
        expires = _moment(row["token_expires_at"]) or ("no expiry" if row["authorisation"] == "ok" else "")
        authorisation = "re-authorise" if row["needs_reauth"] else row["authorisation"]
        table.add_row(row["name"], row["provider"], row["tenant"] or "", _moment(row["last_sync_at"]) or "never",
                      expires, str(row["open_invoices"]), authorisation)
    Console().print(table)
    for row in rows:
        if row["attention"]:
            typer.echo(f"{row['name']}: {row['attention']}")
        for warning in row["platform_warnings"]:
            typer.echo(f"{row['name']}: warning: {warning}")


def _moment(iso: str | None) -> str | None:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M") if iso else None
