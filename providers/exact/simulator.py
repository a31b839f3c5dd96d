"""A faithful stand-in for Exact Online's REST API (werkzeug WSGI, in-process through `transport()`).

What it reproduces (see ../shared/reference/providers.md): one app for every country host (`hosts` records which
was used); OAuth with the consent page, codes containing `!`, `expires_in` as a string, strict rotation (a reused
refresh token → 401 "Old refresh token used.") and the 570 s rule (via `simkit.EXACT_OAUTH`); `current/Me`,
`system/Divisions` / `hrm/Divisions`; OData `d` envelopes with absolute `__next` links, `$top` answers as a bare
list, `$select` (mandatory here everywhere but current/Me) and `$filter` parsed and evaluated with Exact's type
rules (unknown property or `Guid eq Int32` → 400), mandatory filters on entity sets with a sync twin, sync
endpoints accepting only `Timestamp` and paging in Timestamp order (Int64 as JSON strings), 1000-row bulk/sync pages
and 60-row standard pages; rate-limit headers on every API answer (minute and day, resets in epoch milliseconds),
429 with an empty body and only the exceeded family's headers; OData error bodies, 500 business-rule errors,
503 maintenance with an empty body; attachment downloads needing the bearer token (else an HTML login page).

Data live per division and change through the mutators (`pay`, `unmatched_payment`, `new_invoice`,
`change_account`, …); every change takes the next value of one database-wide rowversion, as SQL Server's does.
Assumptions where the real platform is unconfirmed are marked "unconfirmed".
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Self
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from providers.simkit import (
    EXACT_OAUTH,
    Book,
    OAuthServer,
    RateDecision,
    RateWindows,
    SeededBook,
    SimulatorBase,
    VirtualClock,
    Window,
)

_AMSTERDAM = ZoneInfo("Europe/Amsterdam")
HOSTS = ("start.exactonline.nl", "start.exactonline.be", "start.exactonline.de", "start.exactonline.co.uk",
         "start.exactonline.fr", "start.exactonline.es", "start.exactonline.com")
PAGE, BULK_PAGE = 60, 1000
MAX_URL = 6000
RECEIVABLE_SIGN = -1
"""Exact was observed to give a receivable's open AmountFC as negative (providers.md: "observed once")."""


# --- the data -----------------------------------------------------------------------------------------------------


@dataclass
class Account:
    ID: str
    Code: str
    Name: str
    Email: str | None = None
    Phone: str | None = None
    AddressLine1: str | None = None
    AddressLine2: str | None = None
    AddressLine3: str | None = None
    Postcode: str | None = None
    City: str | None = None
    Country: str | None = "NL"
    ChamberOfCommerce: str | None = None
    VATNumber: str | None = None
    Language: str | None = "NL"
    MainContact: str | None = None
    Status: str = "C"
    IsSales: bool = True
    Blocked: bool = False
    Timestamp: int = 0


@dataclass
class Contact:
    ID: str
    Account: str
    FullName: str
    Email: str | None = None
    BusinessEmail: str | None = None
    IsMainContact: bool = False
    Timestamp: int = 0


@dataclass
class SalesInvoice:
    InvoiceID: str
    InvoiceTo: str
    InvoiceNumber: int | None
    Status: int
    Currency: str
    AmountFC: Decimal
    InvoiceDate: date
    DueDate: date
    YourRef: str | None = None
    Type: int = 8020
    Timestamp: int = 0


@dataclass
class Term:
    """One payment term (a row of cashflow/Receivables and sync/Cashflow/PaymentTerms)."""

    ID: str
    EntryID: str
    TransactionEntryID: str
    Account: str
    AmountFC: Decimal
    Currency: str
    RateFC: Decimal
    DueDate: date
    InvoiceDate: date
    InvoiceNumber: int | None
    YourRef: str | None
    Status: int
    TransactionAmountFC: Decimal
    TransactionType: int
    LineType: int = 20
    IsFullyPaid: bool = False
    LastPaymentDate: date | None = None
    Timestamp: int = 0


@dataclass
class Document:
    ID: str
    FinancialTransactionEntryID: str
    Subject: str
    Account: str
    attachment_id: str
    FileName: str
    pdf: bytes
    Created: datetime


@dataclass
class Note:
    ID: str
    Account: str
    Subject: str | None
    Notes: str | None
    Date: date | None
    Created: datetime


@dataclass
class Division:
    Code: int
    Description: str
    Country: str = "NL"
    Currency: str = "EUR"
    last_number: int = 26_000_000
    accounts: dict[str, Account] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    invoices: dict[str, SalesInvoice] = field(default_factory=dict)
    terms: dict[str, Term] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)
    notes: dict[str, Note] = field(default_factory=dict)
    terms_of: dict[str, list[Term]] = field(default_factory=dict)
    """Payment terms by TransactionEntryID (an index, so mutators stay fast on 20,000-invoice books)."""

    def add_term(self, term: Term) -> None:
        self.terms[term.ID] = term
        self.terms_of.setdefault(term.TransactionEntryID, []).append(term)


# --- OData: $filter parsing and evaluation ------------------------------------------------------------------------

Kind = Literal["guid", "int", "int64", "str", "date", "datetime", "decimal", "bool"]
_EDM = {"guid": "System.Guid", "int": "System.Int32", "int64": "System.Int64", "str": "System.String",
        "date": "System.DateTime", "datetime": "System.DateTime", "decimal": "System.Double", "bool": "System.Boolean"}


