"""`dunning export`: hand the cases past the last step to the collection agency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from connector.cli.base import AsOf, Json, app, not_built


@app.command()
def export(
    ctx: typer.Context,
    as_of: AsOf = None,
    agency: Annotated[str | None, typer.Option("--agency", metavar="NAME", help="The agency format.")] = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="DIR", help="The output folder.")] = None,
    zip_: Annotated[bool, typer.Option("--zip", help="Also pack the files into one zip.")] = False,
    again: Annotated[str | None, typer.Option("--again", metavar="CASE", help="Export this case again.")] = None,
    json_out: Json = False,
) -> None:
    """Hand the cases past the last step to the collection agency (files + manifest)."""
    not_built("export", "the collection agency handoff")
