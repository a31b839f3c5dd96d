"""The `dunning` command line (contract: shared/reference/cli.md), one module per command or group.

Commands parse, call one function of the application layer (`connector.app`) or of their owner's package, and
print. Importing a module registers its commands on the one typer `app`, in the order `dunning --help` lists them.
"""

from connector.cli import (  # noqa: F401  (imported to register their commands)
    init,
    setup,
    status,
    sync,
    plan,
    send,
    casebook,
    book,
    export,
    run,
    report,
    demo,
    tasks,
    cases,
)
from connector.cli.base import app


def main() -> None:
    app()


__all__ = ["app", "main"]