class ODataError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_TOKEN = re.compile(r"""\s*(?:(?P<guid>guid'[0-9a-fA-F-]{36}')|(?P<dt>datetime'[^']*')|(?P<str>'(?:[^']|'')*')|"""
                    r"""(?P<num>-?\d+(?:\.\d+)?[LMDlmd]?)|(?P<paren>[()])|(?P<word>[A-Za-z_][A-Za-z0-9_/]*))""")
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}


@dataclass(frozen=True)
class _Literal:
    kind: str
    value: Any
    position: int


@dataclass(frozen=True)
class _Comparison:
    field: str
    op: str
    literal: _Literal


@dataclass(frozen=True)
class _Logical:
    op: str
    left: Any
    right: Any


def parse_filter(text: str, fields: Mapping[str, Kind]) -> Any:
    """A small recursive-descent parser for what clients send: comparisons joined by and/or with parentheses."""
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ODataError(400, f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    index = 0

    def peek() -> tuple[str, str, int] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, str, int]:
        nonlocal index
        if index >= len(tokens):
            raise ODataError(400, f"Syntax error: unexpected end of '{text}'.")
        index += 1
        return tokens[index - 1]

    def expression() -> Any:
        left = conjunction()
        while (t := peek()) and t[0] == "word" and t[1] == "or":
            take()
            left = _Logical("or", left, conjunction())
        return left

    def conjunction() -> Any:
        left = primary()
        while (t := peek()) and t[0] == "word" and t[1] == "and":
            take()
            left = _Logical("and", left, primary())
        return left

    def primary() -> Any:
        kind, value, at = take()
        if kind == "paren" and value == "(":
            inner = expression()
            if take()[1] != ")":
                raise ODataError(400, f"Syntax error: ')' expected in '{text}'.")
            return inner
        if kind != "word":
            raise ODataError(400, f"Syntax error at position {at} in '{text}'.")
        if value not in fields:
            raise ODataError(400, f"Could not find a property named '{value}' on type 'Exact.Web.Api.Models'.")
        _op_kind, op, op_at = take()
        if op not in _COMPARE:
            raise ODataError(400, f"Syntax error at position {op_at} in '{text}'.")
        return _Comparison(value, op, _literal(take(), fields[value], op, op_at))

    def _literal(token: tuple[str, str, int], field_kind: Kind, op: str, op_at: int) -> _Literal:
        kind, value, at = token
        if kind == "guid":
            literal = _Literal("guid", value[5:-1].lower(), at)
        elif kind == "dt":
            literal = _Literal("datetime", datetime.fromisoformat(value[9:-1]), at)
        elif kind == "str":
            literal = _Literal("str", value[1:-1].replace("''", "'"), at)
        elif kind == "num":
            if value[-1] in "Ll":
                literal = _Literal("int64", int(value[:-1]), at)
            elif "." in value or value[-1] in "MmDd":
                literal = _Literal("decimal", Decimal(value.rstrip("MmDd")), at)
            else:
                literal = _Literal("int", int(value), at)
        elif kind == "word" and value in ("true", "false"):
            literal = _Literal("bool", value == "true", at)
        elif kind == "word" and value == "null":
            return _Literal("null", None, at)
        else:
            raise ODataError(400, f"Syntax error at position {at} in '{text}'.")
        compatible = {
            "guid": {"guid"}, "str": {"str"}, "bool": {"bool"}, "date": {"datetime"}, "datetime": {"datetime"},
            "int": {"int", "int64"}, "int64": {"int", "int64"}, "decimal": {"int", "int64", "decimal"},
        }[field_kind]
        if literal.kind not in compatible:
            raise ODataError(400, f"Operator '{op}' incompatible with operand types '{_EDM[field_kind]}' and "
                                  f"'{_EDM.get(literal.kind, 'System.Int32')}' at position {op_at}.")
        return literal

    tree = expression()
    if index != len(tokens):
        raise ODataError(400, f"Syntax error at position {tokens[index][2]} in '{text}'.")
    return tree


def referenced_fields(tree: Any) -> set[str]:
    if isinstance(tree, _Comparison):
        return {tree.field}
    if isinstance(tree, _Logical):
        return referenced_fields(tree.left) | referenced_fields(tree.right)
    return set()


def evaluate(tree: Any, row: Mapping[str, Any]) -> bool:
    if isinstance(tree, _Logical):
        if tree.op == "and":
            return evaluate(tree.left, row) and evaluate(tree.right, row)
        return evaluate(tree.left, row) or evaluate(tree.right, row)
    value = row.get(tree.field)
    other = tree.literal.value
    if isinstance(value, str) and tree.literal.kind == "guid":
        value = value.lower()
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if tree.op == "eq":
        return value == other
    if tree.op == "ne":
        return value != other
    if value is None or other is None:
        return False
    return {"gt": value > other, "ge": value >= other, "lt": value < other, "le": value <= other}[tree.op]


# --- entity sets --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntitySet:
    """How one entity set answers GETs: its fields (with OData kinds), page size, order and filter rules."""

    name: str
    fields: Mapping[str, Kind]
    rows: Callable[[Division, Request], Iterable[dict[str, Any]]]
    page: int = PAGE
    order: str = "ID"
    sync: bool = False
    required_filter: frozenset[str] | None = None
    """A sync twin exists: a GET needs a $filter on one of these fields."""
    only_allowed_filters: bool = False
    """Bulk endpoints filter only on the listed fields."""


_RECEIVABLE_FIELDS: dict[str, Kind] = {
    "ID": "guid", "Account": "guid", "AmountFC": "decimal", "AmountDC": "decimal", "Currency": "str",
    "DueDate": "date", "EntryID": "guid", "InvoiceDate": "date", "InvoiceNumber": "int", "IsFullyPaid": "bool",
    "LastPaymentDate": "date", "RateFC": "decimal", "Status": "int", "TransactionAmountFC": "decimal",
    "TransactionEntryID": "guid", "TransactionType": "int", "YourRef": "str", "Description": "str",
}
_RECEIVABLE_FILTERS = frozenset({"Account", "Document", "EndDate", "EndToEndID", "EntryDate", "EntryID", "GLAccount",
                                 "ID", "InvoiceDate", "InvoiceNumber", "Source", "Status", "TransactionID",
                                 "TransactionType"})
