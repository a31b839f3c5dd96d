"""How the wizard stops: one error with the exit code cli.md gives it."""

from __future__ import annotations

from providers.errors import DunningError


class SetupFailed(DunningError):
    """The wizard stopped; nothing was written. `exit_code` follows cli.md (2: usage/config, 1: platform side)."""

    def __init__(self, message: str, *, connection: str | None = None, exit_code: int = 1) -> None:
        self.exit_code = exit_code
        super().__init__(message, connection=connection)


def usage(message: str, connection: str | None = None) -> SetupFailed:
    """A problem with what was asked (flags, answers, the config file): exit 2, nothing touched a platform."""
    return SetupFailed(message, connection=connection, exit_code=2)
