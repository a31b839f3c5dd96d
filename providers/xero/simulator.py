"""A faithful, in-process Xero: identity (OAuth, connections) and the slice of the Accounting API we use.

Real paths, headers, JSON shapes, field names, `/Date(…)/` dates, paging envelope, `If-Modified-Since` (to the
second, boundary included), `where` filters, rate-limit headers and 429s, Xero's error bodies, the invoice e-mail
endpoint (with `Idempotency-Key`), history records, online invoice links, PDFs and the reminder settings. All hosts
(login.xero.com, identity.xero.com, api.xero.com) are served from one origin on their real paths. Time is a
`VirtualClock`; a book of contacts and invoices is seeded deterministically with `seed_book`.

Not confirmed on the real platform and modelled as an assumption (see the Xero section of providers.md): the exact
texts of validation messages, the daily e-mail limit (a number and a 400 ValidationException), the value
`appminute` of X-Rate-Limit-Problem, the URL length (~2,000 characters) beyond which a GET answers 404.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Self

from werkzeug.http import http_date
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from providers.simkit import (
    XERO_OAUTH,
    Book,
    OAuthServer,
    RateWindows,
    SeededBook,
    SimulatorBase,
    VirtualClock,
    Window,
)
from providers.xero.mapping import day_string, ms_date, ms_date_of_day, utc_string

API = "/api.xro/2.0"
CENT = Decimal("0.01")
DEFAULT_SCOPE = "offline_access accounting.invoices accounting.contacts.read accounting.settings.read"
LEGACY_SCOPE = "accounting.transactions"
"""Refused at authorisation for apps created on or after 2 March 2026 (`granular_only`)."""
MAX_URL = 2048
"""Assumption: Xero answers 404 to longer request URLs (providers.md: more than ~50 GUIDs in IDs)."""

READ_INVOICES = {"accounting.invoices", "accounting.invoices.read", "accounting.transactions",
                 "accounting.transactions.read"}
WRITE_INVOICES = {"accounting.invoices", "accounting.transactions"}
READ_CONTACTS = {"accounting.contacts", "accounting.contacts.read"}
READ_SETTINGS = {"accounting.settings", "accounting.settings.read"}


# --- the book ------------------------------------------------------------------------------------------------------


@dataclass
class SimContact:
    contact_id: str
    name: str
    updated: datetime
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    persons: list[dict[str, Any]] = field(default_factory=list)
    postal: dict[str, str] = field(default_factory=dict)
    street: dict[str, str] = field(default_factory=dict)
    phone: dict[str, str] = field(default_factory=dict)
    tax_number: str | None = None
    company_number: str | None = None
    account_number: str | None = None
    status: str = "ACTIVE"
    is_customer: bool = True
    is_supplier: bool = False


@dataclass
class SimLine:
    description: str
    quantity: Decimal
    unit_amount: Decimal
    tax_rate: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_amount).quantize(CENT, ROUND_HALF_UP)

    @property
    def tax(self) -> Decimal:
        return (self.amount * self.tax_rate).quantize(CENT, ROUND_HALF_UP)


@dataclass
class SimInvoice:
    invoice_id: str
    number: str
    contact_id: str
    issued: date
    due: date
    lines: list[SimLine]
    updated: datetime
    type: str = "ACCREC"
    status: str = "AUTHORISED"
    currency: str = "EUR"
    reference: str | None = None
    expected_payment: date | None = None
    sent_to_contact: bool = False
    payments: list[dict[str, Any]] = field(default_factory=list)
    credits: list[dict[str, Any]] = field(default_factory=list)
    fully_paid_on: date | None = None
    corrupt: bool = False

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def total_tax(self) -> Decimal:
        return sum((line.tax for line in self.lines), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.total_tax

    @property
    def amount_paid(self) -> Decimal:
        return sum((p["Amount"] for p in self.payments), Decimal("0.00"))

    @property
    def amount_credited(self) -> Decimal:
        return sum((c["AppliedAmount"] for c in self.credits), Decimal("0.00"))

    @property
    def amount_due(self) -> Decimal:
        return self.total - self.amount_paid - self.amount_credited


@dataclass(frozen=True)
class HistoryRecord:
    changes: str
    at: datetime
    user: str
    details: str


class Organisation:
    """One Xero tenant: its contacts, invoices, history records and the mutators tests use to change them."""

    def __init__(self, name: str, clock: VirtualClock, tenant_id: str, connection_id: str) -> None:
        self.name = name
        self.clock = clock
        self.tenant_id = tenant_id
        self.connection_id = connection_id
        self.contacts: dict[str, SimContact] = {}
        self.invoices: dict[str, SimInvoice] = {}
        self.history: dict[str, list[HistoryRecord]] = {}
        self.reminders_enabled = False
        self.connected = True
        self.emails_sent_on: dict[date, int] = {}
        self.idempotent: dict[tuple[str, str], tuple[int, bytes, str, float]] = {}
        self._ids = random.Random(tenant_id)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _touch(self) -> datetime:
        return self.clock.now()

    # -- mutators (what a bookkeeper does in Xero) -----------------------------------------------------------

    def add_contact(self, name: str, **values: Any) -> SimContact:
        contact = SimContact(contact_id=values.pop("contact_id", None) or self.new_id(), name=name,
                             updated=values.pop("updated", None) or self._touch(), **values)
        self.contacts[contact.contact_id] = contact
        return contact

    def change_contact(self, contact_id: str, **values: Any) -> SimContact:
        contact = replace(self.contacts[contact_id], **values, updated=self._touch())
        self.contacts[contact_id] = contact
        return contact

    def add_invoice(self, contact_id: str, total: Decimal | str, **values: Any) -> SimInvoice:
        """An invoice of one line; `total` includes 21 % VAT when it divides evenly, else carries no tax."""
        amount = Decimal(total)
        net = (amount / Decimal("1.21")).quantize(CENT, ROUND_HALF_UP)
        tax_rate = Decimal("0.21") if (net * Decimal("1.21")).quantize(CENT, ROUND_HALF_UP) == amount else Decimal(0)
        line = SimLine("Consultancy", Decimal(1), net if tax_rate else amount, tax_rate)
        today = self.clock.now().date()
        invoice = SimInvoice(
            invoice_id=values.pop("invoice_id", None) or self.new_id(),
            number=values.pop("number", None) or f"INV-{len(self.invoices) + 1:05d}",
            contact_id=contact_id,
            issued=values.pop("issued", today),
            due=values.pop("due", today + timedelta(days=14)),
            lines=[line],
            updated=values.pop("updated", None) or self._touch(),
            **values,
        )
        self.invoices[invoice.invoice_id] = invoice
        return invoice

    def change_invoice(self, invoice_id: str, **values: Any) -> SimInvoice:
        invoice = replace(self.invoices[invoice_id], **values, updated=self._touch())
        self.invoices[invoice_id] = invoice
        return invoice

    def pay(self, invoice_id: str, amount: Decimal | str | None = None, *, on: date | None = None) -> SimInvoice:
        """Record a payment (the whole amount due by default); a fully paid invoice becomes PAID."""
        invoice = self.invoices[invoice_id]
        paid = Decimal(amount) if amount is not None else invoice.amount_due
        day = on or self.clock.now().date()
        invoice.payments.append({"PaymentID": self.new_id(), "Date": day, "Amount": paid, "Reference": "Bank"})
        return self._settle(invoice, day)

    def credit(self, invoice_id: str, amount: Decimal | str, *, on: date | None = None) -> SimInvoice:
        """Allocate a credit note to the invoice: AmountCredited grows, AmountDue shrinks."""
        invoice = self.invoices[invoice_id]
        day = on or self.clock.now().date()
        invoice.credits.append({"CreditNoteID": self.new_id(), "CreditNoteNumber": f"CN-{len(invoice.credits) + 1:04d}",
                                "Date": day, "Total": Decimal(amount), "AppliedAmount": Decimal(amount)})
        return self._settle(invoice, day)

    def _settle(self, invoice: SimInvoice, day: date) -> SimInvoice:
        if invoice.amount_due <= 0:
            invoice.status, invoice.fully_paid_on = "PAID", day
        invoice.updated = self._touch()
        return invoice

    def void(self, invoice_id: str) -> SimInvoice:
        return self.change_invoice(invoice_id, status="VOIDED")

    def delete(self, invoice_id: str) -> SimInvoice:
        return self.change_invoice(invoice_id, status="DELETED")

    def corrupt_invoice(self, invoice_id: str) -> SimInvoice:
        """The invoice comes back unreadable (no currency, a non-numeric amount) until repaired."""
        return self.change_invoice(invoice_id, corrupt=True)

    # -- reading -------------------------------------------------------------------------------------------------

    def open_invoices(self) -> list[SimInvoice]:
        return [i for i in self.invoices.values() if i.type == "ACCREC" and i.status == "AUTHORISED"]


# --- seeding ------------------------------------------------------------------------------------------------------

_FIRST = ["Anna", "Bram", "Chantal", "Daan", "Eva", "Fleur", "Gijs", "Hanna", "Ilse", "Jeroen", "Kees", "Lotte",
          "Maarten", "Noor", "Pieter", "Roos", "Sander", "Tess", "Vera", "Wouter"]
_LAST = ["de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "de Boer", "Peeters", "Maes",
         "Claes", "Willems", "Dekker", "Hendriks"]
_TRADE = ["Bouw", "Installatie", "Drukkerij", "Transport", "Advies", "Techniek", "Groothandel", "Catering",
          "Schilders", "Software", "Hoveniers", "Logistiek"]
_FORMS = ["B.V.", "BV", "V.O.F.", "N.V.", "BVBA"]
_CITIES = [("Amsterdam", "1012 AB", "Netherlands"), ("Utrecht", "3511 CE", "Netherlands"),
           ("Rotterdam", "3011 AD", "NL"), ("Antwerpen", "2000", "Belgium"), ("Gent", "9000", "Belgium"),
           ("Eindhoven", "5611 AZ", "Nederland")]


def seed_book(org: Organisation, *, seed: int = 1, open_invoices: int = 100, contacts: int = 25,
              closed_invoices: int = 10, bills: int = 3, submitted: int = 0, drafts: int = 2) -> None:
    """A deterministic book: businesses and consumers, open/part-paid/promised invoices, closed ones and bills."""
    rng = random.Random(seed)
    now = org.clock.now()

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def before_now(max_days: int) -> datetime:
        return now - timedelta(seconds=rng.randint(60, max_days * 86400), milliseconds=rng.randint(0, 999))

    made: list[SimContact] = []
    for n in range(contacts):
        city, postcode, country = rng.choice(_CITIES)
        address = {"AddressLine1": f"{rng.choice(['Kerkstraat', 'Dorpsstraat', 'Stationsweg'])} {n + 1}",
                   "City": city, "PostalCode": postcode, "Country": country}
        if rng.random() < 0.55:
            name = f"{rng.choice(_TRADE)} {rng.choice(_LAST).split()[-1]} {rng.choice(_FORMS)}"
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            contact = SimContact(
                uid(), name, before_now(400), first_name=first, last_name=last,
                email=f"debiteuren{n}@{name.split()[1].lower()}.example", postal=address,
                tax_number=f"NL{rng.randint(10**8, 10**9 - 1)}B01" if rng.random() < 0.8 else None,
                company_number=str(rng.randint(10**7, 10**8 - 1)) if rng.random() < 0.6 else None,
                persons=[{"FirstName": first, "LastName": last, "EmailAddress": f"{first.lower()}{n}@example.nl",
                          "IncludeInEmails": rng.random() < 0.5}] if rng.random() < 0.4 else [],
                phone={"PhoneCountryCode": "31", "PhoneAreaCode": "20",
                       "PhoneNumber": str(rng.randint(10**6, 10**7 - 1))},
                account_number=f"DEB{n + 1:04d}",
            )
        else:
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            contact = SimContact(
                uid(), f"{first} {last}", before_now(400), first_name=first, last_name=last,
                email=f"{first.lower()}.{last.replace(' ', '').lower()}{n}@example.nl", postal=address,
                phone={"PhoneNumber": f"06{rng.randint(10**7, 10**8 - 1)}"} if rng.random() < 0.7 else {},
            )
        if rng.random() < 0.05:
            contact.email = None
            contact.persons = []
        org.contacts[contact.contact_id] = contact
        made.append(contact)
    if not made:
        return
    number = len(org.invoices)

    def invoice(status: str, kind: str = "ACCREC") -> SimInvoice:
        nonlocal number
        number += 1
        issued = (now - timedelta(days=rng.randint(0, 150))).date()
        lines = [SimLine(rng.choice(["Consultancy", "Materials", "Installation", "Licence"]),
                         Decimal(rng.randint(1, 8)), Decimal(rng.randint(2500, 90000)) / 100,
                         Decimal("0.21") if rng.random() < 0.9 else Decimal(0))
                 for _ in range(rng.randint(1, 3))]
        updated = datetime.combine(issued, datetime.min.time(), UTC) + timedelta(
            hours=rng.randint(7, 18), seconds=rng.randint(0, 3599), milliseconds=rng.randint(0, 999))
        result = SimInvoice(uid(), f"INV-{number:05d}" if kind == "ACCREC" else f"BILL-{number:05d}",
                            rng.choice(made).contact_id, issued, issued + timedelta(days=rng.choice([14, 30])),
                            lines, min(updated, now - timedelta(seconds=1)), type=kind, status=status,
                            reference=f"PO {rng.randint(1000, 9999)}" if rng.random() < 0.3 else None,
                            sent_to_contact=status != "DRAFT")
        if status == "AUTHORISED" and rng.random() < 0.12:
            result.payments.append({"PaymentID": uid(), "Date": issued + timedelta(days=7),
                                    "Amount": (result.total / 2).quantize(CENT), "Reference": "Bank"})
        if status == "AUTHORISED" and rng.random() < 0.04:
            result.credits.append({"CreditNoteID": uid(), "CreditNoteNumber": f"CN-{number:05d}",
                                   "Date": issued + timedelta(days=3), "Total": Decimal("10.00"),
                                   "AppliedAmount": Decimal("10.00")})
        if status == "AUTHORISED" and rng.random() < 0.05:
            result.expected_payment = result.due + timedelta(days=rng.randint(5, 30))
        if status == "PAID":
            result.payments.append({"PaymentID": uid(), "Date": result.due, "Amount": result.total,
                                    "Reference": "Bank"})
            result.fully_paid_on = result.due
        org.invoices[result.invoice_id] = result
        return result

    plan = (["AUTHORISED"] * open_invoices + ["SUBMITTED"] * submitted + ["DRAFT"] * drafts
            + [rng.choice(["PAID", "PAID", "PAID", "VOIDED"]) for _ in range(closed_invoices)])
    rng.shuffle(plan)
    for status in plan:
        invoice(status)
    for _ in range(bills):
        invoice("AUTHORISED", "ACCPAY")


# --- rendering ----------------------------------------------------------------------------------------------------


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _phones(contact: SimContact) -> list[dict[str, Any]]:
    kinds = ["DEFAULT", "DDI", "MOBILE", "FAX"]
    return [{"PhoneType": kind, **(contact.phone if kind == "DEFAULT" else {})} for kind in kinds]


def render_contact(contact: SimContact, *, summary: bool = False) -> dict[str, Any]:
    """A Contact as Xero returns it: empty STREET first, POBOX (postal) second; absent strings are left out."""
    body: dict[str, Any] = {
        "ContactID": contact.contact_id,
        "ContactStatus": contact.status,
        "Name": contact.name,
        "FirstName": contact.first_name,
        "LastName": contact.last_name,
        "EmailAddress": contact.email,
        "AccountNumber": contact.account_number,
        "TaxNumber": contact.tax_number,
        "CompanyNumber": contact.company_number,
        "BankAccountDetails": "",
        "UpdatedDateUTC": ms_date(contact.updated),
        "IsSupplier": contact.is_supplier,
        "IsCustomer": contact.is_customer,
        "HasAttachments": False,
        "HasValidationErrors": False,
    }
    if not summary:
        body["Addresses"] = [{"AddressType": "STREET", **contact.street}, {"AddressType": "POBOX", **contact.postal}]
        body["Phones"] = _phones(contact)
        body["ContactPersons"] = contact.persons
        body["ContactGroups"] = []
    return {key: value for key, value in body.items() if value is not None}


def render_invoice(invoice: SimInvoice, contact: SimContact | None, *, lines: bool, full_contact: bool = False,
                   summary: bool = False) -> dict[str, Any]:
    contact_body: dict[str, Any] = {"ContactID": invoice.contact_id}
    if contact is not None:
        contact_body = render_contact(contact) if full_contact else {"ContactID": contact.contact_id,
                                                                     "Name": contact.name}
    body: dict[str, Any] = {
        "Type": invoice.type,
        "InvoiceID": invoice.invoice_id,
        "InvoiceNumber": invoice.number,
        "Reference": invoice.reference,
        "AmountDue": _money(invoice.amount_due),
        "AmountPaid": _money(invoice.amount_paid),
        "AmountCredited": _money(invoice.amount_credited),
        "CurrencyRate": Decimal("1.000000"),
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": contact_body,
        "DateString": day_string(invoice.issued),
        "Date": ms_date_of_day(invoice.issued),
        "DueDateString": day_string(invoice.due),
        "DueDate": ms_date_of_day(invoice.due),
        "Status": invoice.status,
        "LineAmountTypes": "Exclusive",
        "SubTotal": _money(invoice.subtotal),
        "TotalTax": _money(invoice.total_tax),
        "Total": _money(invoice.total),
        "UpdatedDateUTC": ms_date(invoice.updated),
        "UpdatedDateUTCString": utc_string(invoice.updated),
        "CurrencyCode": invoice.currency,
        "SentToContact": invoice.sent_to_contact,
    }
    if invoice.expected_payment:
        body["ExpectedPaymentDate"] = ms_date_of_day(invoice.expected_payment)
    if invoice.fully_paid_on:
        body["FullyPaidOnDate"] = ms_date_of_day(invoice.fully_paid_on)
    if not summary:
        body["Payments"] = [{"PaymentID": p["PaymentID"], "Date": ms_date_of_day(p["Date"]), "Amount": p["Amount"],
                             "Reference": p["Reference"], "CurrencyRate": Decimal("1.000000"), "HasAccount": False,
                             "HasValidationErrors": False} for p in invoice.payments]
        body["CreditNotes"] = [{"CreditNoteID": c["CreditNoteID"], "CreditNoteNumber": c["CreditNoteNumber"],
                                "Date": ms_date_of_day(c["Date"]), "Total": c["Total"],
                                "AppliedAmount": c["AppliedAmount"], "HasErrors": False} for c in invoice.credits]
        body["Prepayments"] = []
        body["Overpayments"] = []
    if lines and not summary:
        body["LineItems"] = [{"Description": line.description, "UnitAmount": line.unit_amount,
                              "TaxType": "OUTPUT2" if line.tax_rate else "NONE", "TaxAmount": line.tax,
                              "LineAmount": line.amount, "AccountCode": "8000", "Tracking": [],
                              "Quantity": line.quantity, "LineItemID": str(uuid.uuid5(uuid.NAMESPACE_URL,
                              f"{invoice.invoice_id}/{n}"))} for n, line in enumerate(invoice.lines)]
    if invoice.corrupt:
        body.pop("CurrencyCode")
        body["AmountDue"] = "n/a"
    return {key: value for key, value in body.items() if value is not None}


def minimal_pdf(lines: Iterable[str]) -> bytes:
    """A small, valid one-page PDF (Helvetica text), with a correct cross-reference table."""
    def escape(text: str) -> str:
        plain = text.encode("latin-1", "replace").decode("latin-1")
        return plain.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = " ".join(f"({escape(line)}) '" for line in lines)
    content = f"BT /F1 12 Tf 72 780 Td 16 TL {text} ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        "/Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(content.encode('latin-1'))} >>\nstream\n{content}\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# --- `where` filters ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<and>AND\b|&&)|(?P<or>OR\b|\|\|)|(?P<cond>(?P<field>[A-Za-z][\w.]*)\s*'
                    r'(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>"[^"]*"|Guid\("[^"]*"\)|true|false|-?\d+(?:\.\d+)?|'
                    r'DateTime\(\s*\d+\s*(?:,\s*\d+\s*){2,5}\)))\s*)', re.IGNORECASE)


class QueryError(ValueError):
    pass


def parse_where(text: str, fields: Mapping[str, Callable[[Any], Any]], kind: str) -> Callable[[Any], bool]:
    """The `where` forms integrations use: `Field==value` joined by AND/OR (AND binds tighter).

    Values: "text", Guid("…"), true/false, numbers, DateTime(y,m,d[,h,mi,s]). Anything else is a
    QueryParseException, as on Xero.
    """
    position, groups, current = 0, [], []
    expect_condition = True
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise QueryError(f"Syntax error at position {position} in '{text}'")
        position = match.end()
        if match.group("cond"):
            if not expect_condition:
                raise QueryError(f"Syntax error: ')' or operator expected at position {match.start()}")
            name = match.group("field")
            if name not in fields:
                raise QueryError(f"No property or field '{name}' exists in type '{kind}'")
            current.append((fields[name], match.group("op"), _literal(match.group("value"))))
            expect_condition = False
        else:
            if expect_condition:
                raise QueryError(f"Syntax error: expression expected at position {match.start()}")
            if match.group("or"):
                groups.append(current)
                current = []
            expect_condition = True
    if expect_condition:
        raise QueryError(f"Syntax error: expression expected at the end of '{text}'")
    groups.append(current)

    def test(record: Any) -> bool:
        return any(all(_compare(getter(record), op, value) for getter, op, value in group) for group in groups)

    return test


def _literal(token: str) -> Any:
    if token.startswith('"'):
        return token[1:-1]
    if token.lower().startswith("guid("):
        return token[6:-2].lower()
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    if token.lower().startswith("datetime("):
        parts = [int(p) for p in token[token.index("(") + 1:-1].split(",")]
        return datetime(*parts, tzinfo=UTC) if len(parts) > 3 else date(*parts)
    return Decimal(token)


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if isinstance(expected, date) and not isinstance(expected, datetime) and isinstance(actual, datetime):
        actual = actual.date()
    try:
        return {"==": actual == expected, "!=": actual != expected}[op] if op in ("==", "!=") else bool(
            {">": actual > expected, "<": actual < expected, ">=": actual >= expected, "<=": actual <= expected}[op])
    except TypeError:
        return False


_INVOICE_FIELDS: dict[str, Callable[[SimInvoice], Any]] = {
    "Type": lambda i: i.type, "Status": lambda i: i.status, "InvoiceNumber": lambda i: i.number,
    "Reference": lambda i: i.reference or "", "InvoiceID": lambda i: i.invoice_id,
    "Contact.ContactID": lambda i: i.contact_id, "AmountDue": lambda i: i.amount_due,
    "Total": lambda i: i.total, "Date": lambda i: i.issued, "DueDate": lambda i: i.due,
    "CurrencyCode": lambda i: i.currency, "UpdatedDateUTC": lambda i: i.updated,
}
_CONTACT_FIELDS: dict[str, Callable[[SimContact], Any]] = {
    "Name": lambda c: c.name, "EmailAddress": lambda c: c.email or "", "ContactStatus": lambda c: c.status,
    "IsCustomer": lambda c: c.is_customer, "IsSupplier": lambda c: c.is_supplier,
    "AccountNumber": lambda c: c.account_number or "", "ContactID": lambda c: c.contact_id,
}
_INVOICE_ORDERS: dict[str, Callable[[SimInvoice], Any]] = {
    "UpdatedDateUTC": lambda i: (i.updated, i.invoice_id), "InvoiceNumber": lambda i: (i.number, i.invoice_id),
    "Date": lambda i: (i.issued, i.number), "DueDate": lambda i: (i.due, i.number),
}
_CONTACT_ORDERS: dict[str, Callable[[SimContact], Any]] = {
    "Name": lambda c: (c.name, c.contact_id), "UpdatedDateUTC": lambda c: (c.updated, c.contact_id),
}


# --- the simulator ------------------------------------------------------------------------------------------------


_DECIMAL = re.compile(r'"\\u0000dec:(-?[0-9.]+)"')


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"\u0000dec:{value}"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(payload: Any) -> str:
    """JSON with amounts written exactly as Xero does (`100.00`, not `100.0`)."""
    return _DECIMAL.sub(r"\1", json.dumps(payload, default=_json_default))


def _parse_since(value: str) -> datetime:
    """`If-Modified-Since` as ISO 8601 (with or without zone: UTC) or an HTTP date."""
    from email.utils import parsedate_to_datetime

    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = parsedate_to_datetime(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class XeroSimulator(SimulatorBase):
    """Xero identity + Accounting API. `org` is the first organisation; `add_organisation` makes more."""

    url_map = Map([
        Rule("/identity/connect/authorize", endpoint="oauth_authorize", methods=["GET", "POST"]),
        Rule("/connect/token", endpoint="oauth_token", methods=["POST"]),
        Rule("/connect/revocation", endpoint="oauth_revoke", methods=["POST"]),
        Rule("/connections", endpoint="connections", methods=["GET"]),
        Rule("/connections/<connection_id>", endpoint="disconnect", methods=["DELETE"]),
        Rule(f"{API}/Invoices", endpoint="invoices", methods=["GET"]),
        Rule(f"{API}/Invoices/<invoice_id>", endpoint="invoice", methods=["GET"]),
        Rule(f"{API}/Invoices/<invoice_id>/OnlineInvoice", endpoint="online_invoice", methods=["GET"]),
        Rule(f"{API}/Invoices/<invoice_id>/Email", endpoint="email_invoice", methods=["POST"]),
        Rule(f"{API}/Invoices/<invoice_id>/History", endpoint="invoice_history", methods=["GET", "PUT"]),
        Rule(f"{API}/Contacts", endpoint="contacts", methods=["GET"]),
        Rule(f"{API}/InvoiceReminders/Settings", endpoint="reminder_settings", methods=["GET"]),
    ])

    def __init__(
        self,
        clock: VirtualClock | None = None,
        *,
        seed: int = 0,
        contacts: int = 0,
        invoices: int = 0,
        organisation: str = "Demo Company (NL)",
        minute_limit: int = 60,
        day_limit: int = 5000,
        app_minute_limit: int = 10_000,
        concurrent_limit: int = 5,
        email_daily_limit: int = 1000,
        granular_only: bool = True,
        latency: float = 0.0,
        idempotency_window: float = 300.0,
    ) -> None:
        super().__init__(clock)
        self.organisations: dict[str, Organisation] = {}
        self.org = self.add_organisation(organisation)
        self.oauth = OAuthServer(XERO_OAUTH, self.clock, title="Xero",
                                 consent_tenants=lambda: [(o.tenant_id, o.name) for o in self.organisations.values()])
        self.tenant_windows = RateWindows(self.clock, [Window("minute", minute_limit, 60),
                                                       Window("day", day_limit, 86400)])
        self.app_windows = RateWindows(self.clock, [Window("appminute", app_minute_limit, 60)])
        self.concurrent_limit = concurrent_limit
        self.email_daily_limit = email_daily_limit
        self.idempotency_window = idempotency_window
        """Seconds a repeated Idempotency-Key is answered from memory; after that Xero does the work again (the real
        window is "minutes", its length unconfirmed)."""
        self.granular_only = granular_only
        self.latency = latency
        """Virtual seconds each API call takes (benchmarks), so elapsed time means something."""
        self.in_flight: dict[str, int] = {}
        self._flight_lock = threading.Lock()
        if contacts or invoices:
            self.seed_book(seed=seed, contacts=max(1, contacts), open_invoices=invoices)

    # -- setup for tests ---------------------------------------------------------------------------------------

    def add_organisation(self, name: str) -> Organisation:
        key = hashlib.sha256(f"{name}/{len(self.organisations)}".encode()).digest()
        tenant_id = str(uuid.UUID(bytes=key[:16], version=4))
        connection_id = str(uuid.UUID(bytes=key[16:], version=4))
        org = Organisation(name, self.clock, tenant_id, connection_id)
        self.organisations[tenant_id] = org
        return org

    def register_app(self, client_id: str = "dunning-app", client_secret: str | None = "app-secret",
                     redirect_uri: str = "http://localhost:8765/callback") -> None:
        self.oauth.register_client(client_id, client_secret, [redirect_uri])

    def grant(self, client_id: str = "dunning-app", scope: str = DEFAULT_SCOPE,
              tenants: Iterable[Organisation] | None = None) -> dict[str, Any]:
        """Token JSON as if the user consented to these organisations (all by default)."""
        ids = [o.tenant_id for o in (tenants if tenants is not None else self.organisations.values())]
        return self.oauth.grant_tokens(client_id, scope=scope, tenant_ids=ids)

    def seed_book(self, **options: Any) -> Organisation:
        seed_book(self.org, **options)
        return self.org

    def history(self, invoice_id: str, org: Organisation | None = None) -> list[HistoryRecord]:
        return list((org or self.org).history.get(invoice_id, []))

    # -- the Simulator protocol (providers.simkit.Simulator) ----------------------------------------------------

    platform = "xero"

    @classmethod
    def empty(cls, clock: VirtualClock) -> Self:
        return cls(clock)

    def seed(self, book: Book) -> SeededBook:
        org = self.org
        org.name = book.organisation
        ids: dict[str, str] = {}
        for debtor in book.debtors:
            first, _, last = (debtor.contact_person or debtor.name).partition(" ")
            contact = org.add_contact(
                debtor.name, first_name=first, last_name=last, email=debtor.email,
                postal={"AddressLine1": debtor.street, "City": debtor.city, "PostalCode": debtor.postcode,
                        "Country": debtor.country},
                phone={"PhoneNumber": debtor.phone} if debtor.phone else {},
                tax_number=debtor.vat_number, company_number=debtor.kvk,
            )
            for item in debtor.invoices:
                invoice = org.add_invoice(contact.contact_id, item.total, issued=item.issued,
                                          due=item.issued + timedelta(days=item.due_days), currency=item.currency,
                                          sent_to_contact=True)
                invoice.lines = [SimLine("Diensten", Decimal(1), item.net, item.vat_rate)]
                ids[item.key] = invoice.invoice_id
                if item.paid:
                    org.pay(invoice.invoice_id, item.paid)
                if item.credited:
                    org.credit(invoice.invoice_id, item.credited)
        return SeededBook(tenant=org.tenant_id, invoices=ids)

    def record_payment(self, invoice_id: str, amount: Decimal | None = None) -> None:
        org = next(o for o in self.organisations.values() if invoice_id in o.invoices)
        org.pay(invoice_id, amount)

    def connection_urls(self, base_url: str) -> dict[str, str]:
        return {"api_url": base_url, "authorize_url": f"{base_url}/identity/connect/authorize",
                "token_url": f"{base_url}/connect/token"}

    # -- Xero's answers ----------------------------------------------------------------------------------------

    def _json(self, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return Response(dumps(payload), status, headers=dict(headers or {}),
                        mimetype="application/json")

    def _envelope(self, **content: Any) -> dict[str, Any]:
        return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "Dunning Connector",
                "DateTimeUTC": f"/Date({int(self.clock.time() * 1000)})/", **content}

    def _problem(self, status: int, title: str, detail: str) -> Response:
        return self._json({"Type": None, "Title": title, "Status": status, "Detail": detail,
                           "Instance": str(uuid.uuid4()), "Extensions": {}}, status)

    def _validation(self, message: str, element: Mapping[str, Any] | None = None,
                    kind: str = "ValidationException", number: int = 10) -> Response:
        body: dict[str, Any] = {"ErrorNumber": number, "Type": kind, "Message": message}
        if kind == "ValidationException":
            body["Message"] = "A validation exception occurred"
            body["Elements"] = [{**(element or {}), "ValidationErrors": [{"Message": message}]}]
        return self._json(body, 400)

    def expired_token_response(self) -> Response:
        expired = self.clock.now().strftime("%m/%d/%Y %H:%M:%S")
        return self._problem(401, "Unauthorized", f"TokenExpired: token expired at {expired}")

    def rate_limited_response(self, retry_after: int | None, problem: str = "minute") -> Response:
        headers = {"X-Rate-Limit-Problem": problem}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return Response("", 429, headers=headers)

    def server_error_response(self, status: int) -> Response:
        text = "The Organisation is offline" if status == 503 else "An error occurred in Xero."
        return Response(text, status, mimetype="text/plain")

    def not_found_response(self, request: Request) -> Response:
        return Response("The resource you're looking for cannot be found", 404, mimetype="text/plain")

    # -- the request pipeline ----------------------------------------------------------------------------------

    def oauth_authorize(self, request: Request) -> Response:
        scopes = (request.args.get("scope") or "").split()
        if request.method == "GET" and self.granular_only and LEGACY_SCOPE in scopes:
            return self.oauth._redirect(request.args.get("redirect_uri", ""), {"error": "invalid_scope"},
                                        request.args.get("state"))
        return super().oauth_authorize(request)

    def dispatch(self, request: Request) -> Response:
        if self.latency and (request.path.startswith(API) or request.path.startswith("/connections")):
            self.clock.advance(self.latency)
        response = super().dispatch(request)
        tenant = (request.headers.get("Xero-tenant-id") or "").strip().lower()
        if request.path.startswith(API) and "X-MinLimit-Remaining" not in response.headers and tenant:
            # an injected fault still carries the limit headers, as every Xero answer does
            self._with_limits(response, self.tenant_windows.peek(tenant), self.app_windows.peek("app"))
        return response

    def _authorised(self, request: Request, scopes: set[str]) -> Response | Any:
        check = self.oauth.check_bearer(request.headers.get("Authorization"))
        if check.state == "expired":
            return self.expired_token_response()
        if not check.valid or check.grant is None:
            return self._problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        if not scopes & set(check.grant.scope.split()):
            return self._problem(401, "Unauthorized", "AuthorizationUnsuccessful")
        return check.grant

    def _api(self, request: Request, scopes: set[str], handler: Callable[[Organisation], Response]) -> Response:
        """Bearer, scope, tenant, URL length, rate limits and Accept, then the handler; limit headers always."""
        grant = self._authorised(request, scopes)
        if isinstance(grant, Response):
            return grant
        tenant = (request.headers.get("Xero-tenant-id") or "").strip().lower()
        org = self.organisations.get(tenant)
        allowed = grant.tenant_ids is None or tenant in grant.tenant_ids
        if org is None or not org.connected or not allowed:
            return self._problem(403, "Forbidden", "AuthenticationUnsuccessful")
        if len(request.url) > MAX_URL:
            return self.not_found_response(request)
        app = self.app_windows.peek("app")
        if not app.allowed:
            response = self.rate_limited_response(app.retry_after, "appminute")
            return self._with_limits(response, self.tenant_windows.peek(tenant), app)
        decision = self.tenant_windows.hit(tenant)
        if not decision.allowed:
            assert decision.exceeded is not None
            response = self.rate_limited_response(decision.retry_after, decision.exceeded.name)
            return self._with_limits(response, decision, app)
        app = self.app_windows.hit("app")
        with self._flight_lock:
            self.in_flight[tenant] = self.in_flight.get(tenant, 0) + 1
            too_many = self.in_flight[tenant] > self.concurrent_limit
        try:
            if too_many:
                response = self.rate_limited_response(None, "concurrent")
            else:
                response = handler(org)
        finally:
            with self._flight_lock:
                self.in_flight[tenant] -= 1
        return self._with_limits(response, decision, app)

    def _with_limits(self, response: Response, tenant: Any, app: Any) -> Response:
        response.headers["Date"] = http_date(self.clock.time())
        response.headers["X-DayLimit-Remaining"] = str(tenant.window("day").remaining)
        response.headers["X-MinLimit-Remaining"] = str(tenant.window("minute").remaining)
        response.headers["X-AppMinLimit-Remaining"] = str(app.window("appminute").remaining)
        return response

    @staticmethod
    def _wants_json(request: Request) -> bool:
        return "application/json" in (request.headers.get("Accept") or "")

    def _xml(self) -> Response:
        """Xero answers XML when the caller does not ask for JSON."""
        return Response('<Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Status>OK</Status>'
                        "</Response>", 200, mimetype="text/xml")

    def _since(self, request: Request) -> datetime | None | Response:
        value = request.headers.get("If-Modified-Since")
        if not value:
            return None
        try:
            return _parse_since(value).replace(microsecond=0)
        except (TypeError, ValueError):
            return self._validation(f"The If-Modified-Since header '{value}' is not a valid date")

    @staticmethod
    def _list_arg(request: Request, name: str) -> list[str]:
        return [part.strip().strip('"') for part in request.args.get(name, "").split(",") if part.strip()]

    @staticmethod
    def _page(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, int] | None]:
        """`page` (1-based) and `pageSize` (default 100, at most 1000); no `page`: everything, no pagination."""
        if "page" not in request.args:
            return items, None
        try:
            page = max(1, int(request.args["page"]))
            size = min(1000, max(1, int(request.args.get("pageSize", 100))))
        except ValueError:
            raise QueryError("page and pageSize must be whole numbers") from None
        chosen = items[(page - 1) * size: page * size]
        return chosen, {"page": page, "pageSize": size, "pageCount": math.ceil(len(items) / size),
                        "itemCount": len(items)}

    @staticmethod
    def _ordered(request: Request, items: list[Any], orders: Mapping[str, Callable[[Any], Any]], default: str,
                 kind: str) -> list[Any]:
        name, _, direction = ((request.args.get("order") or "").strip() or default).partition(" ")
        if name not in orders:
            raise QueryError(f"No property or field '{name}' exists in type '{kind}'")
        return sorted(items, key=orders[name], reverse=direction.strip().upper() == "DESC")

    # -- identity ----------------------------------------------------------------------------------------------

    def connections(self, request: Request) -> Response:
        check = self.oauth.check_bearer(request.headers.get("Authorization"))
        if check.state == "expired":
            return self.expired_token_response()
        if not check.valid or check.grant is None:
            return self._problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        grant = check.grant
        event = str(uuid.uuid5(uuid.NAMESPACE_OID, grant.id))
        wanted = request.args.get("authEventId")
        created = datetime.fromtimestamp(grant.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0")
        body = [
            {"id": org.connection_id, "authEventId": event, "tenantId": org.tenant_id, "tenantType": "ORGANISATION",
             "tenantName": org.name, "createdDateUtc": created, "updatedDateUtc": created}
            for org in self.organisations.values()
            if org.connected and (grant.tenant_ids is None or org.tenant_id in grant.tenant_ids)
            and (wanted is None or wanted == event)
        ]
        return self._json(body)

    def disconnect(self, request: Request, connection_id: str) -> Response:
        check = self.oauth.check_bearer(request.headers.get("Authorization"))
        if not check.valid:
            return self._problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        for org in self.organisations.values():
            if org.connection_id == connection_id and org.connected:
                org.connected = False
                return Response(status=204)
        return self.not_found_response(request)

    # -- invoices ----------------------------------------------------------------------------------------------

    def invoices(self, request: Request) -> Response:
        return self._api(request, READ_INVOICES, lambda org: self._list_invoices(request, org))

    def _list_invoices(self, request: Request, org: Organisation) -> Response:
        if not self._wants_json(request):
            return self._xml()
        since = self._since(request)
        if isinstance(since, Response):
            return since
        try:
            items = list(org.invoices.values())
            if request.args.get("where"):
                test = parse_where(request.args["where"], _INVOICE_FIELDS, "Invoice")
                items = [i for i in items if test(i)]
            for name, getter in (("IDs", lambda i: i.invoice_id), ("ContactIDs", lambda i: i.contact_id),
                                 ("InvoiceNumbers", lambda i: i.number), ("Statuses", lambda i: i.status)):
                wanted = {v.lower() for v in self._list_arg(request, name)}
                if wanted:
                    items = [i for i in items if getter(i).lower() in wanted]
            if since is not None:
                items = [i for i in items if i.updated.replace(microsecond=0) >= since]
            term = (request.args.get("searchTerm") or "").lower()
            if term:
                items = [i for i in items if term in i.number.lower() or term in (i.reference or "").lower()]
            items = self._ordered(request, items, _INVOICE_ORDERS, "InvoiceNumber", "Invoice")
            chosen, pagination = self._page(request, items)
        except QueryError as exc:
            return self._validation(str(exc), kind="QueryParseException", number=16)
        summary = request.args.get("summaryOnly", "").lower() == "true"
        rendered = [render_invoice(i, org.contacts.get(i.contact_id), lines=pagination is not None, summary=summary)
                    for i in chosen]
        content: dict[str, Any] = {"pagination": pagination} if pagination is not None else {}
        return self._json(self._envelope(**content, Invoices=rendered))

    def _invoice_or_404(self, request: Request, org: Organisation, invoice_id: str) -> SimInvoice | Response:
        invoice = org.invoices.get(invoice_id.lower())
        return invoice if invoice is not None else self.not_found_response(request)

    def invoice(self, request: Request, invoice_id: str) -> Response:
        def answer(org: Organisation) -> Response:
            invoice = self._invoice_or_404(request, org, invoice_id)
            if isinstance(invoice, Response):
                return invoice
            if "application/pdf" in (request.headers.get("Accept") or ""):
                return self._pdf(org, invoice)
            if not self._wants_json(request):
                return self._xml()
            rendered = render_invoice(invoice, org.contacts.get(invoice.contact_id), lines=True, full_contact=True)
            return self._json(self._envelope(Invoices=[rendered]))

        return self._api(request, READ_INVOICES, answer)

    def _pdf(self, org: Organisation, invoice: SimInvoice) -> Response:
        contact = org.contacts.get(invoice.contact_id)
        lines = [org.name, f"Invoice {invoice.number}", f"To: {contact.name if contact else '?'}",
                 f"Date: {invoice.issued.isoformat()}  Due: {invoice.due.isoformat()}",
                 f"Total: {invoice.currency} {_money(invoice.total)}",
                 f"Amount due: {invoice.currency} {_money(invoice.amount_due)}"]
        return Response(minimal_pdf(lines), 200, mimetype="application/pdf")

    def online_invoice(self, request: Request, invoice_id: str) -> Response:
        def answer(org: Organisation) -> Response:
            invoice = self._invoice_or_404(request, org, invoice_id)
            if isinstance(invoice, Response):
                return invoice
            if invoice.status == "DRAFT":
                return self._validation("An online invoice cannot be created for a draft invoice",
                                        {"InvoiceID": invoice.invoice_id})
            token = hashlib.sha256(invoice.invoice_id.encode()).hexdigest()[:40]
            return self._json(self._envelope(OnlineInvoices=[{"OnlineInvoiceUrl": f"https://in.xero.com/{token}"}]))

        return self._api(request, READ_INVOICES, answer)

    def email_invoice(self, request: Request, invoice_id: str) -> Response:
        return self._api(request, WRITE_INVOICES, lambda org: self._idempotent(
            request, org, "email", lambda: self._send_email(request, org, invoice_id)))

    def _idempotent(self, request: Request, org: Organisation, scope: str, act: Callable[[], Response]) -> Response:
        """A repeated Idempotency-Key gets the first answer again, without doing the work twice."""
        key = request.headers.get("Idempotency-Key")
        if key is not None and len(key) > 128:
            return self._validation("The Idempotency-Key header must be 128 characters or fewer")
        remembered = org.idempotent.get((scope, key)) if key is not None else None
        if remembered is not None and self.clock.time() - remembered[3] < self.idempotency_window:
            status, body, mimetype, _at = remembered
            return Response(body or None, status, mimetype=mimetype)
        response = act()
        if key is not None and response.status_code < 500:
            org.idempotent[(scope, key)] = (response.status_code, response.get_data(), response.mimetype or "",
                                            self.clock.time())
        return response

    def _send_email(self, request: Request, org: Organisation, invoice_id: str) -> Response:
        invoice = self._invoice_or_404(request, org, invoice_id)
        if isinstance(invoice, Response):
            return invoice
        element = {"InvoiceID": invoice.invoice_id, "InvoiceNumber": invoice.number}
        if invoice.type != "ACCREC":
            return self._validation("Only sales invoices (ACCREC) can be emailed", element)
        if invoice.status not in ("SUBMITTED", "AUTHORISED", "PAID"):
            return self._validation(f"Invoices with a status of {invoice.status} cannot be emailed", element)
        contact = org.contacts.get(invoice.contact_id)
        if contact is None or not contact.email:
            return self._validation("The contact does not have a valid email address", element)
        today = self.clock.now().date()
        if org.emails_sent_on.get(today, 0) >= self.email_daily_limit:
            return self._validation("The daily limit for sending emails from this organisation has been reached",
                                    element)
        org.emails_sent_on[today] = org.emails_sent_on.get(today, 0) + 1
        recipients = [contact.email] + [p["EmailAddress"] for p in contact.persons
                                        if p.get("IncludeInEmails") and p.get("EmailAddress")]
        self.record_mail(tenant=org.tenant_id, recipients=recipients, invoice_ids=[invoice.invoice_id],
                         kind="invoice")
        invoice.sent_to_contact = True
        return Response(status=204)

    def invoice_history(self, request: Request, invoice_id: str) -> Response:
        if request.method == "PUT":
            return self._api(request, WRITE_INVOICES, lambda org: self._idempotent(
                request, org, "history", lambda: self._add_history(request, org, invoice_id)))

        def answer(org: Organisation) -> Response:
            invoice = self._invoice_or_404(request, org, invoice_id)
            if isinstance(invoice, Response):
                return invoice
            records = [{"Changes": r.changes, "DateUTCString": r.at.strftime("%Y-%m-%dT%H:%M:%S"),
                        "DateUTC": ms_date(r.at), "User": r.user, "Details": r.details}
                       for r in reversed(org.history.get(invoice.invoice_id, []))]
            return self._json(self._envelope(HistoryRecords=records))

        return self._api(request, READ_INVOICES, answer)

    def _add_history(self, request: Request, org: Organisation, invoice_id: str) -> Response:
        invoice = self._invoice_or_404(request, org, invoice_id)
        if isinstance(invoice, Response):
            return invoice
        try:
            records = json.loads(request.get_data() or b"{}").get("HistoryRecords")
        except (ValueError, AttributeError):
            records = None
        if not isinstance(records, list) or not records:
            return self._validation("HistoryRecords must contain at least one record")
        created = []
        for record in records:
            details = record.get("Details") if isinstance(record, dict) else None
            if not isinstance(details, str) or not details.strip():
                return self._validation("The Details of a history record cannot be empty")
            if len(details) > 250:
                return self._validation("The Details of a history record cannot be longer than 250 characters")
        for record in records:
            entry = HistoryRecord("Note", self.clock.now(), "System Generated", record["Details"])
            org.history.setdefault(invoice.invoice_id, []).append(entry)
            created.append({"DateUTCString": entry.at.strftime("%Y-%m-%dT%H:%M:%S"), "DateUTC": ms_date(entry.at),
                            "Details": entry.details, "ValidationErrors": []})
        return self._json(self._envelope(HistoryRecords=created))

    # -- contacts and settings ---------------------------------------------------------------------------------

    def contacts(self, request: Request) -> Response:
        return self._api(request, READ_CONTACTS, lambda org: self._list_contacts(request, org))

    def _list_contacts(self, request: Request, org: Organisation) -> Response:
        if not self._wants_json(request):
            return self._xml()
        since = self._since(request)
        if isinstance(since, Response):
            return since
        try:
            items = list(org.contacts.values())
            ids = {v.lower() for v in self._list_arg(request, "IDs")}
            if ids:
                items = [c for c in items if c.contact_id in ids]
            elif request.args.get("includeArchived", "").lower() != "true":
                items = [c for c in items if c.status != "ARCHIVED"]
            if request.args.get("where"):
                test = parse_where(request.args["where"], _CONTACT_FIELDS, "Contact")
                items = [c for c in items if test(c)]
            if since is not None:
                items = [c for c in items if c.updated.replace(microsecond=0) >= since]
            items = self._ordered(request, items, _CONTACT_ORDERS, "Name", "Contact")
            chosen, pagination = self._page(request, items)
        except QueryError as exc:
            return self._validation(str(exc), kind="QueryParseException", number=16)
        summary = request.args.get("summaryOnly", "").lower() == "true"
        content: dict[str, Any] = {"pagination": pagination} if pagination is not None else {}
        return self._json(self._envelope(**content, Contacts=[render_contact(c, summary=summary) for c in chosen]))

    def reminder_settings(self, request: Request) -> Response:
        return self._api(request, READ_SETTINGS, lambda org: self._json(
            self._envelope(InvoiceReminders=[{"Enabled": org.reminders_enabled}])))


__all__ = ["DEFAULT_SCOPE", "HistoryRecord", "Organisation", "SimContact", "SimInvoice", "XeroSimulator",
           "minimal_pdf", "render_contact", "render_invoice", "seed_book"]
