"""Database errors leave the store as a `StoreError` that names the operation and the connection, nothing more.

SQLAlchemy's messages carry the SQL statement, its parameters and the server's detail line (`Key (name)=(Jansen
B.V.) already exists`): debtors' names, addresses and amounts would end up in logs, `--json` output and tracebacks.
`guard_public_methods` wraps every public method of the store so no such text gets out; the original exception is
dropped (`from None`), so a logged traceback does not show it either.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from connector.store.errors import StoreError

_CONNECTION_PARAMETERS = ("connection", "name")


def database_error(exc: SQLAlchemyError, operation: str, connection: str | None) -> StoreError:
    """A `StoreError` for `exc` saying what failed in words a bookkeeper can pass on, without SQL or data."""
    if isinstance(exc, IntegrityError):
        reason = "a record conflicts with one already in the store (perhaps written by another run at the same time)"
    elif isinstance(exc, OperationalError):
        reason = "the database is unreachable, locked or out of space"
    else:
        reason = f"a database error ({type(exc).__name__})"
    code = getattr(getattr(exc, "orig", None), "sqlstate", None) if isinstance(exc, DBAPIError) else None
    detail = f" [SQLSTATE {code}]" if code else ""
    return StoreError(
        f"the store could not {operation}: {reason}{detail}; that step changed nothing, try again",
        connection=connection,
    )


def guard_public_methods(cls: type) -> None:
    """Wrap each public method of `cls` (own or inherited) so SQLAlchemy errors become `database_error`s."""
    for attribute in dir(cls):
        if attribute.startswith("_"):
            continue
        method = inspect.getattr_static(cls, attribute)
        if isinstance(method, (staticmethod, classmethod, property)) or not inspect.isfunction(method):
            continue
        setattr(cls, attribute, _guarded(method, attribute.replace("_", " ")))


def _guarded(method: Callable[..., Any], operation: str) -> Callable[..., Any]:
    connection_at = _connection_position(method)

    def connection_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        if connection_at is None:
            return None
        name, position = connection_at
        value = kwargs.get(name, args[position] if position < len(args) else None)
        return value if isinstance(value, str) else None

    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from method(self, *args, **kwargs)
            except SQLAlchemyError as exc:
                raise database_error(exc, operation, connection_of(args, kwargs)) from None

        return generator

    @functools.wraps(method)
    def plain(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except SQLAlchemyError as exc:
            raise database_error(exc, operation, connection_of(args, kwargs)) from None

    return plain


def _connection_position(method: Callable[..., Any]) -> tuple[str, int] | None:
    """Where the connection name is among the method's arguments (after self), if it takes one."""
    parameters = list(inspect.signature(method).parameters)[1:]
    for name in _CONNECTION_PARAMETERS:
        if name in parameters:
            return name, parameters.index(name)
    return None
