"""The small error hierarchy every platform call maps onto.

Like stripe-python's: few classes a caller can catch, each with a message a bookkeeper can act on. Messages name
the connection and what to do; they never carry a token, a secret or an Authorization header (build them from
safe parts only; `redact` is the last line of defence for text that came from elsewhere).
"""

from __future__ import annotations

import re


class DunningError(Exception):
    """Base of every error Dunning Connector raises on purpose.

    Its parts are separate fields, as stripe-python's errors are: `message` (what happened and what to do, without
    the connection), `connection` (the connection it concerns, if any) and `status` (the platform's HTTP status, if
    any). `str(exc)` is the full one-line message, naming the connection once.
    """

    def __init__(self, message: str, *, connection: str | None = None, status: int | None = None) -> None:
        self.message = redact(message)
        self.connection = connection
        self.status = status
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.connection}: {self.message}" if self.connection else self.message

    def named(self, connection: str) -> str:
        """The one-line message for a report about `connection` (an error of a connection sharing its tokens keeps
        its own name too)."""
        if self.connection in (None, connection):
            return f"{connection}: {self.message}"
        return f"{connection}: {self}"


class AuthorizationExpired(DunningError):
    """The platform no longer accepts this connection's tokens: the user must re-authorise it."""

    def __init__(self, message: str, *, connection: str | None = None) -> None:
        fix = f" Run: dunning setup --reconnect {connection}" if connection else ""
        super().__init__(f"{message}.{fix}" if not message.endswith(".") else f"{message}{fix}", connection=connection)


class RateLimited(DunningError):
    """The platform refused the call for its rate limit. `retry_after` is seconds, or None when unknown.

    `for_the_day` means waiting minutes will not help: the connection stops for this run.
    """

    def __init__(
        self,
        message: str,
        *,
        connection: str | None = None,
        retry_after: float | None = None,
        for_the_day: bool = False,
    ) -> None:
        self.retry_after = retry_after
        self.for_the_day = for_the_day
        super().__init__(message, connection=connection)


class PlatformError(DunningError):
    """The platform refused or failed a call. `retryable` is True for outages (5xx, timeouts)."""

    def __init__(
        self,
        message: str,
        *,
        connection: str | None = None,
        status: int | None = None,
        retryable: bool = False,
    ) -> None:
        self.retryable = retryable
        super().__init__(message, connection=connection, status=status)


class NotFound(PlatformError):
    """The record does not exist (any more) on the platform."""


class BadPlatformData(DunningError):
    """The platform sent something we cannot read as a valid record; the record is skipped and named."""


_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:access|refresh)_token|client_secret|code_verifier|password|authorization)([\"'=:\s]+)[^\s\"'&,}]{4,}"),
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # a JWT
]


def redact(text: str) -> str:
    """Replace anything shaped like a token or secret by `***`."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
        elif pattern.groups == 1:
            text = pattern.sub(lambda m: f"{m.group(1)}***", text)
        else:
            text = pattern.sub("***", text)
    return text


class ReminderRefused(PlatformError):
    """The platform will not send this reminder (wrong status, no e-mail address, daily limit, …).

    Not a failure to retry: the delivery step turns it into a manual task carrying `reason`, never a silent skip.
    """

    def __init__(self, reason: str, *, connection: str | None = None, status: int | None = None,
                 cannot_carry: bool = False) -> None:
        self.reason = redact(reason)
        self.cannot_carry = cannot_carry
        """The platform's mailing cannot carry this step for this invoice (not bad data): another channel may."""
        super().__init__(reason, connection=connection, status=status)


class UsageError(DunningError):
    """A request that cannot be carried out as given (an unknown invoice, a bad instalment, a date out of range):
    nothing was written, exit code 2."""
