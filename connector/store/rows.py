"""Rows ↔ models: how debtors and invoices are written to and read back from their tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import String, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from connector.models import Debtor, Invoice, Payment
from connector.store import schema

_Model = TypeVar("_Model", bound=BaseModel)

DEBTOR_FIELDS = (
    "name", "kind", "emails", "phone", "address", "coc_number", "vat_number", "language", "contact_person", "version",
)
INVOICE_FIELDS = (
    "number", "debtor_id", "issue_date", "due_date", "currency", "total", "amount_paid", "outstanding",
    "is_credit_note", "status", "is_open", "payment_url", "reference", "promised_payment_date", "payments",
    "last_modified", "version",
)
_INVOICE_DATES = ("issue_date", "due_date", "promised_payment_date")
_INVOICE_MONEY = ("total", "amount_paid", "outstanding")


def debtor_values(debtor: Debtor) -> dict[str, Any]:
    values = {key: getattr(debtor, key) for key in DEBTOR_FIELDS}
    values["kind"] = debtor.kind.value
    values["emails"] = list(debtor.emails)
    values["address"] = debtor.address.model_dump(mode="json")
    return values


def invoice_values(invoice: Invoice) -> dict[str, Any]:
    values = {key: getattr(invoice, key) for key in INVOICE_FIELDS}
    values["payments"] = _payments_json(invoice.payments)
    return values


def _payments_json(payments: Sequence[Payment]) -> list[dict[str, str]] | None:
    """As the JSON column keeps them (None for none, so an unchanged invoice compares equal)."""
    return [{"on": p.on.isoformat(), "amount": str(p.amount)} for p in payments] or None


def payments_from_column(stored: Any) -> tuple[Payment, ...]:
    """The JSON column's list back as `Payment`s (written from validated ones: no second validation)."""
    if not stored:
        return ()
    if isinstance(stored, str):  # the driver's text where the column is read untyped
        stored = json.loads(stored)
    return tuple(
        _as_stored(Payment, {"on": date.fromisoformat(p["on"]), "amount": Decimal(p["amount"])}) for p in stored
    )


def as_driver_gives(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A date or money column read as the driver gives it (ISO text on SQLite, a date on PostgreSQL; money as its
    exact text), to be parsed once by the reader instead of first by SQLAlchemy's Python result processors."""
    return type_coerce(column, String).label(column.key)


_DEBTOR_KEYS = ("connection", "platform_id", *DEBTOR_FIELDS)
DEBTOR_COLUMNS = tuple(schema.debtors.c[key] for key in _DEBTOR_KEYS)
"""What a `Debtor` is read from, in `_DEBTOR_KEYS` order."""
_INVOICE_KEYS = ("connection", "platform_id", *INVOICE_FIELDS)
INVOICE_COLUMNS = tuple(
    as_driver_gives(column) if key in _INVOICE_DATES + _INVOICE_MONEY else column
    for key in _INVOICE_KEYS
    for column in (schema.invoices.c[key],)
)
"""What an `Invoice` is read from, in `_INVOICE_KEYS` order (no bookkeeping columns: they are not part of it)."""


def debtor_from_row(row: Sequence[Any]) -> Debtor:
    """A debtor from a row selected as `DEBTOR_COLUMNS`."""
    return Debtor.model_validate(dict(zip(_DEBTOR_KEYS, row, strict=True)))


def invoice_from_row(row: Sequence[Any]) -> Invoice:
    """An invoice from a row selected as `INVOICE_COLUMNS`.

    Not validated a second time: every row was written from a validated `Invoice` (`invoice_values`), so only the
    types the driver cannot give back are restored. Validating again cost more than the rest of reading it (the
    planner reads a million invoices at a time); `tests/connector/store` checks a round trip gives an equal model.
    """
    values = dict(zip(_INVOICE_KEYS, row, strict=True))
    for key in _INVOICE_DATES:
        if type(values[key]) is str:  # SQLite's ISO text (PostgreSQL's driver gives a date)
            values[key] = date.fromisoformat(values[key])
    for key in _INVOICE_MONEY:
        values[key] = Decimal(values[key])
    values["payments"] = payments_from_column(values["payments"])
    return _as_stored(Invoice, values)


def _as_stored(model: type[_Model], values: dict[str, Any]) -> _Model:
    """`model.model_construct(**values)` for a value of every field, already of its type: the same model without
    validation, minus model_construct's per-field Python loop (which made it slower than validating)."""
    instance = model.__new__(model)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance
