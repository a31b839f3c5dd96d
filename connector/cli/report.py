"""`dunning report`: a self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from connector.cli.base import AsOf, app, not_built


@app.command()
def report(
    ctx: typer.Context,
    as_of: AsOf = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="Where to write the HTML.")] = None,
) -> None:
    """A self-contained HTML report of the receivables and the escalation."""
    not_built("report", "the HTML report")
