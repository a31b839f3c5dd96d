"""Rows ↔ models: how debtors and invoices are written to and read back from their tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import String, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from connector.models import Address, Debtor, DebtorKind, Event, EventKind, Invoice, Payment
from connector.store import schema
from connector.store.columns import ExactDecimal

_Model = TypeVar("_Model", bound=BaseModel)

DEBTOR_FIELDS = (
    "name", "kind", "emails", "phone", "address", "coc_number", "vat_number", "language", "contact_person", "version",
)
INVOICE_FIELDS = (
    "number", "debtor_id", "issue_date", "due_date", "currency", "total", "amount_paid", "outstanding",
    "is_credit_note", "status", "is_open", "payment_url", "reference", "promised_payment_date", "payments",
    "last_modified", "version",
)


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
    if stored is None or stored == "null":  # none given (the JSON column keeps None as JSON null on SQLite)
        return ()
    stored = decoded_json(stored)
    if not stored:
        return ()
    return tuple(
        as_stored(Payment, {"on": date.fromisoformat(p["on"]), "amount": Decimal(p["amount"])}) for p in stored
    )


def as_driver_gives(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A column read as the driver gives it (ISO text on SQLite, a date on PostgreSQL; money as its exact text;
    JSON as text or as the driver decoded it), to be parsed once by the reader instead of first by SQLAlchemy's
    Python result processors (the planner reads a million rows at a time)."""
    return type_coerce(column, String).label(column.key)


def _raw_columns(table: Any, keys: Sequence[str]) -> tuple[ColumnElement[Any], ...]:
    """Every column that SQLAlchemy would post-process (anything but plain text) as the driver gives it."""
    return tuple(
        column if isinstance(column.type, String) and not isinstance(column.type, _PROCESSED) else as_driver_gives(column)
        for key in keys
        for column in (table.c[key],)
    )


_PROCESSED = (ExactDecimal,)
"""Text-stored types with a result processor of their own."""

_DEBTOR_KEYS = ("connection", "platform_id", *DEBTOR_FIELDS)
DEBTOR_COLUMNS = _raw_columns(schema.debtors, _DEBTOR_KEYS)
"""What a `Debtor` is read from, in `_DEBTOR_KEYS` order."""
_INVOICE_KEYS = ("connection", "platform_id", *INVOICE_FIELDS)
INVOICE_COLUMNS = _raw_columns(schema.invoices, _INVOICE_KEYS)
"""What an `Invoice` is read from, in `_INVOICE_KEYS` order (no bookkeeping columns: they are not part of it)."""
_ADDRESS_FIELDS = dict.fromkeys(Address.model_fields)
_ZERO = Decimal("0.00")


def decoded_json(value: Any) -> Any:
    """A JSON column as the driver gives it: text on SQLite, already decoded by PostgreSQL's driver.

    Text the store wrote itself (`json.dumps`: no surrounding blanks) is read by the decoder's C scanner alone,
    without `json.loads`'s Python wrappers (a fifth of reading the open book went into them); anything else, and
    anything the scanner does not consume whole, goes through `json.loads` (which raises on invalid text)."""
    if not isinstance(value, str):
        return value
    try:
        found, end = _scan_json(value, 0)
    except StopIteration:
        return json.loads(value)
    return found if end == len(value) else json.loads(value)


_scan_json = json.JSONDecoder().scan_once


def utc_timestamp(value: Any) -> datetime | None:
    """A `UTCDateTime` column as the driver gives it (SQLite: naive ISO text in UTC) → an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        if value[-6:-5] not in ("+", "-") and value[-1:] != "Z":  # naive: parsed once, with the offset appended
            return datetime.fromisoformat(value + "+00:00")  # several times faster than `.replace(tzinfo=UTC)`
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


EVENT_COLUMNS = _raw_columns(schema.events, ("kind", "on_date", "step", "data", "recorded_at"))
"""What an `Event` is read from."""
_EVENT_KINDS = EventKind._value2member_map_


def event_from_row(row: Sequence[Any]) -> Event:
    """An event from a row selected as `EVENT_COLUMNS` (written from a validated `Event`: not validated again)."""
    kind, on, step, data, recorded_at = row
    return as_stored(Event, {
        "kind": _EVENT_KINDS[kind], "on": date.fromisoformat(on) if type(on) is str else on, "step": step,
        "data": decoded_json(data), "recorded_at": utc_timestamp(recorded_at),
    })


def debtor_from_row(row: Sequence[Any]) -> Debtor:
    """A debtor from a row selected as `DEBTOR_COLUMNS` (written from a validated `Debtor`: not validated again)."""
    values = dict(zip(_DEBTOR_KEYS, row, strict=True))
    values["kind"] = DebtorKind(values["kind"])
    values["emails"] = tuple(decoded_json(values["emails"]))
    address = _ADDRESS_FIELDS | decoded_json(values["address"])
    address["lines"] = tuple(address["lines"] or ())
    values["address"] = as_stored(Address, address)
    return as_stored(Debtor, values)


def invoice_from_row(row: Sequence[Any]) -> Invoice:
    """An invoice from a row selected as `INVOICE_COLUMNS`.

    Not validated a second time: every row was written from a validated `Invoice` (`invoice_values`), so only the
    types the driver cannot give back are restored. Validating again cost more than the rest of reading it (the
    planner reads a million invoices at a time); `tests/connector/store` checks a round trip gives an equal model.
    """
    (connection, platform_id, number, debtor_id, issued, due, currency, total, paid, outstanding, credit_note, status,
     is_open, payment_url, reference, promised, payments, modified, version) = row
    total_amount = Decimal(total)
    return as_stored(Invoice, {
        "connection": connection, "platform_id": platform_id, "number": number, "debtor_id": debtor_id,
        # SQLite gives dates as ISO text and booleans as 0/1; PostgreSQL's driver gives dates and booleans
        "issue_date": date.fromisoformat(issued) if type(issued) is str else issued,
        "due_date": date.fromisoformat(due) if type(due) is str else due,
        "currency": currency, "total": total_amount,
        # most open invoices have nothing paid yet: their amounts share one Decimal each (immutable)
        "amount_paid": _ZERO if paid == "0.00" else Decimal(paid),
        "outstanding": total_amount if outstanding == total else Decimal(outstanding),
        "is_credit_note": bool(credit_note), "status": status, "is_open": bool(is_open), "payment_url": payment_url,
        "reference": reference,
        "promised_payment_date": date.fromisoformat(promised) if type(promised) is str else promised,
        # most invoices have neither: no call for them
        "payments": () if payments is None else payments_from_column(payments),
        "last_modified": None if modified is None else utc_timestamp(modified), "version": version,
    })


def as_stored(model: type[_Model], values: dict[str, Any]) -> _Model:
    """`model.model_construct(**values)` for a value of every field, already of its type: the same model without
    validation, minus model_construct's per-field Python loop (which made it slower than validating).

    Every instance of a model shares one fields-set: it names every field, so the one way pydantic changes it in
    place (`add` on assignment, refused anyway on these frozen models) changes nothing, and `model_copy` copies it.
    """
    instance = _new(model)
    _set(instance, "__dict__", values)
    fields = _ALL_FIELDS.get(model)
    if fields is None:
        fields = _ALL_FIELDS[model] = set(model.model_fields)
    _set_fields(instance, fields)  # BaseModel's own slots, set through their descriptors (a third faster)
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


_new = object.__new__
_set = object.__setattr__
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_ALL_FIELDS: dict[type[BaseModel], set[str]] = {}
