"""The canonical, platform-neutral model every part of Dunning Connector speaks.

Adapters translate platform JSON into these types (in their `mapping.py`); the store, the planner and the exports
only ever see these. They are immutable so a value read from a platform cannot be changed behind the planner's
back, and strict about money: amounts are `Decimal` (a float is refused, it cannot be exact to the cent) with an
ISO-4217 currency.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
    validate_email,
)
from pydantic_core import PydanticCustomError


def check_email(address: str) -> str:
    """`address` as given, if pydantic's e-mail type (email-validator, no DNS lookup) accepts it."""
    try:
        validate_email(address)
    except PydanticCustomError:
        raise ValueError(f"{address!r} is not an e-mail address") from None
    return address


def _no_float(value: Any) -> Any:
    """Money must arrive as text, int or Decimal: a float has already lost the cents' exactness."""
    if isinstance(value, float):
        raise ValueError("money must be given as a decimal string or Decimal, not a float")
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("money must be a finite amount")
    return value


Money = Annotated[Decimal, BeforeValidator(_no_float), AfterValidator(_finite)]
"""An exact amount in the invoice's currency (never a float)."""


@functools.lru_cache(maxsize=512)
def _is_currency(code: str) -> bool:
    """Cached: every invoice of a sync asks the same few codes."""
    return pycountry.currencies.get(alpha_3=code) is not None


@functools.lru_cache(maxsize=512)
def _is_country(code: str) -> bool:
    return pycountry.countries.get(alpha_2=code) is not None


def _currency(code: str) -> str:
    code = code.strip().upper()
    if not _is_currency(code):
        raise ValueError(f"unknown currency {code!r} (expected an ISO-4217 code such as EUR)")
    return code


def _country(code: str | None) -> str | None:
    if code is None or not code.strip():
        return None
    code = code.strip().upper()
    if not _is_country(code):
        raise ValueError(f"unknown country {code!r} (expected an ISO-3166 alpha-2 code such as NL)")
    return code


