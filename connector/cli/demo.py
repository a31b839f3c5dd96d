"""`dunning demo`: the whole product against the built-in simulators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from connector.cli.base import app, not_built


@app.command()
def demo(
    ctx: typer.Context,
    dir_: Annotated[
        Path | None, typer.Option("--dir", help="Where the demo writes its config, store and files.")
    ] = None,
    days: Annotated[int, typer.Option("--days", metavar="N", min=1, help="Simulate this many days.")] = 90,
) -> None:
    """The whole product against the built-in simulators, on a virtual clock."""
    not_built("demo", "the demo")
