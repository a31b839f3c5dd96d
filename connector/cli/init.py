"""`dunning init`: a commented starter config."""

from __future__ import annotations

from typing import Annotated

import typer

from connector.cli.base import app, application, exit_codes


@app.command()
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config file.")] = False,
) -> None:
    """Write a commented starter config (to --config, default ./dunning.toml)."""
    with exit_codes():
        path = application(ctx).init(force=force)
    typer.echo(f"Wrote {path}. Fill in [creditor], then connect an administration with: dunning setup")