CurrencyCode = Annotated[str, AfterValidator(_currency)]
CountryCode = Annotated[str | None, AfterValidator(_country)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class DebtorKind(StrEnum):
    """Business debtors owe commercial interest and EUR 40 at once; consumers first get the 14-day letter."""

    BUSINESS = "business"
    CONSUMER = "consumer"


class Address(_Frozen):
    lines: tuple[str, ...] = ()
    postal_code: str | None = None
    city: str | None = None
    region: str | None = None
    country: CountryCode = None
    attention: str | None = None


class Debtor(_Frozen):
    """A customer who owes money, as one platform knows them."""

    connection: str
    platform_id: str
    name: str = Field(min_length=1)
    kind: DebtorKind
    emails: tuple[str, ...] = ()
    phone: str | None = None
    address: Address = Address()
    coc_number: str | None = None
    """Chamber of Commerce (KvK / KBO) number."""
    vat_number: str | None = None
    language: str | None = None
    """ISO-639-1 code (nl, en, fr) where the platform has one; texts fall back to the policy's default."""
    contact_person: str | None = None
    version: str | None = None
    """The platform's change marker (a version number or timestamp), for incremental sync."""

    @field_validator("emails")
    @classmethod
    def _plausible_emails(cls, emails: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(e.strip() for e in emails if e and e.strip())
        for email in cleaned:
            check_email(email)
        return cleaned

    @field_validator("language")
    @classmethod
    def _language(cls, language: str | None) -> str | None:
        if not language:
            return None
        return language.strip().lower()[:2]


class Payment(_Frozen):
    """One payment the platform recorded on an invoice, on the day the platform says it was paid."""

    on: date
    amount: Money
    """In the invoice's currency."""


class Invoice(_Frozen):
    """An open (or just closed) sales invoice, with what is still owed on it."""

    connection: str
    platform_id: str
    number: str | None
    """The human invoice number; None for the rare platform record that has none yet."""
    debtor_id: str
    issue_date: date
    due_date: date
    currency: CurrencyCode
    total: Money
    amount_paid: Money
    outstanding: Money
    is_credit_note: bool = False
    status: str
    """The platform's own status, verbatim (AUTHORISED, late, …): for the dossier, never for decisions."""
    is_open: bool = True
    """False once the platform says it is paid, voided, deleted or otherwise no longer collectable."""
    payment_url: str | None = None
    reference: str | None = None
    promised_payment_date: date | None = None
    """A payment date the platform recorded (Xero's ExpectedPaymentDate): becomes a promise-to-pay hold."""
    payments: tuple[Payment, ...] = ()
    """The payments the platform records with their dates (interest follows the money day by day); empty where the
    platform gives none: then `amount_paid` counts as paid before the due date."""
    last_modified: datetime | None = None
    version: str | None = None

    @field_validator("last_modified")
    @classmethod
    def _aware(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("last_modified must carry a time zone (UTC)")
        return value

    @model_validator(mode="after")
    def _consistent_amounts(self) -> Invoice:
        if not self.is_credit_note and self.outstanding > self.total:
            raise ValueError(f"outstanding {self.outstanding} exceeds the total {self.total}")
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _name_the_invoice(cls, data: Any, handler: Any) -> Invoice:
        """Every validation problem names the invoice, so a bookkeeper can find it on the platform."""
        try:
            return handler(data)
        except ValidationError as exc:
            label = "?"
            if isinstance(data, dict):
                label = data.get("number") or f"id {data.get('platform_id', '?')}"
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'invoice'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise ValueError(f"invoice {label}: {problems}") from None

    @property
    def label(self) -> str:
        """How a bookkeeper recognises this invoice in a message: its number, else the platform id."""
        return self.number or f"id {self.platform_id}"

    @property
    def anomalies(self) -> tuple[str, ...]:
        """Odd but legal facts worth a warning (allowed, flagged)."""
        found = []
        if self.due_date < self.issue_date:
            found.append(f"invoice {self.label}: due date {self.due_date} is before its issue date {self.issue_date}")
        return tuple(found)

    @property
    def is_collectable(self) -> bool:
        """Open, not a credit note and something positive still owed."""
        return self.is_open and not self.is_credit_note and self.outstanding > 0


class EventKind(StrEnum):
    """What can happen to an invoice; the history is an append-only list of these."""

    REMINDER_SENT = "reminder_sent"
    """A step's mail or letter went out through the platform (the receipt is in `data`)."""
    TASK_CREATED = "task_created"
    """A step became a manual task (a call, or a reminder the platform could not send; `data.reason`)."""
    NOTE = "note"
    """A call note or other remark (`data.text`)."""
    HOLD_SET = "hold_set"
    """Escalation paused: `data.hold` is dispute | promise | excluded, `data.until` an ISO date for promises;
    `data.source` is `cli` (set by hand) or `PLATFORM` (the platform's own promised date, recorded by sync)."""
    HOLD_RELEASED = "hold_released"
    """`data.hold` names the hold it ends (none: all); `data.source` `PLATFORM`: only the platform's promise."""
    ARRANGEMENT_SET = "arrangement_set"
    """A payment arrangement: `data.instalments` = [{"due": ISO date, "amount": decimal string}, …]."""
    ARRANGEMENT_ENDED = "arrangement_ended"
    PAYMENT_SEEN = "payment_seen"
    """Sync saw the outstanding amount drop: `data.amount`, `data.outstanding`."""
    CLOSED = "closed"
    """The invoice left the open set on the platform (paid, voided, credited)."""
    REOPENED = "reopened"
    HANDOFF = "handoff"
    """The case went to the collection agency: no more reminders."""


PLATFORM = "platform"
"""`Event.data["source"]` of what sync recorded from the platform itself (its promised payment date), as opposed to
what a person recorded with the CLI."""


class Event(_Frozen):
    """One entry in an invoice's history, as the planner reads it."""

    kind: EventKind
    on: date
    """The day it took effect (a reminder's send date, a hold's start)."""
    step: str | None = None
    """The escalation step it belongs to, for reminders, tasks and handoff."""
    data: dict[str, Any] = Field(default_factory=dict)
    recorded_at: datetime | None = None
