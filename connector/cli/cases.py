"""`dunning cases`: the handoff cases and their state."""

from __future__ import annotations

import typer

from connector.cli.base import Json, app, not_built


@app.command()
def cases(ctx: typer.Context, json_out: Json = False) -> None:
    """The handoff cases and their state (exported, held back, uploaded)."""
    not_built("cases", "the collection agency handoff")