_ACCOUNT_FIELDS: dict[str, Kind] = {
    "ID": "guid", "Code": "str", "Name": "str", "Email": "str", "Phone": "str", "AddressLine1": "str",
    "AddressLine2": "str", "AddressLine3": "str", "Postcode": "str", "City": "str", "Country": "str",
    "ChamberOfCommerce": "str", "VATNumber": "str", "Language": "str", "MainContact": "guid", "Status": "str",
    "IsSales": "bool", "Blocked": "bool",
}


class ExactSimulator(SimulatorBase):
    """Exact Online for tests, the demo and benchmarks. Seed with `seeded()` or the mutators."""

    url_map = Map([
        Rule("/api/oauth2/auth", endpoint="oauth_authorize", methods=["GET", "POST"]),
        Rule("/api/oauth2/token", endpoint="oauth_token", methods=["GET", "POST"]),
        Rule("/api/v1/current/Me", endpoint="me", methods=["GET"]),
        Rule("/api/v1/<int:division>/<path:resource>", endpoint="resource", methods=["GET", "POST", "PUT", "DELETE"]),
        Rule("/docs/SysAttachment.aspx", endpoint="download", methods=["GET"]),
    ])

    def __init__(self, clock: VirtualClock | None = None, *, seed: int = 1, division: int = 123456,
                 accounts: int = 20, invoices: int = 40,
                 resend_processed: Literal["accept", "refuse"] = "accept",
                 resend_document: Literal["new", "reuse"] = "new") -> None:
        """A seeded division (see `_seed`); `accounts=0, invoices=0` gives empty books to fill with the mutators."""
        super().__init__(clock)
        self.rng = random.Random(seed)
        # Exact's authorize URL takes no scope (an app's rights are set in the App Center): a label stands in for
        # simkit's "granted scope" so a consent without `scope` works.
        self.oauth = OAuthServer(EXACT_OAUTH, self.clock, title="Exact Online")
        self.limits = RateWindows(self.clock, [Window("minute", 60, 60), Window("day", 5000, 86400)])
        self.divisions: dict[int, Division] = {}
        self.current_division: int | None = None
        self.hosts: list[str] = []
        self.resend_processed = resend_processed
        """Re-sending an already processed invoice through PrintedSalesInvoices: unconfirmed on the real platform."""
        self.resend_document = resend_document
        """What a re-sent processed invoice's print answers as its `Document`: a new document (the spec: "the id of
        the document that was created"), or the invoice's existing one (the variant a client must also survive)."""
        self.system_divisions_allowed = True
        """Some licences refuse system/Divisions (403): clients must fall back to hrm/Divisions."""
        self.processed_by_api: list[str] = []
        """Open (Status 20) invoices that a PrintedSalesInvoices POST processed: a dunning tool must never cause one."""
        self.rowversion = 10_000_000 + self.rng.randrange(1_000_000)
        self.sets = self._entity_sets()
        if accounts or invoices:
            self._seed(division, accounts, invoices)

    # -- seeding and mutators ---------------------------------------------------------------------------------

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def tick(self) -> int:
        self.rowversion += self.rng.randrange(1, 50)
        return self.rowversion

    def add_division(self, code: int, description: str, *, country: str = "NL", currency: str = "EUR") -> Division:
        division = Division(code, description, country, currency)
        self.divisions[code] = division
        if self.current_division is None:
            self.current_division = code
        return division

    def add_account(self, division: int, name: str, **fields: Any) -> Account:
        data = self.divisions[division]
        code = str(len(data.accounts) + 1).rjust(18)  # Exact: 18 characters, right-aligned
        account = Account(ID=self.guid(), Code=code, Name=name, Timestamp=self.tick(), **fields)
        data.accounts[account.ID] = account
        return account

    def add_contact(self, division: int, account_id: str, full_name: str, *, email: str | None,
                    main: bool = True) -> Contact:
        data = self.divisions[division]
        contact = Contact(self.guid(), account_id, full_name, email, None, main, self.tick())
        data.contacts[contact.ID] = contact
        if main:
            self.change_account(division, account_id, MainContact=contact.ID)
        return contact

    def change_account(self, division: int, account_id: str, **fields: Any) -> Account:
        account = self.divisions[division].accounts[account_id]
        for name, value in fields.items():
            setattr(account, name, value)
        account.Timestamp = self.tick()
        return account

    def new_invoice(self, division: int, account_id: str, amount: Decimal | str, *, currency: str | None = None,
                    invoice_date: date | None = None, due_days: int = 30, your_ref: str | None = None,
                    status: int = 50, credit_note: bool = False, rate: Decimal | str = "1") -> SalesInvoice:
        """A sales invoice; processed (50) ones are booked: a receivable term and a PDF document exist."""
        data = self.divisions[division]
        invoice_date = invoice_date or self.clock.now().date()
        number = self._next_number(data) if status == 50 else None
        invoice = SalesInvoice(self.guid(), account_id, number, status, currency or data.Currency, Decimal(amount),
                               invoice_date, invoice_date + timedelta(days=due_days), your_ref,
                               8021 if credit_note else 8020, self.tick())
        data.invoices[invoice.InvoiceID] = invoice
        if status == 50:
            self._book(data, invoice, Decimal(rate))
        return invoice

    def pay(self, division: int, invoice_id: str, amount: Decimal | str | None = None, *,
            on: date | None = None) -> None:
        """The customer paid (all, or `amount`) and the bookkeeper matched it: terms split and close as in Exact."""
        data = self.divisions[division]
        on = on or self.clock.now().date()
        terms = sorted((t for t in data.terms_of.get(invoice_id, []) if t.Status != 50
                        and t.TransactionType != 40), key=lambda t: (t.DueDate, t.Timestamp))
        left = Decimal(amount) if amount is not None else sum((abs(t.AmountFC) for t in terms), Decimal(0))
        paid = left
        for term in terms:
            if left <= 0:
                break
            open_amount = abs(term.AmountFC)
            if left < open_amount:  # split: the matched part closes, the rest stays open with a new EntryID
                sign = 1 if term.AmountFC > 0 else -1
                rest = Term(**{**term.__dict__, "ID": self.guid(), "EntryID": self.guid(),
                               "AmountFC": sign * (open_amount - left), "Timestamp": self.tick()})
                data.add_term(rest)
                term.AmountFC = sign * left
            term.Status, term.LastPaymentDate, term.Timestamp = 50, on, self.tick()
            term.IsFullyPaid = True
            left -= open_amount
        if terms:
            first = terms[0]
            bank = Term(self.guid(), self.guid(), self.guid(), first.Account, -first.AmountFC / abs(first.AmountFC)
                        * paid, first.Currency, first.RateFC, on, on, first.InvoiceNumber, None, 50, -paid, 40,
                        Timestamp=self.tick())
            data.add_term(bank)

    def unmatched_payment(self, division: int, invoice_id: str, amount: Decimal | str,
                          *, on: date | None = None) -> Term:
        """A bank receipt booked on the customer naming the invoice, not yet matched (an open cash-flow term)."""
        data = self.divisions[division]
        invoice = data.invoices[invoice_id]
        on = on or self.clock.now().date()
        term = Term(self.guid(), self.guid(), self.guid(), invoice.InvoiceTo, -RECEIVABLE_SIGN * Decimal(amount),
                    invoice.Currency, Decimal(1), on, on, invoice.InvoiceNumber, None, 20,
                    -RECEIVABLE_SIGN * Decimal(amount), 40, Timestamp=self.tick())
        data.add_term(term)
        return term

    def supplier_payment(self, division: int, account_id: str, amount: Decimal | str) -> Term:
        """A payment to a supplier: appears in sync/Cashflow/PaymentTerms as LineType 22, never as a receivable."""
        data = self.divisions[division]
        today = self.clock.now().date()
        term = Term(self.guid(), self.guid(), self.guid(), account_id, Decimal(amount), data.Currency, Decimal(1),
                    today, today, self._next_number(data), None, 20, Decimal(amount), 30, LineType=22,
                    Timestamp=self.tick())
        data.add_term(term)
        return term

    def _next_number(self, data: Division) -> int:
        data.last_number += 1
        return data.last_number

    def _book(self, data: Division, invoice: SalesInvoice, rate: Decimal) -> Document:
        sign = -RECEIVABLE_SIGN if invoice.Type == 8021 else RECEIVABLE_SIGN
        term = Term(self.guid(), self.guid(), invoice.InvoiceID, invoice.InvoiceTo, sign * invoice.AmountFC,
                    invoice.Currency, rate, invoice.DueDate, invoice.InvoiceDate, invoice.InvoiceNumber,
                    invoice.YourRef, 20, sign * invoice.AmountFC, 21 if invoice.Type == 8021 else 20,
                    Timestamp=self.tick())
        data.add_term(term)
        return self._document(data, invoice)

    def _document(self, data: Division, invoice: SalesInvoice) -> Document:
        """A Document of the invoice with its PDF attachment, as processing and each print create one."""
        document = Document(self.guid(), invoice.InvoiceID, f"Factuur {invoice.InvoiceNumber}", invoice.InvoiceTo,
                            self.guid(), f"Factuur {invoice.InvoiceNumber}.pdf", _pdf(invoice),
                            self.clock.now().astimezone(_AMSTERDAM).replace(tzinfo=None))  # Dutch local time
        data.documents[document.ID] = document
        return document

    @classmethod
    def seeded(cls, *, seed: int = 1, division: int = 123456, accounts: int = 20, invoices: int = 40,
               clock: VirtualClock | None = None, **options: Any) -> ExactSimulator:
        return cls(clock, seed=seed, division=division, accounts=accounts, invoices=invoices, **options)

    def _seed(self, division: int, accounts: int, invoices: int) -> None:
        """A deterministic division: accounts (some without e-mail but with a main contact), processed invoices,
        a few partly paid, one in GBP, one credit note, a draft and an unprocessed invoice, a supplier payment."""
        self.add_division(division, "Bakkerij De Korenschoof B.V.")
        self.add_division(division + 1, "Korenschoof Holding B.V.")
        today = self.clock.now().date()
        made = []
        for i in range(accounts):
            business = i % 4 != 3
            account = self.add_account(
                division, f"Klant {i:05d} B.V." if business else f"J. de Vries {i:05d}",
                Email=None if i % 5 == 2 else f"debiteuren{i}@klant{i}.nl",
                Phone=f"+31 20 555 {i:04d}", AddressLine1=f"Dorpsstraat {i + 1}", Postcode="1234 AB",
                City="Utrecht", Country="NL " if i % 7 == 0 else "NL",  # Exact sometimes pads codes
                ChamberOfCommerce=f"{30000000 + i}" if business else None,
                VATNumber=f"NL{800000000 + i}B01" if business and i % 2 == 0 else None,
                Language="NL" if i % 6 else "EN",
            )
            if account.Email is None:
                self.add_contact(division, account.ID, f"Petra Jansen {i}", email=f"petra{i}@klant{i}.nl")
            made.append(account)
        for n in range(invoices):
            account = made[n % len(made)]
            amount = Decimal(self.rng.randrange(5_000, 500_000)) / 100
            self.new_invoice(division, account.ID, amount, invoice_date=today - timedelta(days=self.rng.randrange(5, 120)),
                            due_days=self.rng.choice((14, 30)), your_ref=f"PO-{n:05d}")
        invoice_ids = list(self.divisions[division].invoices)
        if invoice_ids:
            self.pay(division, invoice_ids[0], Decimal("10.00"))
            if len(invoice_ids) > 2:
                self.pay(division, invoice_ids[1])
        if made:
            self.new_invoice(division, made[0].ID, "250.00", currency="GBP", rate="1.15", your_ref="PO-GBP")
            self.new_invoice(division, made[0].ID, "60.50", credit_note=True)
            self.new_invoice(division, made[0].ID, "99.00", status=20)  # open, not yet processed
            self.new_invoice(division, made[0].ID, "12.00", status=10)  # draft
            self.supplier_payment(division, made[-1].ID, "500.00")

    # -- the Simulator protocol (providers.simkit.Simulator) ----------------------------------------------------

    platform = "exact"

    @classmethod
    def empty(cls, clock: VirtualClock) -> Self:
        return cls(clock, accounts=0, invoices=0)

    def seed(self, book: Book) -> SeededBook:
        code = self.current_division or self.add_division(123456, book.organisation).Code
        ids: dict[str, str] = {}
        for debtor in book.debtors:
            account = self.add_account(
                code, debtor.name, Email=debtor.email, Phone=debtor.phone, AddressLine1=debtor.street,
                Postcode=debtor.postcode, City=debtor.city, Country=debtor.country, ChamberOfCommerce=debtor.kvk,
                VATNumber=debtor.vat_number, Language="NL" if debtor.country in ("NL", "BE") else "EN",
            )
            if debtor.contact_person:
                self.add_contact(code, account.ID, debtor.contact_person, email=None)
            for item in debtor.invoices:
                invoice = self.new_invoice(code, account.ID, item.total, currency=item.currency,
                                           invoice_date=item.issued, due_days=item.due_days)
                ids[item.key] = invoice.InvoiceID
                if item.paid:
                    self.pay(code, invoice.InvoiceID, item.paid)
                if item.credited:
                    self.new_invoice(code, account.ID, item.credited, currency=item.currency,
                                     invoice_date=item.issued, credit_note=True)
        return SeededBook(tenant=str(code), invoices=ids)

    def record_payment(self, invoice_id: str, amount: Decimal | None = None) -> None:
        code = next(c for c, data in self.divisions.items() if invoice_id in data.invoices)
        self.pay(code, invoice_id, amount)

    def connection_urls(self, base_url: str) -> dict[str, str]:
        return {"api_url": base_url}

    # -- routing, auth and limits -----------------------------------------------------------------------------

    def _route(self, request: Request) -> Response:
        self.hosts.append(request.host)
        if not request.path.startswith("/api/v1/"):
            return super()._route(request)
        if len(request.url) > MAX_URL:  # unconfirmed how Exact refuses it (IIS answers a long query with a 404.15)
            return odata_error(400, f"The request URL is longer than {MAX_URL} characters.")
        check = self.oauth.check_bearer(request.headers.get("Authorization"))
        if not check.valid:
            return self._unauthorized(check.state)
        match = re.match(r"^/api/v1/(\d+)/", request.path)
        key = match.group(1) if match else "current"
        decision = self.limits.hit(key)
        if not decision.allowed:
            return self._too_many(decision)
        if "json" not in request.headers.get("Accept", ""):
            # Exact answers Atom XML by default; a client without `Accept: application/json` gets XML.
            response = Response('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"/>',
                                200, mimetype="application/atom+xml")
        else:
            try:
                response = super()._route(request)
            except ODataError as exc:
                response = odata_error(exc.status, exc.message)
        for name, value in _limit_headers(decision).items():
            response.headers[name] = value
        return response

    def _unauthorized(self, state: str) -> Response:
        reason = "The access token expired" if state == "expired" else "Invalid or revoked access token"
        return Response("", 401, headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'})

    def _too_many(self, decision: RateDecision) -> Response:
        exceeded = decision.exceeded
        assert exceeded is not None
        family = "Minutely-" if exceeded.name == "minute" else ""
        return Response(b"", 429, headers={
            f"X-RateLimit-{family}Limit": str(exceeded.limit),
            f"X-RateLimit-{family}Remaining": "0",
            f"X-RateLimit-{family}Reset": str(int(exceeded.reset_at * 1000)),
        })

    def rate_limited_response(self, retry_after: int | None) -> Response:
        """An injected 429 as Exact writes it: empty body, the minute family only, no Retry-After."""
        now = self.clock.time()
        return Response(b"", 429, headers={"X-RateLimit-Minutely-Limit": "60", "X-RateLimit-Minutely-Remaining": "0",
                                           "X-RateLimit-Minutely-Reset": str(int((now // 60 + 1) * 60 * 1000))})

    def server_error_response(self, status: int) -> Response:
        if status == 503:
            return Response(b"", 503)  # maintenance: empty body
        return Response("<html><body><h1>Runtime Error</h1></body></html>", status, mimetype="text/html")

    def expired_token_response(self) -> Response:
        return self._unauthorized("expired")

    def not_found_response(self, request: Request) -> Response:
        return odata_error(404, "Resource not found for the segment.")

    def malform(self, payload: Any) -> Any:
        body = payload.get("d") if isinstance(payload, dict) else None
        rows = body.get("results") if isinstance(body, dict) else body
        if isinstance(rows, list) and rows:
            rows[0] = {key: (value if key == "__metadata" else None) for key, value in rows[0].items()}
        return payload

    # -- endpoints --------------------------------------------------------------------------------------------

    def me(self, request: Request) -> Response:
        row = {"__metadata": {"uri": f"{request.host_url}api/v1/current/Me(guid'{uuid.UUID(int=1)}')",
                              "type": "Exact.Web.Api.System.Me"},
               "UserID": str(uuid.UUID(int=1)), "CurrentDivision": self.current_division,
               "FullName": "Anna Bakker", "Email": "anna@korenschoof.nl", "LanguageCode": "nl-NL"}
        if "$select" in request.args:
            row = _project(row, request.args["$select"], {k: "str" for k in row})
        return _json({"d": {"results": [row]}})

    def resource(self, request: Request, division: int, resource: str) -> Response:
        data = self.divisions.get(division)
        if data is None:
            return odata_error(403, "Forbidden: you have no access to this division.")
        if request.method == "POST":
            handler = {"salesinvoice/PrintedSalesInvoices": self._print_invoice,
                       "activities/CommunicationNotes": self._add_note}.get(resource)
            if handler is None:
                return odata_error(405 if resource in self.sets else 404, "Method not allowed on this resource.")
            try:
                body = json.loads(request.get_data() or b"{}", parse_float=Decimal)
            except ValueError:
                return odata_error(400, "The request body is not valid JSON.")
            return handler(request, data, body)
        if resource == "system/Divisions" and not self.system_divisions_allowed:
            return odata_error(403, "Forbidden")
        entity_set = self.sets.get(resource)
        if entity_set is None:
            return self.not_found_response(request)
        return self._collection(request, data, entity_set)

    def download(self, request: Request) -> Response:
        check = self.oauth.check_bearer(request.headers.get("Authorization"))
        if not check.valid:  # without the bearer token Exact shows its login page, not the file
            return Response("<!DOCTYPE html><html><head><title>Exact Online</title></head><body><form "
                            "id='LoginForm'>Log in</form></body></html>", 200, mimetype="text/html")
        attachment = request.args.get("ID", "").lower()
        for data in self.divisions.values():
            for document in data.documents.values():
                if document.attachment_id == attachment:
                    if request.args.get("Download") == "1":
                        return Response(document.pdf, 200, mimetype="application/pdf")
                    return Response("<html><body>Preview</body></html>", 200, mimetype="text/html")
        return Response("<html><body>Not found</body></html>", 404, mimetype="text/html")

    # -- OData collections ------------------------------------------------------------------------------------

    def _collection(self, request: Request, data: Division, entity_set: EntitySet) -> Response:
        args = request.args
        select = args.get("$select")
        if select is None and args.get("$top") != "1":
            return odata_error(400, "Please add a $select or a $top=1 statement to the query string.")
        if select is not None:
            _project({}, select, entity_set.fields)  # an unknown property is a 400 even when nothing matches
        tree = parse_filter(args["$filter"], entity_set.fields) if args.get("$filter") else None
        used = referenced_fields(tree)
        if entity_set.sync and used - {"Timestamp"}:
            return odata_error(400, "Only the Timestamp property can be used in the $filter of sync endpoints.")
        if entity_set.required_filter is not None:
            # unconfirmed wording: Exact's exact message for a missing mandatory filter is not documented
            if not used & entity_set.required_filter:
                return odata_error(400, f"$filter is mandatory on {entity_set.name}: filter on one of "
                                        f"{', '.join(sorted(entity_set.required_filter))}.")
            if entity_set.only_allowed_filters and used - entity_set.required_filter:
                return odata_error(400, f"$filter on {', '.join(sorted(used - entity_set.required_filter))} is not "
                                        f"supported by {entity_set.name}.")
        rows = [row for row in entity_set.rows(data, request) if tree is None or evaluate(tree, row)]
        rows.sort(key=lambda row: row[entity_set.order])
        skiptoken = args.get("$skiptoken")
        if skiptoken:
            after = _skip_value(skiptoken, entity_set.fields[entity_set.order])
            rows = [row for row in rows if row[entity_set.order] > after]
        fields = entity_set.fields
        top = args.get("$top")
        if top is not None and int(top) <= entity_set.page:
            shown = [_project(row, select, fields) for row in rows[: int(top)]]
            return _json({"d": shown})
        page = rows[: entity_set.page]
        body: dict[str, Any] = {"results": [_project(row, select, fields) for row in page]}
        if len(rows) > entity_set.page:
            last = page[-1][entity_set.order]
            token = f"{last}L" if fields[entity_set.order] == "int64" else f"guid'{last}'"
            query = [(k, v) for k, v in args.items(multi=True) if k != "$skiptoken"] + [("$skiptoken", token)]
            body["__next"] = f"{request.base_url}?{urlencode(query)}"
        return _json({"d": body})

    def _entity_sets(self) -> dict[str, EntitySet]:
        def receivables(data: Division, request: Request) -> Iterable[dict[str, Any]]:
            return (_term_row(t) for t in data.terms.values() if t.LineType != 22)

        def payment_terms(data: Division, request: Request) -> Iterable[dict[str, Any]]:
            return (_term_row(t) | {"Timestamp": t.Timestamp, "LineType": t.LineType} for t in data.terms.values())

        def accounts(data: Division, request: Request) -> Iterable[dict[str, Any]]:
            return (dict(a.__dict__) for a in data.accounts.values())

        def receivables_list(data: Division, request: Request) -> Iterable[dict[str, Any]]:
            return (_receivables_list_row(t, data) for t in data.terms.values() if t.Status != 50 and t.LineType != 22)

        term_fields = _RECEIVABLE_FIELDS | {"Timestamp": "int64", "LineType": "int"}
        account_fields = _ACCOUNT_FIELDS | {"Timestamp": "int64"}
        return {s.name: s for s in [
            EntitySet("cashflow/Receivables", _RECEIVABLE_FIELDS, receivables, required_filter=_RECEIVABLE_FILTERS),
            EntitySet("bulk/Cashflow/Receivables", _RECEIVABLE_FIELDS, receivables, page=BULK_PAGE,
                      required_filter=_RECEIVABLE_FILTERS, only_allowed_filters=True),
            EntitySet("sync/Cashflow/PaymentTerms", term_fields, payment_terms, page=BULK_PAGE, order="Timestamp",
                      sync=True),
            EntitySet("read/financial/ReceivablesList", {
                "HID": "int64", "AccountId": "guid", "AccountCode": "str", "AccountName": "str", "Amount": "decimal",
                "AmountInTransit": "decimal", "CurrencyCode": "str", "Description": "str", "DueDate": "date",
                "EntryNumber": "int", "InvoiceDate": "date", "InvoiceNumber": "int", "JournalCode": "str",
                "YourRef": "str"}, receivables_list, order="HID"),
            EntitySet("crm/Accounts", _ACCOUNT_FIELDS, accounts,
                      required_filter=frozenset({"ID", "Code", "Name", "Email", "Status", "ChamberOfCommerce",
                                                 "VATNumber", "IsSales"})),
            EntitySet("sync/CRM/Accounts", account_fields, accounts, page=BULK_PAGE, order="Timestamp", sync=True),
            EntitySet("crm/Contacts", {"ID": "guid", "Account": "guid", "FullName": "str", "Email": "str",
                                       "BusinessEmail": "str", "IsMainContact": "bool"},
                      lambda data, request: (dict(c.__dict__) for c in data.contacts.values()),
                      required_filter=frozenset({"ID", "Account", "Email"})),
            EntitySet("salesinvoice/SalesInvoices", {
                "InvoiceID": "guid", "InvoiceTo": "guid", "InvoiceNumber": "int", "Status": "int", "Currency": "str",
                "AmountFC": "decimal", "InvoiceDate": "date", "DueDate": "date", "YourRef": "str", "Type": "int"},
                lambda data, request: (dict(i.__dict__) for i in data.invoices.values()), order="InvoiceID",
                required_filter=frozenset({"InvoiceID", "InvoiceNumber", "InvoiceTo", "Status"})),
            EntitySet("activities/CommunicationNotes", {
                "ID": "guid", "Account": "guid", "Subject": "str", "Notes": "str", "Date": "datetime",
                "Created": "datetime"},
                lambda data, request: (dict(n.__dict__) for n in data.notes.values())),
            EntitySet("documents/Documents", {"ID": "guid", "Subject": "str", "Account": "guid",
                                              "FinancialTransactionEntryID": "guid", "Created": "datetime"},
                      lambda data, request: ({k: v for k, v in d.__dict__.items() if k[0].isupper()}
                                             for d in data.documents.values()),
                      required_filter=frozenset({"ID", "Account", "FinancialTransactionEntryID"})),
            EntitySet("documents/DocumentAttachments", {"ID": "guid", "Document": "guid", "FileName": "str",
                                                        "FileSize": "decimal", "Url": "str"},
                      lambda data, request: ({"ID": d.attachment_id, "Document": d.ID, "FileName": d.FileName,
                                              "FileSize": Decimal(len(d.pdf)),
                                              "Url": f"{request.host_url}docs/SysAttachment.aspx?ID={d.attachment_id}"
                                                     f"&_Division_={data.Code}"}
                                             for d in data.documents.values()),
                      required_filter=frozenset({"ID", "Document"})),
            EntitySet("system/Divisions", {"Code": "int", "Description": "str", "Current": "bool", "Country": "str",
                                           "Currency": "str"},
                      lambda data, request: ({"Code": d.Code, "Description": d.Description,
                                              "Current": d.Code == self.current_division, "Country": d.Country,
                                              "Currency": d.Currency} for d in self.divisions.values()),
                      order="Code"),
            EntitySet("hrm/Divisions", {"Code": "int", "Description": "str", "Main": "bool", "Country": "str",
                                        "Currency": "str"},
                      lambda data, request: ({"Code": d.Code, "Description": d.Description,
                                              "Main": d.Code == min(self.divisions), "Country": d.Country,
                                              "Currency": d.Currency} for d in self.divisions.values()),
                      order="Code"),
        ]}

    # -- writes -----------------------------------------------------------------------------------------------

    def _print_invoice(self, request: Request, data: Division, body: Mapping[str, Any]) -> Response:
        """POST salesinvoice/PrintedSalesInvoices: processes an Open invoice; re-sending a processed one is
        configurable (`resend_processed`) because the real behaviour is unconfirmed."""
        try:
            invoice = data.invoices[str(uuid.UUID(str(body.get("InvoiceID"))))]
        except (KeyError, ValueError):
            return odata_error(404, "Ongeldig: Factuur niet gevonden.")
        if invoice.Status == 10:
            return odata_error(500, "Ongeldig: een concept-factuur kan niet worden afgedrukt.")
        if invoice.Status == 50 and self.resend_processed == "refuse":
            return odata_error(500, "Ongeldig: de factuur is al verwerkt.")  # unconfirmed wording
        documents = [d for d in data.documents.values() if d.FinancialTransactionEntryID == invoice.InvoiceID]
        if invoice.Status == 20:  # processing books, numbers and documents the invoice
            invoice.Status, invoice.InvoiceNumber, invoice.Timestamp = 50, self._next_number(data), self.tick()
            document = self._book(data, invoice, Decimal(1))
            self.processed_by_api.append(invoice.InvoiceID)
        elif self.resend_document == "reuse" and documents:
            document = min(documents, key=lambda d: d.Created)
        else:
            document = self._document(data, invoice)
        account = data.accounts[invoice.InvoiceTo]
        answer: dict[str, Any] = {"InvoiceID": invoice.InvoiceID, "Document": document.ID,
                                  "DocumentCreationSuccess": "Document is aangemaakt.", "EmailCreationError": None,
                                  "EmailCreationSuccess": None}
        if body.get("SendEmailToCustomer"):
            contact = data.contacts.get(account.MainContact or "")
            recipient = account.Email or (contact.Email if contact else None)
            if recipient:
                self.record_mail(tenant=str(data.Code), recipients=[recipient], invoice_ids=[invoice.InvoiceID],
                                 kind="invoice", text=body.get("ExtraText"))
                answer["EmailCreationSuccess"] = "E-mail is verstuurd."
            else:  # unconfirmed whether Exact reports this as an error; no mail goes out in any case
                answer["EmailCreationError"] = "Geen e-mailadres bekend voor deze relatie."
        return _json({"d": answer}, status=201)

    def _add_note(self, request: Request, data: Division, body: Mapping[str, Any]) -> Response:
        account = str(body.get("Account") or "")
        if account not in data.accounts:
            return odata_error(500, "Verplicht: Relatie")
        note = Note(self.guid(), account, body.get("Subject"), body.get("Notes"),
                    _date_from_json(body.get("Date")),
                    self.clock.now().astimezone(_AMSTERDAM).replace(tzinfo=None))  # Dutch local time, as Exact
        data.notes[note.ID] = note
        return _json({"d": _serialise(dict(note.__dict__), {"Date": "datetime", "Created": "datetime"})}, status=201)


# --- helpers ------------------------------------------------------------------------------------------------------


def odata_error(status: int, message: str) -> Response:
    return _json({"error": {"code": "", "message": {"lang": "", "value": message}}}, status=status)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=_default), status, mimetype="application/json")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def _serialise(row: Mapping[str, Any], fields: Mapping[str, Kind]) -> dict[str, Any]:
    out = {}
    for name, value in row.items():
        kind = fields.get(name)
        if isinstance(value, datetime):
            value = f"/Date({int(value.replace(tzinfo=UTC).timestamp() * 1000)})/"
        elif isinstance(value, date):
            value = f"/Date({int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)})/"
        elif kind == "int64" and value is not None:
            value = str(value)  # Edm.Int64 travels as a JSON string
        out[name] = value
    return out


def _project(row: Mapping[str, Any], select: str | None, fields: Mapping[str, Kind]) -> dict[str, Any]:
    names = [n.strip() for n in select.split(",")] if select else list(fields)
    for name in names:
        if name not in fields:
            raise ODataError(400, f"Could not find a property named '{name}' on type 'Exact.Web.Api.Models'.")
    return {"__metadata": {"type": "Exact.Web.Api.Models"}} | _serialise({n: row.get(n) for n in names}, fields)


def _skip_value(token: str, kind: Kind) -> Any:
    if kind == "int64":
        return int(token.removesuffix("L"))
    if kind == "int":
        return int(token)
    return token.removeprefix("guid'").removesuffix("'")


def _date_from_json(value: Any) -> date | None:
    match = re.match(r"^/Date\((-?\d+)\)/$", str(value or ""))
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC).date()
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _term_row(term: Term) -> dict[str, Any]:
    row = {k: v for k, v in term.__dict__.items() if k not in ("Timestamp", "LineType")}
    row["AmountDC"] = (term.AmountFC * term.RateFC).quantize(Decimal("0.01"))
    return row


def _receivables_list_row(term: Term, data: Division) -> dict[str, Any]:
    """The Outstanding Items report: division currency, positive for what the customer owes."""
    account = data.accounts.get(term.Account)
    return {"HID": term.Timestamp, "AccountId": term.Account, "AccountCode": account.Code if account else None,
            "AccountName": account.Name if account else None,
            "Amount": (RECEIVABLE_SIGN * term.AmountFC * term.RateFC).quantize(Decimal("0.01")),
            "AmountInTransit": Decimal(0), "CurrencyCode": data.Currency, "Description": None,
            "DueDate": term.DueDate, "EntryNumber": term.InvoiceNumber, "InvoiceDate": term.InvoiceDate,
            "InvoiceNumber": term.InvoiceNumber, "JournalCode": "70",
            "YourRef": term.YourRef if term.TransactionType != 40 else None}


def _limit_headers(decision: RateDecision) -> dict[str, str]:
    minute, day = decision.window("minute"), decision.window("day")
    return {
        "X-RateLimit-Limit": str(day.limit), "X-RateLimit-Remaining": str(day.remaining),
        "X-RateLimit-Reset": str(int(day.reset_at * 1000)),
        "X-RateLimit-Minutely-Limit": str(minute.limit), "X-RateLimit-Minutely-Remaining": str(minute.remaining),
        "X-RateLimit-Minutely-Reset": str(int(minute.reset_at * 1000)),
    }


def _pdf(invoice: SalesInvoice) -> bytes:
    return (f"%PDF-1.4\n% Exact Online simulator: factuur {invoice.InvoiceNumber} "
            f"{invoice.Currency} {invoice.AmountFC}\n%%EOF\n").encode()


__all__ = ["HOSTS", "ExactSimulator", "parse_filter"]
