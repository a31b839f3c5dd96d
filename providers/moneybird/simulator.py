"""A Moneybird API v2 look-alike: the paths, field names, filters, paging, errors and limits of the real platform.

Built from `shared/reference/providers.md` (authoritative) and Moneybird's OpenAPI description (v2-20261002, as
vendored by sandorian/moneybird-api-php). Where Moneybird's behaviour is not documented the simulator picks the
stricter reading and says so in a comment, so an adapter that works here also works against the real platform:

- `GET sales_invoices` and `GET sales_invoices/synchronization` both default to `period:this_year` when no `filter`
  is given (documented for the listing; assumed for synchronization).
- `send_reminders` refuses (422) invoices of another contact, in a state other than open/late/reminded, or whose
  workflow, document style or identity differ from the entry's (Moneybird groups reminders by those).
- Adding a note does not change the invoice's `version` (not documented either way).
- Pausing twice / resuming an unpaused invoice answers 422 (the status is not documented; the texts are).
- An expired signed PDF URL answers 403, and one that also carries an Authorization header 400 (S3-like; the
  storage host's real answers are not documented).
- Successful responses carry no `RateLimit-*` headers (Moneybird documents them for 429 only).

Everything is seeded from one integer, time comes from a `VirtualClock`, and everything the platform "sent" is
kept for tests: `reminders` (each `send_reminders` entry with its text and delivery method), `mail`, and
`storage_requests` (the headers the signed PDF host saw, to prove no bearer token reached it).
"""

from __future__ import annotations

import json
import random
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from providers.simkit import (
    MONEYBIRD_OAUTH,
    Book,
    OAuthServer,
    RateWindows,
    SeededBook,
    SimulatorBase,
    VirtualClock,
    Window,
)

STATES = ("draft", "scheduled", "open", "pending_payment", "reminded", "late", "paid", "uncollectible")
REMINDABLE = ("open", "late", "reminded")
DELIVERY_METHODS = ("Email", "Manual")
RATE_LIMIT, RATE_SECONDS = 150, 300
PDF_URL_LIFETIME = 30.0
DEFAULT_PER_PAGE = 50  # unconfirmed: Moneybird's default page size is not documented; the maximum (100) is


def _ms(moment: datetime) -> str:
    """`2026-10-02T10:43:51.305Z`: Moneybird's timestamps (UTC, milliseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _amount(value: Decimal) -> str:
    """Moneybird writes amounts like `"363.0"` and `"121.5"`: at least one decimal, no trailing zeros beyond it."""
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


class Problem(Exception):
    """An error answer in Moneybird's own shape."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _not_found() -> Problem:
    return Problem(404, {"error": "record not found", "symbolic": {"id": "not_found"}})


def _required(name: str) -> Problem:
    # the shape of Moneybird's parameter errors (e.g. `{"error": "Url is required", "symbolic": {"url": "required"}}`)
    return Problem(400, {"error": f"{name} is required", "symbolic": {name: "required"}})


def _invalid(name: str) -> Problem:
    return Problem(400, {"error": f"{name} does not have a valid value", "symbolic": {name: "invalid"}})


def _unprocessable(field_name: str, message: str, code: str) -> Problem:
    return Problem(422, {"error": {field_name: [message]}, "details": {field_name: [{"error": code}]}})


# --- the books ----------------------------------------------------------------------------------------------------


@dataclass
class Contact:
    id: str
    company_name: str | None
    firstname: str | None
    lastname: str | None
    address1: str | None
    zipcode: str | None
    city: str | None
    country: str
    email: str | None
    send_invoices_to_email: str | None
    customer_id: str
    created_at: datetime
    updated_at: datetime
    version: int
    attention: str | None = None
    send_invoices_to_attention: str | None = None
    address2: str | None = None
    phone: str | None = None
    tax_number: str | None = None
    chamber_of_commerce: str | None = None
    delivery_method: str = "Email"
    archived: bool = False
    contact_people: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SalesInvoice:
    id: str
    contact_id: str
    number: str | None
    state: str
    invoice_date: date
    due_date: date
    total_excl_tax: Decimal
    tax_rate: Decimal
    workflow_id: str
    document_style_id: str
    identity_id: str
    created_at: datetime
    updated_at: datetime
    version: int
    currency: str = "EUR"
    reference: str | None = None
    language: str = "nl"
    paused: bool = False
    reminder_count: int = 0
    next_reminder: date | None = None
    sent_at: date | None = None
    paid_at: date | None = None
    marked_uncollectible_on: date | None = None
    payments: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    """Raw field values that replace the rendered ones (malformed records for tests)."""

    @property
    def total(self) -> Decimal:
        return (self.total_excl_tax * (1 + self.tax_rate)).quantize(Decimal("0.01"))

    @property
    def paid(self) -> Decimal:
        return sum((Decimal(p["price"]) for p in self.payments), Decimal("0"))

    @property
    def unpaid(self) -> Decimal:
        return self.total - self.paid


@dataclass
class Administration:
    id: str
    name: str
    identity: dict[str, Any]
    workflows: list[dict[str, Any]]
    document_styles: list[dict[str, Any]]
    contacts: dict[str, Contact] = field(default_factory=dict)
    invoices: dict[str, SalesInvoice] = field(default_factory=dict)
    currency: str = "EUR"
    country: str = "NL"
    language: str = "nl"


@dataclass
class SignedUrl:
    administration_id: str
    invoice_id: str
    expires_at: float


_COMPANIES = ["Bakkerij De Gouden Korst", "Installatiebedrijf Van Dijk", "Hoveniersbedrijf Groen",
              "Drukkerij Letterzetter",
              "Autobedrijf Jansen", "Schildersbedrijf Kwast", "Architectenbureau Lijn", "Transport De Vries",
              "Brouwerij 't Vat", "Kapsalon Knip", "Studio Pixel", "Fietsenmaker Spaak"]
_SUFFIXES = ["B.V.", "V.O.F.", "", "BV", "bvba"]
_FIRSTNAMES = ["Jan", "Sanne", "Pieter", "Fatima", "Lotte", "Mohammed", "Eva", "Daan", "Noor", "Bram"]
_LASTNAMES = ["de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "El Amrani", "Mulder", "de Boer", "Peeters"]
_CITIES = [("Amsterdam", "1012 AB", "NL"), ("Utrecht", "3511 CE", "NL"), ("Rotterdam", "3011 AD", "NL"),
           ("Enschede", "7511 JR", "NL"), ("Antwerpen", "2000", "BE"), ("Gent", "9000", "BE")]
_STEP_TEXT = ("Geachte {recipient.name},\n\nUit onze administratie blijkt dat u de onderstaande facturen nog niet "
              "voldaan heeft.\n\n{reminders_table}\n\nMet vriendelijke groet,\n\n{company.company_name}")


_ANY_BOOKS_SCOPE = ("sales_invoices", "settings", "estimates", "documents", "bank")
_SCOPES: dict[str, tuple[str, ...]] = {
    # the "Required scope(s)" of each operation in the OpenAPI description; unlisted endpoints need sales_invoices
    "administrations": (),
    "contact_versions": _ANY_BOOKS_SCOPE, "contacts_by_ids": _ANY_BOOKS_SCOPE, "contact": _ANY_BOOKS_SCOPE,
    "workflows": _ANY_BOOKS_SCOPE, "document_styles": _ANY_BOOKS_SCOPE,  # unconfirmed for document_styles
    "default_identity": ("settings",),
}

# --- the simulator ------------------------------------------------------------------------------------------------


def _rule(path: str, endpoint: str, methods: list[str]) -> Rule:
    return Rule(path, endpoint=endpoint, methods=methods)


class MoneybirdSimulator(SimulatorBase):
    """Moneybird API v2 with OAuth, synchronization, reminders, notes, PDF links, rate limiting and faults."""

    url_map = Map([
        _rule("/oauth/authorize", "oauth_authorize", ["GET", "POST"]),
        _rule("/oauth/token", "oauth_token", ["POST", "GET"]),
        _rule("/api/v2/administrations", "administrations", ["GET"]),
        _rule("/api/v2/<admin>/sales_invoices", "sales_invoices", ["GET"]),
        _rule("/api/v2/<admin>/sales_invoices/synchronization", "sales_invoice_versions", ["GET"]),
        _rule("/api/v2/<admin>/sales_invoices/synchronization", "sales_invoices_by_ids", ["POST"]),
        _rule("/api/v2/<admin>/sales_invoices/send_reminders", "send_reminders", ["POST"]),
        _rule("/api/v2/<admin>/sales_invoices/<invoice_id>", "sales_invoice", ["GET"]),
        _rule("/api/v2/<admin>/sales_invoices/<invoice_id>/notes", "add_note", ["POST"]),
        _rule("/api/v2/<admin>/sales_invoices/<invoice_id>/pause", "pause", ["POST"]),
        _rule("/api/v2/<admin>/sales_invoices/<invoice_id>/resume", "resume", ["POST"]),
        _rule("/api/v2/<admin>/sales_invoices/<invoice_id>/download_pdf", "download_pdf", ["GET"]),
        _rule("/api/v2/<admin>/contacts/synchronization", "contact_versions", ["GET"]),
        _rule("/api/v2/<admin>/contacts/synchronization", "contacts_by_ids", ["POST"]),
        _rule("/api/v2/<admin>/contacts/<contact_id>", "contact", ["GET"]),
        _rule("/api/v2/<admin>/workflows", "workflows", ["GET"]),
        _rule("/api/v2/<admin>/document_styles", "document_styles", ["GET"]),
        _rule("/api/v2/<admin>/identities/default", "default_identity", ["GET"]),
    ])

    def __init__(
        self,
        *,
        seed: int = 0,
        contacts: int = 12,
        invoices: int = 40,
        clock: VirtualClock | None = None,
        administrations: tuple[str, ...] = ("Parkietje B.V.",),
        automatic_reminders: bool = False,
        retry_after: str = "delta",
        storage_host: str = "moneybird-storage.test",
        base_url: str = "https://moneybird.com",
    ) -> None:
        super().__init__(clock)
        self.oauth = OAuthServer(MONEYBIRD_OAUTH, self.clock, title="Moneybird")
        self.rate = RateWindows(self.clock, [Window("requests", RATE_LIMIT, RATE_SECONDS)])
        self.retry_after_style = retry_after
        """`delta` (seconds) or `epoch` (Moneybird's OpenAPI text describes Retry-After as epoch seconds)."""
        self.storage_host = storage_host
        self.storage_url = f"https://{storage_host}"
        """Where signed PDF links point (served on loopback: this simulator under another host name)."""
        self.base_url = base_url.rstrip("/")
        self.reminders: list[dict[str, Any]] = []
        """Every reminder `send_reminders` sent: the entry as received plus `administration_id` and `sent_at`."""
        self.storage_requests: list[dict[str, str | None]] = []
        """Every request the signed PDF host received: `path` and the `authorization` header it carried."""
        self._signed: dict[str, SignedUrl] = {}
        self._rng = random.Random(seed)
        self._next_id = 400_000_000_000_000_000 + seed * 1_000_000_000 + 1
        self._numbers: dict[str, int] = {}
        self._states_as_of: date | None = None
        self._books_lock = threading.RLock()
        self.books: dict[str, Administration] = {}
        for name in administrations:
            self.add_administration(name, automatic_reminders=automatic_reminders)
        first = self.administration
        for _ in range(contacts):
            self._seed_contact(first)
        for _ in range(invoices):
            self._seed_invoice(first)
        if invoices >= 10:  # a credit invoice: negative totals, negative total_unpaid, still "open"
            contact = next(iter(first.contacts.values()))
            self.new_invoice(contact.id, total_excl_tax=Decimal("-50.00"), state="open", administration=first)

    # -- identities and time ------------------------------------------------------------------------------------

    @property
    def administration(self) -> Administration:
        return next(iter(self.books.values()))

    @property
    def administration_id(self) -> str:
        return self.administration.id

    def _id(self) -> str:
        value = self._next_id
        self._next_id += 1 + self._rng.randrange(7)
        return str(value)

    @property
    def today(self) -> date:
        return self.clock.now().date()

    def _touch(self, record: Contact | SalesInvoice) -> None:
        """Every change gets a new `version` (`updated_at` in epoch seconds, kept strictly increasing)."""
        now = self.clock.now()
        record.updated_at = now
        record.version = max(int(now.timestamp()), record.version + 1)

    # -- seeding ------------------------------------------------------------------------------------------------

    def _new_administration(self, name: str, automatic_reminders: bool) -> Administration:
        now = self.clock.now()
        admin_id = self._id()
        identity = {
            "id": self._id(), "administration_id": admin_id, "company_name": name, "city": "Enschede",
            "country": "NL", "zipcode": "7523XD", "address1": "Brouwerijstraat 26", "address2": None,
            "email": "info@parkietje.example", "phone": "0612345678", "bank_account_name": name,
            "bank_account_number": "NL50TEST0166567191", "bank_account_bic": None, "custom_fields": [],
            "updated_at": _ms(now), "created_at": _ms(now), "chamber_of_commerce": "08155914",
            "tax_number": "NL817575546B01",
        }

        def workflow(kind: str, title: str, default: bool) -> dict[str, Any]:
            workflow_id = self._id()
            steps = [
                {"id": self._id(), "administration_id": admin_id, "step_order": order, "due_interval": interval,
                 "reminder_delay": 0, "reminder_text": None if order == 0 else _STEP_TEXT,
                 "reminder_auto_send": automatic_reminders and order > 0 and kind == "InvoiceWorkflow",
                 "action": None, "created_at": _ms(now), "updated_at": _ms(now)}
                for order, interval in ((0, 14), (1, 10), (2, 5), (3, 5))
            ]
            return {"id": workflow_id, "administration_id": admin_id, "type": kind, "name": title, "default": default,
                    "currency": "EUR", "language": "nl", "active": True, "prices_are_incl_tax": False,
                    "payment_methods": [], "collection_method": None, "number_of_collections": 0,
                    "show_qr_code": True, "created_at": _ms(now), "updated_at": _ms(now), "steps": steps}

        style = {
            "id": self._id(), "administration_id": admin_id, "name": "Standaard", "identity_id": identity["id"],
            "default": True, "logo_hash": None, "logo_container_full_width": False, "logo_display_width": 50,
            "logo_position": "right", "background_hash": None, "paper_size": "A4", "address_position": "left",
            "font_size": 9, "font_family": "lucida_grande", "print_on_stationery": False, "custom_css": None,
            "invoice_sender_address": [{"field": "company_name", "bold": True}], "invoice_metadata_left": [],
            "invoice_metadata_right": [{"field": "invoice_date"}, {"field": "due_date"}],
            "estimate_sender_address": [], "estimate_metadata_left": [], "estimate_metadata_right": [],
            "created_at": _ms(now), "updated_at": _ms(now),
        }
        return Administration(
            id=admin_id, name=name, identity=identity,
            workflows=[workflow("InvoiceWorkflow", "Standaard", True), workflow("InvoiceWorkflow", "Zakelijk", False),
                       workflow("EstimateWorkflow", "Standaard", True)],
            document_styles=[style],
        )

    def _seed_contact(self, admin: Administration) -> Contact:
        rng = self._rng
        city, zipcode, country = rng.choice(_CITIES)
        first, last = rng.choice(_FIRSTNAMES), rng.choice(_LASTNAMES)
        if rng.random() < 0.7:
            company = f"{rng.choice(_COMPANIES)} {rng.choice(_SUFFIXES)}".strip()
            slug = "".join(ch for ch in company.lower() if ch.isalnum())[:16]
            fields = dict(company_name=company, firstname=None, lastname=None,
                          email=f"info@{slug}.example", chamber_of_commerce=f"{rng.randrange(10**7, 10**8)}",
                          tax_number=f"{country}{rng.randrange(10**8, 10**9)}B01" if country == "NL" else
                          f"BE0{rng.randrange(10**8, 10**9)}")
            fields["send_invoices_to_email"] = (f"facturen@{slug}.example" if rng.random() < 0.5 else fields["email"])
        else:
            email = f"{first.lower()}.{last.lower().replace(' ', '')}@mail.example"
            fields = dict(company_name=None, firstname=first, lastname=last, email=email, send_invoices_to_email=email)
        street = f"{rng.choice(['Hoofdstraat', 'Kerkweg', 'Dorpsplein'])} {rng.randrange(1, 200)}"
        return self.new_contact(address1=street,
                                zipcode=zipcode, city=city, country=country, administration=admin, **fields)

    def _seed_invoice(self, admin: Administration) -> SalesInvoice:
        rng = self._rng
        contact = rng.choice(list(admin.contacts.values()))
        today = self.today
        roll = rng.random()
        if roll < 0.25:
            state, age = "paid", rng.randrange(20, 500)
        elif roll < 0.45:
            state, age = "open", rng.randrange(0, 13)
        elif roll < 0.70:
            state, age = "late", rng.randrange(16, 560)
        elif roll < 0.85:
            state, age = "reminded", rng.randrange(30, 560)
        elif roll < 0.90:
            state, age = "pending_payment", rng.randrange(16, 60)
        elif roll < 0.95:
            state, age = "draft", 0
        else:
            state, age = "uncollectible", rng.randrange(200, 700)
        amount = Decimal(rng.randrange(5_000, 500_000)) / 100
        invoice = self.new_invoice(contact.id, total_excl_tax=amount, invoice_date=today - timedelta(days=age),
                                   state=state, administration=admin)
        if state == "reminded":
            invoice.reminder_count = rng.randrange(1, 3)
        if state != "paid" and state != "draft" and rng.random() < 0.15:
            self.partial_payment(invoice.id, (invoice.total / 2).quantize(Decimal("0.01")), administration=admin)
        return invoice

    # -- the Simulator protocol (providers.simkit.Simulator) ----------------------------------------------------

    platform = "moneybird"

    @classmethod
    def empty(cls, clock: VirtualClock) -> Self:
        return cls(contacts=0, invoices=0, clock=clock)

    def seed(self, book: Book) -> SeededBook:
        admin = self.administration
        admin.name = admin.identity["company_name"] = admin.identity["bank_account_name"] = book.organisation
        ids: dict[str, str] = {}
        for debtor in book.debtors:
            first, _, last = debtor.name.partition(" ")
            person = dict(company_name=None, firstname=first, lastname=last) if debtor.kind == "consumer" else dict(
                company_name=debtor.name, firstname=None, lastname=None)
            contact = self.new_contact(
                administration=admin, address1=debtor.street, zipcode=debtor.postcode, city=debtor.city,
                country=debtor.country, email=debtor.email, send_invoices_to_email=debtor.email, phone=debtor.phone,
                chamber_of_commerce=debtor.kvk, tax_number=debtor.vat_number, attention=debtor.contact_person,
                **person)
            for item in debtor.invoices:
                invoice = self.new_invoice(contact.id, total_excl_tax=item.net, tax_rate=item.vat_rate,
                                           invoice_date=item.issued, due_days=item.due_days, administration=admin,
                                           currency=item.currency)
                ids[item.key] = invoice.id
                if item.paid:
                    self.partial_payment(invoice.id, item.paid, administration=admin)
                if item.credited:  # Moneybird: a credit invoice of its own, negative and open
                    net = (item.credited / (1 + item.vat_rate)).quantize(Decimal("0.01"))
                    self.new_invoice(contact.id, total_excl_tax=-net, tax_rate=item.vat_rate,
                                     invoice_date=item.issued, administration=admin, currency=item.currency)
        self._states_as_of = None  # invoices booked in the past fall due at the next look
        return SeededBook(tenant=admin.id, invoices=ids)

    def record_payment(self, invoice_id: str, amount: Decimal | None = None) -> None:
        admin = next(a for a in self.books.values() if invoice_id in a.invoices)
        with self._books_lock:
            invoice = admin.invoices[invoice_id]
            self.partial_payment(invoice_id, invoice.unpaid if amount is None else amount, administration=admin)

    def overnight(self) -> None:
        with self._books_lock:
            self.advance_states()

    def connection_urls(self, base_url: str) -> dict[str, str]:
        return {"api_url": base_url}

    def served_at(self, base_url: str) -> None:
        """API links on `base_url` (127.0.0.1); signed PDF links on the same port as `localhost`, so the other host
        is reachable without a name lookup that would leave the machine."""
        self.base_url = base_url
        port = urlsplit(base_url).port
        self.storage_host, self.storage_url = "localhost", f"http://localhost:{port}"

    # -- mutators for tests -------------------------------------------------------------------------------------

    def add_administration(self, name: str, *, automatic_reminders: bool = False) -> Administration:
        """Another administration the user can reach (an empty one: its own workflows, style and identity)."""
        admin = self._new_administration(name, automatic_reminders)
        self.books[admin.id] = admin
        return admin

    def new_contact(self, *, administration: Administration | None = None, **fields: Any) -> Contact:
        admin = administration or self.administration
        now = self.clock.now()
        defaults: dict[str, Any] = dict(company_name=None, firstname=None, lastname=None, address1=None, zipcode=None,
                                        city=None, country="NL", email=None, send_invoices_to_email=None)
        values = defaults | fields
        contact = Contact(id=self._id(), customer_id=str(len(admin.contacts) + 1), created_at=now, updated_at=now,
                          version=int(now.timestamp()), **values)
        admin.contacts[contact.id] = contact
        return contact

    def change_contact(self, contact_id: str, **fields: Any) -> Contact:
        contact = self._contact(self.administration, contact_id)
        for name, value in fields.items():
            setattr(contact, name, value)
        self._touch(contact)
        return contact

    def new_invoice(
        self,
        contact_id: str,
        *,
        total_excl_tax: Decimal | str = Decimal("100.00"),
        tax_rate: Decimal | str = Decimal("0.21"),
        invoice_date: date | None = None,
        due_days: int = 14,
        state: str = "open",
        workflow_id: str | None = None,
        administration: Administration | None = None,
        **fields: Any,
    ) -> SalesInvoice:
        """An invoice as Moneybird would hold it after sending (`state` decides number, `sent_at`, payments)."""
        admin = administration or self.administration
        if state not in STATES:
            raise ValueError(f"unknown state {state}")
        now = self.clock.now()
        invoice_date = invoice_date or self.today
        number = None
        if state != "draft":
            year = str(invoice_date.year)
            self._numbers[year] = self._numbers.get(year, 0) + 1
            number = f"{year}-{self._numbers[year]:04d}"
        invoice = SalesInvoice(
            id=self._id(), contact_id=contact_id, number=number, state=state, invoice_date=invoice_date,
            due_date=invoice_date + timedelta(days=due_days), total_excl_tax=Decimal(str(total_excl_tax)),
            tax_rate=Decimal(str(tax_rate)),
            workflow_id=workflow_id or admin.workflows[0]["id"], document_style_id=admin.document_styles[0]["id"],
            identity_id=admin.identity["id"], created_at=now, updated_at=now, version=int(now.timestamp()),
            sent_at=None if state == "draft" else invoice_date, reference=f"Project {self._rng.randrange(1, 90)}",
            **fields,
        )
        invoice.next_reminder = invoice.due_date
        invoice.events.append(self._event("sales_invoice_created"))
        admin.invoices[invoice.id] = invoice
        if state == "paid":
            invoice.payments.append(self._payment(admin, invoice, invoice.total))
            invoice.paid_at = invoice.due_date
        return invoice

    def pay(self, invoice_id: str) -> SalesInvoice:
        """The debtor paid the rest: state `paid`."""
        invoice = self._invoice(self.administration, invoice_id)
        return self.partial_payment(invoice_id, invoice.unpaid)

    def partial_payment(self, invoice_id: str, amount: Decimal | str, *,
                        administration: Administration | None = None) -> SalesInvoice:
        admin = administration or self.administration
        invoice = self._invoice(admin, invoice_id)
        invoice.payments.append(self._payment(admin, invoice, Decimal(str(amount))))
        invoice.events.append(self._event("sales_invoice_payment_registered"))
        if invoice.unpaid == 0:
            invoice.state, invoice.paid_at = "paid", self.today
            invoice.events.append(self._event("sales_invoice_state_changed_to_paid"))
        self._touch(invoice)
        return invoice

    def change(self, invoice_id: str, **fields: Any) -> SalesInvoice:
        """Change any attribute (state, due_date, total_excl_tax, reference, …): a new version."""
        invoice = self._invoice(self.administration, invoice_id)
        for name, value in fields.items():
            setattr(invoice, name, value)
        self._touch(invoice)
        return invoice

    def corrupt(self, invoice_id: str, **raw: Any) -> SalesInvoice:
        """Make the rendered record carry these raw values (e.g. `total_unpaid="abc"`): a malformed record."""
        invoice = self._invoice(self.administration, invoice_id)
        invoice.overrides.update(raw)
        self._touch(invoice)
        return invoice

    def delete_invoice(self, invoice_id: str) -> None:
        self.administration.invoices.pop(invoice_id)

    def set_automatic_reminders(self, on: bool) -> None:
        for admin in self.books.values():
            for workflow in admin.workflows:
                for step in workflow["steps"]:
                    step["reminder_auto_send"] = on and step["step_order"] > 0 and workflow["type"] == "InvoiceWorkflow"

    def invoices_in(self, *states: str) -> list[SalesInvoice]:
        self.advance_states()
        return [i for i in self.administration.invoices.values() if i.state in states]

    def advance_states(self) -> None:
        """As Moneybird does overnight: an open invoice past its due date becomes `late` (a new version).

        Runs before every request, once per simulated day, so a demo that moves the clock sees invoices fall due.
        """
        today = self.today
        if self._states_as_of == today:
            return
        self._states_as_of = today
        for admin in self.books.values():
            for invoice in admin.invoices.values():
                if invoice.state == "open" and invoice.due_date < today and invoice.unpaid > 0:
                    invoice.state = "late"
                    invoice.events.append(self._event("sales_invoice_state_changed_to_late"))
                    self._touch(invoice)

    def _payment(self, admin: Administration, invoice: SalesInvoice, amount: Decimal) -> dict[str, Any]:
        now = self.clock.now()
        return {"id": self._id(), "administration_id": admin.id, "invoice_type": "SalesInvoice",
                "invoice_id": invoice.id, "financial_account_id": None, "user_id": "1", "payment_transaction_id": None,
                "transaction_identifier": None, "price": _amount(amount), "price_base": _amount(amount),
                "payment_date": self.today.isoformat(), "credit_invoice_id": None, "financial_mutation_id": None,
                "ledger_account_id": None, "linked_payment_id": None, "manual_payment_action": None,
                "created_at": _ms(now), "updated_at": _ms(now)}

    def _event(self, action: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        now = _ms(self.clock.now())
        return {"administration_id": self.administration_id, "user_id": "1", "action": action,
                "link_entity_id": None, "link_entity_type": None, "data": data or {},
                "created_at": now, "updated_at": now}

    # -- rendering (the OpenAPI shapes) -------------------------------------------------------------------------

    def contact_json(self, admin: Administration, contact: Contact, *, full: bool = False) -> dict[str, Any]:
        """`simple_contact_response` (embedded in invoices); `full` adds the contact's own `events`."""
        body = {
            "id": contact.id, "administration_id": admin.id, "company_name": contact.company_name,
            "firstname": contact.firstname, "lastname": contact.lastname, "address1": contact.address1,
            "address2": contact.address2, "zipcode": contact.zipcode, "city": contact.city, "country": contact.country,
            "phone": contact.phone, "delivery_method": contact.delivery_method, "customer_id": contact.customer_id,
            "tax_number": contact.tax_number, "chamber_of_commerce": contact.chamber_of_commerce, "bank_account": None,
            "is_trusted": False, "max_transfer_amount": None, "attention": contact.attention, "email": contact.email,
            "email_ubl": True, "send_invoices_to_attention": contact.send_invoices_to_attention,
            "send_invoices_to_email": contact.send_invoices_to_email, "send_estimates_to_attention": None,
            "send_estimates_to_email": contact.email, "direct_debit": False, "sepa_active": False, "sepa_iban": None,
            "sepa_iban_account_name": None, "sepa_bic": None, "sepa_mandate_id": None, "sepa_mandate_date": None,
            "sepa_sequence_type": "RCUR", "credit_card_number": None, "credit_card_reference": None,
            "credit_card_type": None, "tax_number_validated_at": None, "tax_number_valid": None,
            "invoice_workflow_id": None, "estimate_workflow_id": None, "si_identifier": None,
            "si_identifier_type": None, "moneybird_payments_mandate": False, "created_at": _ms(contact.created_at),
            "updated_at": _ms(contact.updated_at), "version": contact.version,
            "sales_invoices_url": f"{self.base_url}/{admin.id}/sales_invoices/{contact.id.rjust(64, '0')}/all",
            "notes": [], "custom_fields": [], "contact_people": list(contact.contact_people),
            "archived": contact.archived,
        }
        if full:
            body["events"] = []
        return body

    def invoice_json(self, admin: Administration, invoice: SalesInvoice) -> dict[str, Any]:
        """`sales_invoice_response`, with every field of the 2026-10-02 OpenAPI description."""
        contact = admin.contacts[invoice.contact_id]
        total, unpaid, paid = invoice.total, invoice.unpaid, invoice.paid
        tax = total - invoice.total_excl_tax
        public_url = f"{self.base_url}/{admin.id}/external/{invoice.id.rjust(64, '0')}/{invoice.id}/sales_invoice"
        detail = {
            "id": str(int(invoice.id) + 1_000_000_000_000), "administration_id": admin.id, "tax_rate_id": "1",
            "ledger_account_id": "2", "project_id": None, "product_id": None, "amount": "1 x",
            "amount_decimal": "1.0", "description": invoice.reference or "Diensten",
            "price": _amount(invoice.total_excl_tax), "period": None, "row_order": 1,
            "total_price_excl_tax_with_discount": _amount(invoice.total_excl_tax),
            "total_price_excl_tax_with_discount_base": _amount(invoice.total_excl_tax),
            "tax_report_reference": ["NL/1a"], "mandatory_tax_text": None,
            "created_at": _ms(invoice.created_at), "updated_at": _ms(invoice.updated_at),
        }
        body = {
            "id": invoice.id, "administration_id": admin.id, "contact_id": invoice.contact_id,
            "contact": self.contact_json(admin, contact), "contact_person_id": None, "contact_person": None,
            "invoice_id": invoice.number, "recurring_sales_invoice_id": None, "subscription_id": None,
            "workflow_id": invoice.workflow_id, "document_style_id": invoice.document_style_id,
            "identity_id": invoice.identity_id, "draft_id": 1 if invoice.number is None else None,
            "state": invoice.state, "invoice_date": invoice.invoice_date.isoformat(),
            "due_date": invoice.due_date.isoformat(),
            "payment_conditions": "We verzoeken u vriendelijk het bovenstaande bedrag van {document.total_price} "
                                  "voor {document.due_date} te voldoen.",
            "payment_reference": f"RF{int(invoice.id) % 10**23:023d}", "short_payment_reference": None,
            "reference": invoice.reference, "language": invoice.language, "currency": invoice.currency,
            "discount": "0.0", "original_sales_invoice_id": None, "paused": invoice.paused,
            "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else None,
            "sent_at": invoice.sent_at.isoformat() if invoice.sent_at else None,
            "created_at": _ms(invoice.created_at), "updated_at": _ms(invoice.updated_at),
            "public_view_code": None, "public_view_code_expires_at": None, "version": invoice.version,
            "details": [detail], "payments": list(invoice.payments), "total_paid": _amount(paid),
            "total_unpaid": _amount(unpaid), "total_unpaid_base": _amount(unpaid), "prices_are_incl_tax": False,
            "total_price_excl_tax": _amount(invoice.total_excl_tax),
            "total_price_excl_tax_base": _amount(invoice.total_excl_tax), "total_price_incl_tax": _amount(total),
            "total_price_incl_tax_base": _amount(total), "total_discount": "0.0", "marked_dubious_on": None,
            "marked_uncollectible_on": invoice.marked_uncollectible_on.isoformat()
            if invoice.marked_uncollectible_on else None,
            "reminder_count": invoice.reminder_count,
            "next_reminder": date(2099, 1, 1).isoformat() if invoice.paused
            else (invoice.next_reminder.isoformat() if invoice.next_reminder else None),
            "original_estimate_id": None, "url": public_url, "payment_url": public_url, "custom_fields": [],
            "notes": list(invoice.notes), "attachments": [], "events": list(invoice.events),
            "tax_totals": [{"tax_rate_id": "1", "taxable_amount": _amount(invoice.total_excl_tax),
                            "taxable_amount_base": _amount(invoice.total_excl_tax), "tax_amount": _amount(tax),
                            "tax_amount_base": _amount(tax)}],
            "time_entries": [],
        }
        body.update(invoice.overrides)
        return body

    # -- response helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(payload), status, headers=headers or {}, mimetype="application/json")

    def rate_limited_response(self, retry_after: int | None) -> Response:
        """429 as Moneybird answers it: `RateLimit-*` and `Retry-After` headers and the plain body `Retry later`."""
        now = self.clock.time()
        wait = retry_after if retry_after is not None else RATE_SECONDS
        reset = int(now) + wait
        return Response("Retry later", 429, mimetype="text/plain", headers={
            "RateLimit-Limit": str(RATE_LIMIT), "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
            "Retry-After": str(reset if self.retry_after_style == "epoch" else wait),
        })

    def expired_token_response(self) -> Response:
        return self._json({"error": "token is invalid", "symbolic": {"request": "invalid_grant"}}, 401)

    def not_found_response(self, request: Request) -> Response:
        return self._json({"error": "record not found", "symbolic": {"id": "not_found"}}, 404)

    def server_error_response(self, status: int) -> Response:
        return self._json({"error": "Internal server error"} if status != 503 else {"error": "Service unavailable"},
                          status)

    # -- dispatch -----------------------------------------------------------------------------------------------

    def _route(self, request: Request) -> Response:
        with self._books_lock:  # served on loopback, requests arrive on several threads
            return self._answer(request)

    def _answer(self, request: Request) -> Response:
        self.advance_states()
        if request.host.split(":")[0] == self.storage_host:
            return self._storage(request)
        path = request.path
        if path.endswith(".xml"):
            return self._json({"error": "Format not supported"}, 406)
        path = path.removesuffix(".json")
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match(path_info=path)
        except MethodNotAllowed:
            return self._json({"error": "Method not allowed"}, 405)
        except HTTPException:
            return self.not_found_response(request)
        if endpoint.startswith("oauth_"):
            return getattr(self, endpoint)(request)
        check = self.oauth.check_bearer(request.headers.get("Authorization"))
        if not check.valid or check.grant is None:
            return self.expired_token_response()
        decision = self.rate.hit(check.grant.id)
        if not decision.allowed:
            return self.rate_limited_response(decision.retry_after)
        allowed = _SCOPES.get(endpoint, ("sales_invoices",))
        if allowed and not set(allowed) & set(check.grant.scope.split()):
            return self._json({"error": f"No access to [:{allowed[0]}]"}, 401)
        try:
            if "admin" in values:
                values["admin"] = self._admin(values["admin"])
            return getattr(self, endpoint)(request, **values)
        except Problem as problem:
            return self._json(problem.body, problem.status)

    def _admin(self, admin_id: str) -> Administration:
        admin = self.books.get(admin_id)
        if admin is None:
            raise _not_found()
        return admin

    @staticmethod
    def _invoice(admin: Administration, invoice_id: str) -> SalesInvoice:
        invoice = admin.invoices.get(str(invoice_id))
        if invoice is None:
            raise _not_found()
        return invoice

    @staticmethod
    def _contact(admin: Administration, contact_id: str) -> Contact:
        contact = admin.contacts.get(str(contact_id))
        if contact is None:
            raise _not_found()
        return contact

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            raise Problem(400, {"error": "Request body is not valid JSON"}) from None
        if not isinstance(body, dict):
            raise Problem(400, {"error": "Request body must be an object"})
        return body

    # -- endpoints ----------------------------------------------------------------------------------------------

    def administrations(self, request: Request) -> Response:
        return self._json([
            {"id": admin.id, "name": admin.name, "language": admin.language, "currency": admin.currency,
             "country": admin.country, "time_zone": "Europe/Amsterdam", "access": "user", "suspended": False,
             "period_locked_until": None, "period_start_date": date(self.today.year, 1, 1).isoformat()}
            for admin in self.books.values()
        ])

    def _filtered(self, admin: Administration, request: Request) -> list[SalesInvoice]:
        terms = _parse_filter(request.args.get("filter"))
        today = self.today
        selected = []
        for invoice in admin.invoices.values():
            if _matches(invoice, terms, today):
                selected.append(invoice)
        return sorted(selected, key=lambda i: int(i.id))

    def sales_invoices(self, request: Request, admin: Administration) -> Response:
        per_page_text = request.args.get("per_page", str(DEFAULT_PER_PAGE))
        if not per_page_text.isdigit() or not 1 <= int(per_page_text) <= 100:
            raise Problem(400, {"error": "per_page does not have a valid value"})
        page_text = request.args.get("page", "1")
        if not page_text.lstrip("-").isdigit() or int(page_text) < 1:
            raise Problem(400, {"error": "Page is too small", "symbolic": {"page": "min"}})
        per_page, page = int(per_page_text), int(page_text)
        selected = self._filtered(admin, request)
        chunk = selected[(page - 1) * per_page: page * per_page]
        links = []
        base = f"{request.host_url.rstrip('/')}{request.path}"

        def link(number: int, rel: str) -> str:
            query = {k: v for k, v in request.args.items() if k != "page"} | {"page": str(number)}
            return f'<{base}?{urlencode(query)}>; rel="{rel}"'

        if page * per_page < len(selected):
            links.append(link(page + 1, "next"))
        if page > 1:
            links.append(link(page - 1, "prev"))
        headers = {"Link": ", ".join(links)} if links else {}
        return self._json([self.invoice_json(admin, i) for i in chunk], headers=headers)

    def sales_invoice_versions(self, request: Request, admin: Administration) -> Response:
        return self._json([{"id": i.id, "version": i.version} for i in self._filtered(admin, request)])

    def sales_invoices_by_ids(self, request: Request, admin: Administration) -> Response:
        ids = self._ids(request)
        found = [admin.invoices[i] for i in ids if i in admin.invoices]
        return self._json([self.invoice_json(admin, i) for i in found])

    @classmethod
    def _ids(cls, request: Request) -> list[str]:
        body = cls._body(request)
        ids = body.get("ids")
        if not isinstance(ids, list):
            raise _required("ids")
        # "Returns a maximum of 100 …, even if more ids are provided": extra ids are dropped without a word
        return [str(i) for i in ids[:100]]

    def sales_invoice(self, request: Request, admin: Administration, invoice_id: str) -> Response:
        return self._json(self.invoice_json(admin, self._invoice(admin, invoice_id)))

    def contact_versions(self, request: Request, admin: Administration) -> Response:
        include_archived = request.args.get("include_archived", "").lower() == "true"
        contacts = sorted(admin.contacts.values(), key=lambda c: int(c.id))
        return self._json([{"id": c.id, "version": c.version} for c in contacts if include_archived or not c.archived])

    def contacts_by_ids(self, request: Request, admin: Administration) -> Response:
        ids = self._ids(request)
        return self._json([self.contact_json(admin, admin.contacts[i], full=True) for i in ids if i in admin.contacts])

    def contact(self, request: Request, admin: Administration, contact_id: str) -> Response:
        return self._json(self.contact_json(admin, self._contact(admin, contact_id), full=True))

    def workflows(self, request: Request, admin: Administration) -> Response:
        return self._json(admin.workflows)

    def document_styles(self, request: Request, admin: Administration) -> Response:
        return self._json(admin.document_styles)

    def default_identity(self, request: Request, admin: Administration) -> Response:
        return self._json(admin.identity)

    def add_note(self, request: Request, admin: Administration, invoice_id: str) -> Response:
        invoice = self._invoice(admin, invoice_id)
        note = self._body(request).get("note")
        text = note.get("note") if isinstance(note, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise Problem(422, {"error": {"note": ["can't be blank"]}, "details": {"note": [{"error": "blank"}]}})
        now = _ms(self.clock.now())
        todo = bool(note.get("todo")) if isinstance(note, dict) else False
        record = {"id": self._id(), "administration_id": admin.id, "entity_id": invoice.id,
                  "entity_type": "SalesInvoice", "user_id": "1", "assignee_id": None, "todo": todo, "note": text,
                  "completed_at": None, "completed_by_id": None, "todo_type": None, "data": {},
                  "created_at": now, "updated_at": now}
        invoice.notes.append(record)
        return self._json(record, 201)

    def pause(self, request: Request, admin: Administration, invoice_id: str) -> Response:
        invoice = self._invoice(admin, invoice_id)
        if invoice.paused:
            raise Problem(422, {"error": "Sales invoice is already paused"})
        invoice.paused = True
        self._touch(invoice)
        return self._json(self.invoice_json(admin, invoice), 201)

    def resume(self, request: Request, admin: Administration, invoice_id: str) -> Response:
        invoice = self._invoice(admin, invoice_id)
        if not invoice.paused:
            raise Problem(422, {"error": "Sales invoice isn't paused"})
        invoice.paused = False
        self._touch(invoice)
        return self._json(self.invoice_json(admin, invoice), 201)

    def send_reminders(self, request: Request, admin: Administration) -> Response:
        entries = self._body(request).get("sales_invoice_reminders")
        if not isinstance(entries, list) or not entries:
            raise _required("sales_invoice_reminders")
        checked = [self._check_reminder(admin, entry) for entry in entries]  # all or nothing
        now = self.clock.now()
        for entry, contact, invoices in checked:
            method = entry.get("delivery_method") or ("Email" if contact.delivery_method == "Email" else "Manual")
            address = entry.get("email_address") or contact.send_invoices_to_email or contact.email
            text = entry.get("reminder_text") or _STEP_TEXT
            self.reminders.append({
                "administration_id": admin.id, "contact_id": contact.id, "workflow_id": str(entry["workflow_id"]),
                "document_style_id": str(entry["document_style_id"]), "identity_id": str(entry["identity_id"]),
                "sales_invoice_ids": [i.id for i in invoices], "reminder_text": text, "delivery_method": method,
                "email_address": address if method == "Email" else None, "sent_at": now,
            })
            if method == "Email":
                self.record_mail(tenant=admin.id, recipients=[address], invoice_ids=[i.id for i in invoices],
                                 kind="reminder", text=text)
            action = f"sales_invoice_send_reminder_{'email' if method == 'Email' else 'manually'}"
            for invoice in invoices:
                invoice.state = "reminded"
                invoice.reminder_count += 1
                invoice.next_reminder = self.today + timedelta(days=7)
                invoice.events.append(self._event(action, {"email_address": address} if method == "Email" else {}))
                self._touch(invoice)
        return self._json(200)

    def _check_reminder(self, admin: Administration, entry: Any) -> tuple[dict[str, Any], Contact, list[SalesInvoice]]:
        if not isinstance(entry, dict):
            raise _invalid("sales_invoice_reminders")
        for name in ("contact_id", "workflow_id", "document_style_id", "identity_id", "sales_invoice_ids"):
            if entry.get(name) in (None, "", []):
                raise _required(name)
        method = entry.get("delivery_method")
        if method is not None and method not in DELIVERY_METHODS:
            raise _invalid("delivery_method")
        if not isinstance(entry["sales_invoice_ids"], list):
            raise _invalid("sales_invoice_ids")
        contact = admin.contacts.get(str(entry["contact_id"]))
        if contact is None:
            raise _unprocessable("contact_id", "does not exist", "invalid")
        invoices = []
        group = (str(entry["workflow_id"]), str(entry["document_style_id"]), str(entry["identity_id"]))
        for raw_id in entry["sales_invoice_ids"]:
            invoice = admin.invoices.get(str(raw_id))
            if invoice is None or invoice.contact_id != contact.id:
                raise _unprocessable("sales_invoice_ids", "contains an invoice of another contact or none", "invalid")
            if invoice.state not in REMINDABLE:
                raise _unprocessable("sales_invoice_ids", f"contains invoice {invoice.number or invoice.id} in state "
                                     f"{invoice.state}, which cannot be reminded", "invalid_state")
            if (invoice.workflow_id, invoice.document_style_id, invoice.identity_id) != group:
                raise _unprocessable("sales_invoice_ids", "contains invoices of another workflow, document style or "
                                     "identity", "invalid")
            invoices.append(invoice)
        if (method or contact.delivery_method) == "Email" and not (
            entry.get("email_address") or contact.send_invoices_to_email or contact.email
        ):
            raise _unprocessable("email_address", "can't be blank", "blank")
        return entry, contact, invoices

    def download_pdf(self, request: Request, admin: Administration, invoice_id: str) -> Response:
        invoice = self._invoice(admin, invoice_id)
        token = secrets.token_hex(32)
        self._signed[token] = SignedUrl(admin.id, invoice.id, self.clock.time() + PDF_URL_LIFETIME)
        location = f"{self.storage_url}/{token}/download"
        return Response(f'"This resource has been moved temporarily to {location}."', 302,
                        headers={"Location": location}, mimetype="text/plain")

    def _storage(self, request: Request) -> Response:
        """The signed-URL host: another host name, no bearer expected, links dead after 30 seconds."""
        authorization = request.headers.get("Authorization")
        self.storage_requests.append({"path": request.path, "authorization": authorization})
        if authorization:
            # assumption: an S3-style store refuses a second authentication next to its signature (and the bearer
            # token must never reach another host anyway)
            return Response("Only one auth mechanism allowed", 400, mimetype="text/plain")
        token = request.path.strip("/").split("/")[0]
        signed = self._signed.get(token)
        if signed is None:
            return Response("Not Found", 404, mimetype="text/plain")
        if self.clock.time() > signed.expires_at:
            return Response("Request has expired", 403, mimetype="text/plain")
        invoice = self.books[signed.administration_id].invoices.get(signed.invoice_id)
        if invoice is None:
            return Response("Not Found", 404, mimetype="text/plain")
        return Response(_pdf(f"Factuur {invoice.number or invoice.id}"), 200, mimetype="application/pdf")


# --- filters ------------------------------------------------------------------------------------------------------


def _parse_filter(text: str | None) -> dict[str, str]:
    """`state:open|late,period:this_year` → {key: value}. No filter at all means Moneybird's default, this year."""
    if text is None:
        return {"period": "this_year"}
    terms: dict[str, str] = {}
    for term in text.split(","):
        key, _, value = term.partition(":")
        if key.strip():
            terms[key.strip()] = value.strip()
    states = terms.get("state")
    if states is not None and states != "all" and any(s not in STATES for s in states.split("|")):
        raise Problem(400, {"error": "Status is not included in the list", "symbolic": {"filter": "invalid"}})
    return terms


def _matches(invoice: SalesInvoice, terms: dict[str, str], today: date) -> bool:
    states = terms.get("state")
    if states and states != "all" and invoice.state not in states.split("|"):
        return False
    if "period" in terms:
        start, end = _period(terms["period"], today)
        if not start <= invoice.invoice_date <= end:
            return False
    if "reference" in terms and (invoice.reference or "") not in terms["reference"].split("|"):
        return False
    if "contact_id" in terms and invoice.contact_id != terms["contact_id"]:
        return False
    if "workflow_id" in terms and invoice.workflow_id != terms["workflow_id"]:
        return False
    if "recurring_sales_invoice_id" in terms:
        return False  # the simulator has no recurring invoices
    for key, stamp in (("created_after", invoice.created_at), ("updated_after", invoice.updated_at)):
        if key in terms and not stamp > _moment(terms[key]):
            return False
    return True


def _moment(text: str) -> datetime:
    cleaned = text.strip().removesuffix(" UTC").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise Problem(400, {"error": "Filter time is invalid", "symbolic": {"filter": "invalid"}}) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _period(text: str, today: date) -> tuple[date, date]:
    def month_end(year: int, month: int) -> date:
        return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)

    year, month = today.year, today.month
    quarter_start = (month - 1) // 3 * 3 + 1
    named = {
        "this_month": (date(year, month, 1), month_end(year, month)),
        "prev_month": ((date(year, month, 1) - timedelta(days=1)).replace(day=1),
                       date(year, month, 1) - timedelta(days=1)),
        "next_month": (month_end(year, month) + timedelta(days=1),
                       month_end((month_end(year, month) + timedelta(days=1)).year, (month % 12) + 1)),
        "this_quarter": (date(year, quarter_start, 1), month_end(year, quarter_start + 2)),
        "this_year": (date(year, 1, 1), date(year, 12, 31)),
        "prev_year": (date(year - 1, 1, 1), date(year - 1, 12, 31)),
        "next_year": (date(year + 1, 1, 1), date(year + 1, 12, 31)),
    }
    if text in named:
        return named[text]
    start_text, _, end_text = text.partition("..")
    end_text = end_text or start_text
    try:
        if len(start_text) == 6 and len(end_text) == 6:
            start = date(int(start_text[:4]), int(start_text[4:]), 1)
            return start, month_end(int(end_text[:4]), int(end_text[4:]))
        if len(start_text) == 8 and len(end_text) == 8:
            return (date(int(start_text[:4]), int(start_text[4:6]), int(start_text[6:])),
                    date(int(end_text[:4]), int(end_text[4:6]), int(end_text[6:])))
    except ValueError:
        pass
    raise Problem(400, {"error": "Period is invalid", "symbolic": {"filter": "invalid"}})


def _pdf(title: str) -> bytes:
    """A small, valid one-page PDF showing `title`."""
    stream = f"BT /F1 18 Tf 72 720 Td ({title}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


__all__ = ["MoneybirdSimulator"]
