"""The Exact Online adapter: open receivables and their accounts, reminders by re-sent invoice, notes, PDFs.

Sync, with the fewest calls Exact allows:
- first sync: `sync/Cashflow/PaymentTerms` from `Timestamp gt 1` (Exact's own guidance for a first sync API
  run) and `sync/CRM/Accounts` likewise, 1,000 rows a call;
- every later sync: the same two feeds from the stored Timestamps (one call each when nothing changed), then the
  *current* open terms of the touched invoices from `bulk/Cashflow/Receivables` by InvoiceNumber (a changed term
  does not tell the rest of its invoice: instalments, split partial payments, unmatched receipts);
- `--full`: `bulk/Cashflow/Receivables` with `Status ne 50` (the open set only, 1,000 a call); the stored
  cursor stays. Invoices not in a complete open set are closed; with unreadable rows nothing is closed and the
  cursor does not pass them, so nothing is lost.

Why the first sync reads the change feed and not `bulk/` (the cheaper read of the open set alone): the next sync
needs a Timestamp T such that every change after the first read has a Timestamp above T. Bulk rows carry no
Timestamp, and Exact documents no way to learn the feed's highest Timestamp other than reading the feed to its
end: its `$filter` takes only `Timestamp gt N`, rows come in ascending Timestamp order, and no `$orderby`, "current
rowversion" call or Timestamp on other entity sets is documented for this purpose (Timestamp is a rowversion; that
it is shared by every entity set of a division's database is SQL Server's behaviour, not a documented promise, and
a wrong guess would lose changes for good). So "bulk, then the feed's tail" costs the bulk pages *plus* every feed
page, and "bulk now, the feed from 1 next time" only moves the same feed pages to the second sync; both cost
more than the feed alone, which yields the open set and its cursor in one pass (its extra cost over bulk is the
paid history, read once). `--full` keeps the stored cursor, so it can use bulk.

Known gaps (not covered by providers.md, so not built on guesses): a change of only a contact's e-mail is seen
at the next `--full` sync (watching `sync/CRM/Contacts` too would make an unchanged sync cost three calls); an
entry deleted in Exact (rather than paid or reversed) leaves no row in the feed, so it is closed only by the next
`--full` sync; when Exact moves a division to another database its Timestamps restart (system/Divisions
`DivisionMoveDate`) and the stored cursor must be discarded — `--full` keeps it.
Accounts without an e-mail fall back to their main contact's (`crm/Contacts`, batched by account).

Reminders: Exact has no reminder API. A reminder re-sends a *processed* sales invoice by e-mail through
`PrintedSalesInvoices` with our text as `ExtraText`, then records a communication note on the account carrying
the step and idempotency key. Anything else (not processed, not a sales invoice, no e-mail address, Exact
refusing or not confirming the e-mail, post/manual delivery, several invoices at once) raises `ReminderRefused`
with the reason, which becomes a task: never a pretended "sent".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
from pydantic import BaseModel, ConfigDict, field_validator

from connector.models import Debtor, Invoice
from providers.base import (
    Capabilities,
    ConnectionSettings,
    FreshInvoice,
    OAuthEndpoints,
    Provider,
    Receipt,
    ReminderRequest,
    SyncPage,
    SyncState,
    Tenant,
)
from providers.errors import BadPlatformData, NotFound, PlatformError, ReminderRefused
from providers.exact import mapping, odata
from providers.exact.client import DEFAULT_API_URL, ExactClient, ExactProfile
from providers.exact.mapping import (
    AccountRow,
    ContactRow,
    DebtorKindRule,
    ReceivableRow,
)
from providers.http import ApiClient

PAGE_SIZE = 1000
"""Invoices per stored page."""


class ExactOptions(BaseModel):
    """`[connections.options]` for Exact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    debtor_kind: DebtorKindRule = "auto"
    """Exact has no person flag: `auto` treats accounts with a KvK/KBO or VAT number as businesses, the rest as
    consumers; set `business` (or `consumer`) when every customer is one."""
    email_layout: str | None = None
    """The Exact e-mail layout (ID) for re-sent invoices; Exact's default layout when empty."""
    document_layout: str | None = None

    @field_validator("email_layout", "document_layout")
    @classmethod
    def _guid(cls, value: str | None) -> str | None:
        return str(UUID(value)) if value else None


@dataclass(frozen=True)
class Cursor:
    """The two change-feed positions (Exact's Int64 rowversions), stored as one opaque JSON string."""

    payment_terms: int
    accounts: int

    def dump(self) -> str:
        return json.dumps({"payment_terms": str(self.payment_terms), "accounts": str(self.accounts)})

    @classmethod
    def load(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(int(data["payment_terms"]), int(data["accounts"]))
        except (ValueError, KeyError, TypeError):
            return None  # not ours (or damaged): start over, which is always safe


@dataclass
class _Feed:
    rows: list[Any]
    problems: list[str]
    position: int
    """The highest Timestamp before the first unreadable row: the next sync starts there, so nothing is lost."""


class ExactProvider(Provider):
    name = "exact"
    capabilities = Capabilities(
        native_reminder=True,  # partly: only a processed sales invoice can be re-sent; the rest become tasks
        custom_message=True,  # our text travels as the e-mail's ExtraText
        consolidated_reminders=False,
        delivery_methods=("email",),
    )
    Options = ExactOptions

    def __init__(self, settings: ConnectionSettings, api: ApiClient) -> None:
        super().__init__(settings, api)
        self.exact = ExactClient(api, settings.tenant)
        if isinstance(api.profile, ExactProfile):
            api.profile.token_age = self._token_age

    def _token_age(self, request: httpx.Request) -> timedelta | None:
        """Age of the stored token if `request` carried it (None when another process has since refreshed it)."""
        token = self.api.tokens.store.load(self.settings.token_name)
        if token is None or request.headers.get("Authorization") != f"Bearer {token.access_token.get_secret_value()}":
            return None
        return self.api.now() - token.issued_at

    @classmethod
    def oauth(cls, settings: ConnectionSettings) -> OAuthEndpoints:
        base = (settings.api_url or DEFAULT_API_URL).rstrip("/")
        return OAuthEndpoints(
            authorize_url=settings.authorize_url or f"{base}/api/oauth2/auth",
            token_url=settings.token_url or f"{base}/api/oauth2/token",
            scopes=settings.scopes or (),  # Exact has no OAuth scopes: an app's rights are set in its App Center
            pkce=False,  # not documented by Exact
            token_auth="client_secret_post",
            refresh_before_expiry=timedelta(seconds=30),  # Exact refuses token requests within 570 s of the last
        )

    @classmethod
    def http_profile(cls, settings: ConnectionSettings) -> ExactProfile:
        return ExactProfile(base_url=f"{(settings.api_url or DEFAULT_API_URL).rstrip('/')}/api/v1/")

    # -- tenants ----------------------------------------------------------------------------------------------

    def list_tenants(self) -> list[Tenant]:
        me = self.exact.me()
        current = me.get("CurrentDivision")
        if current is None:
            raise BadPlatformData("Exact Online's current/Me names no current division",
                                  connection=self.settings.name)
        return mapping.tenants(self.exact.divisions(int(current)))

    # -- sync -------------------------------------------------------------------------------------------------

    def sync(self, state: SyncState) -> Iterator[SyncPage]:
        cursor = Cursor.load(state.cursor)
        if state.full or cursor is None:
            invoices, closed, terms_at, problems = self._whole_open_set(state, from_feed=not state.full)
        else:
            invoices, closed, terms_at, problems = self._changed_invoices(state, cursor.payment_terms)
        accounts_after = 1 if state.full or cursor is None else cursor.accounts
        accounts = self._feed(self.exact.changes(mapping.ACCOUNT_CHANGES, after=accounts_after), AccountRow,
                              "account", after=accounts_after)
        problems += accounts.problems
        debtors, debtor_problems = self._debtors(state, invoices, accounts.rows)
        problems += debtor_problems
        changed = [i for i in invoices.values() if state.open_invoices.get(i.platform_id) != i.version]
        next_cursor = None
        if not state.full and terms_at is not None:
            next_cursor = Cursor(terms_at, accounts.position).dump()
        yield from _pages(changed, debtors, closed, next_cursor, problems)

    def _whole_open_set(self, state: SyncState, *, from_feed: bool) -> tuple[dict[str, Invoice], list[str], int | None, list[str]]:
        if from_feed:
            feed = self._feed(self.exact.changes(mapping.PAYMENT_TERM_CHANGES, after=1), ReceivableRow,
                              "payment term", after=1)
        else:
            rows, problems = mapping.parse_rows(self.exact.all(mapping.OPEN_RECEIVABLES, mapping.OPEN_STATUS_FILTER),
                                                ReceivableRow, "receivable")
            feed = _Feed(rows, problems, 0)
        invoices, problems = mapping.open_invoices(feed.rows, connection=self.settings.name)
        problems = feed.problems + problems
        closed: list[str] = []
        if feed.problems:
            problems.append("no invoice was closed in this sync because some receivables could not be read")
        else:
            closed = sorted(set(state.open_invoices) - set(invoices))
        return invoices, closed, feed.position if from_feed else None, problems

    def _changed_invoices(self, state: SyncState, after: int) -> tuple[dict[str, Invoice], list[str], int, list[str]]:
        feed = self._feed(self.exact.changes(mapping.PAYMENT_TERM_CHANGES, after=after), ReceivableRow,
                          "payment term", after=after)
        changed = mapping.receivable_rows(feed.rows)
        numbers = {row.InvoiceNumber for row in changed if row.InvoiceNumber is not None}
        current, unreadable = mapping.parse_rows(self.exact.open_receivables_of(sorted(numbers)) if numbers else [],
                                                 ReceivableRow, "receivable")
        invoices, problems = mapping.open_invoices(current, connection=self.settings.name)
        problems = feed.problems + unreadable + problems
        if unreadable:  # re-read these changes next time rather than close on incomplete data
            return invoices, [], after, problems
        # only invoices that were re-read can be judged closed (a term without an InvoiceNumber, e.g. an opening
        # balance entry, cannot be re-read by number: its changes are picked up by the next `--full` sync)
        touched = {row.TransactionEntryID for row in changed if row.TransactionEntryID and row.InvoiceNumber is not None}
        closed = sorted((touched & set(state.open_invoices)) - set(invoices))
        return invoices, closed, feed.position, problems

    def _feed(self, raw: list[dict[str, Any]], model: type[Any], what: str, *, after: int) -> _Feed:
        rows, problems, position, broken = [], [], after, False
        for record in raw:
            parsed, trouble = mapping.parse_rows([record], model, what)
            if trouble:
                problems += trouble
                broken = True
                continue
            rows += parsed
            if not broken and parsed[0].Timestamp is not None:
                position = max(position, parsed[0].Timestamp)
        return _Feed(rows, problems, position)

    def _debtors(self, state: SyncState, invoices: dict[str, Invoice],
                 changed_accounts: Sequence[AccountRow]) -> tuple[list[Debtor], list[str]]:
        """Accounts of open invoices that are new or changed, with the contact fallback for their e-mail."""
        needed = {invoice.debtor_id for invoice in invoices.values()}
        known = {row.ID: row for row in changed_accounts if row.ID in needed or row.ID in state.debtors}
        missing = sorted(needed - set(known) - set(state.debtors))
        problems: list[str] = []
        if missing:
            rows, trouble = mapping.parse_rows(self.exact.by_ids(mapping.ACCOUNTS_BY_ID, "ID", missing), AccountRow,
                                               "account")
            problems += trouble
            known |= {row.ID: row for row in rows}
        without_email = [row.ID for row in known.values() if not mapping.emails(row.Email)]
        contacts: dict[str, list[ContactRow]] = {}
        if without_email:
            rows, trouble = mapping.parse_rows(self.exact.by_ids(mapping.CONTACTS_OF_ACCOUNTS, "Account", without_email),
                                               ContactRow, "contact")
            problems += trouble
            for contact in rows:
                contacts.setdefault(contact.Account or "", []).append(contact)
        debtors = []
        for account in known.values():
            contact = mapping.main_contact(contacts.get(account.ID, []), account.MainContact)
            try:
                debtor = mapping.debtor(account, connection=self.settings.name, rule=self.options.debtor_kind,
                                        contact=contact)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if state.debtors.get(debtor.platform_id) != debtor.version:
                debtors.append(debtor)
        for account_id in sorted(needed - set(known) - set(state.debtors)):
            problems.append(f"account {account_id}: Exact did not return this customer of an open invoice")
        return debtors, problems

    # -- reminders and notes ----------------------------------------------------------------------------------

    def send_reminder(self, request: ReminderRequest) -> Receipt:
        return self.record_reminder(request, self.mail_reminder(request))

    def recheck(self, invoices: Sequence[Invoice]) -> dict[str, FreshInvoice]:
        """The open terms of these invoice numbers (one bulk receivables call per batch of numbers)."""
        numbers = {int(i.number): i for i in invoices if i.number and i.number.isdigit()}
        if not numbers:
            return {}
        rows, unreadable = mapping.parse_rows(self.exact.open_receivables_of(sorted(numbers)), ReceivableRow,
                                              "receivable")
        if unreadable:
            return {}  # not sure of any of them: the stored state stands
        still_open, _problems = mapping.open_invoices(rows, connection=self.settings.name)
        return {invoice.platform_id: FreshInvoice(invoice=still_open.get(invoice.platform_id))
                for invoice in numbers.values()}

    def mail_reminder(self, request: ReminderRequest) -> Receipt:
        """`PrintedSalesInvoices` with our text on a processed invoice, where Exact accepts it.

        Whether Exact re-sends an already processed invoice is unconfirmed: a refusal is taken as "not possible in
        this administration" (`mailing_refused`, remembered by delivery for the connection) and never retried per
        invoice. An unprocessed invoice is never sent: that would book it."""
        connection = self.settings.name
        invoice = request.invoices[0]
        if len(request.invoices) > 1:
            raise ReminderRefused("Exact Online re-sends one invoice per e-mail and cannot combine "
                                  f"{len(request.invoices)} invoices in one reminder", connection=connection)
        if request.delivery != "email":
            raise ReminderRefused(f"Exact Online can only e-mail invoice {invoice.label}; a {request.delivery} "
                                  "reminder needs to be done by hand", connection=connection)
        if not request.debtor.emails:
            raise ReminderRefused(f"{request.debtor.name} has no e-mail address in Exact Online, so invoice "
                                  f"{invoice.label} cannot be re-sent; add one in Exact or remind by hand",
                                  connection=connection)
        record = self.exact.sales_invoice(invoice.platform_id)
        if record is None:
            raise ReminderRefused(f"invoice {invoice.label} is not a sales invoice of Exact's invoicing (an opening "
                                  "balance or journal entry, say), so Exact cannot re-send it", connection=connection)
        if str(record.get("Status")) != str(mapping.PROCESSED):  # a number, or its text
            raise ReminderRefused(f"invoice {invoice.label} is not processed in Exact Online (status "
                                  f"{record.get('Status')}); sending it would book it, so it was not sent",
                                  connection=connection)
        body = mapping.resend_body(invoice.platform_id, request.message, email_layout=self.options.email_layout,
                                   document_layout=self.options.document_layout)
        try:
            answer = self.exact.print_invoice(body)
        except PlatformError as exc:
            if exc.retryable or isinstance(exc, ReminderRefused):
                raise  # an outage: whether Exact mailed is unknown, so the outbox must not call this a refusal
            self.mailing_refused = (f"Exact Online refused to re-send processed invoice {invoice.label} "
                                    f"({_plain(exc, connection)})")
            raise ReminderRefused(f"Exact Online would not re-send invoice {invoice.label}: {_plain(exc, connection)}",
                                  connection=connection, status=exc.status) from None
        if answer.get("EmailCreationError"):
            raise ReminderRefused(f"Exact Online did not e-mail invoice {invoice.label}: {answer['EmailCreationError']}",
                                  connection=connection)
        if not answer.get("EmailCreationSuccess"):
            raise ReminderRefused(f"Exact Online did not confirm e-mailing invoice {invoice.label}; check the invoice "
                                  "in Exact before reminding by hand", connection=connection)
        # Exact mails the invoice's contact person (or the account), and does not say which address: the receipt
        # does not guess one.
        return Receipt(platform_reference=answer.get("Document"), sent_at=self.api.now(), recipients=(),
                       detail=f"Exact re-sent invoice {invoice.label} by e-mail to the invoice's contact (Exact does "
                              f"not report the address): {answer['EmailCreationSuccess']}")

    def record_reminder(self, request: ReminderRequest, mailed: Receipt) -> Receipt:
        """A CommunicationNote on the account, carrying the key (a processed invoice itself cannot be changed)."""
        invoice = request.invoices[0]
        subject = request.subject or f"Reminder ({request.step}) for invoice {invoice.label}"
        try:
            note = self.exact.add_note(mapping.note_body(invoice.debtor_id, subject, request.message or subject,
                                                         request.idempotency_key, self.api.now().date()))
        except PlatformError as exc:  # the mail went out: report it sent, and say the note is missing
            return Receipt(platform_reference=mailed.platform_reference, sent_at=mailed.sent_at, recipients=(),
                           detail=f"{mailed.detail}; the note on the account failed: {_plain(exc, self.settings.name)}")
        return Receipt(platform_reference=note.get("ID"), sent_at=mailed.sent_at, recipients=(),
                       detail=f"{mailed.detail}; recorded as a communication note on the account")

    def add_note(self, invoice: Invoice, text: str, *, idempotency_key: str) -> Receipt:
        note = self.exact.add_note(mapping.note_body(invoice.debtor_id, f"Invoice {invoice.label}", text,
                                                     idempotency_key, self.api.now().date()))
        return Receipt(platform_reference=note.get("ID"), sent_at=self.api.now(),
                       detail=f"communication note on the account of invoice {invoice.label}")

    def find_note(self, invoice: Invoice, idempotency_key: str) -> Receipt | None:
        for note in self.exact.notes_of(invoice.debtor_id):
            if mapping.carries_key(note, idempotency_key):
                return Receipt(platform_reference=note.get("ID"),
                               sent_at=odata.parse_local_datetime(note.get("Created")) or self.api.now(),
                               detail=f"communication note found on the account of invoice {invoice.label}")
        return None

    # -- PDF --------------------------------------------------------------------------------------------------

    def fetch_pdf(self, invoice: Invoice) -> bytes:
        for document in self.exact.documents_of(invoice.platform_id):
            for attachment in self.exact.attachments_of(document["ID"]):
                if not str(attachment.get("FileName") or "").lower().endswith(".pdf") or not attachment.get("Url"):
                    continue
                response = self.exact.download(str(attachment["Url"]))
                if not response.content.startswith(b"%PDF"):
                    raise PlatformError(f"Exact Online answered the PDF download of invoice {invoice.label} with a "
                                        "web page instead of the file", connection=self.settings.name)
                return response.content
        raise NotFound(f"Exact Online holds no PDF for invoice {invoice.label} (no document with a PDF attachment)",
                       connection=self.settings.name)


def _pages(invoices: Sequence[Invoice], debtors: Sequence[Debtor], closed: Sequence[str], cursor: str | None,
           problems: Sequence[str]) -> Iterable[SyncPage]:
    """Debtors first, invoices in chunks, and the closing ids with the cursor last (stored only when all is in)."""
    chunks = [invoices[i:i + PAGE_SIZE] for i in range(0, len(invoices), PAGE_SIZE)] or [[]]
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        yield SyncPage(
            invoices=tuple(chunk),
            debtors=tuple(debtors) if index == 0 else (),
            closed_invoice_ids=tuple(closed) if last else (),
            cursor=cursor if last else None,
            problems=tuple(problems) if last else (),
        )


def _plain(exc: Exception, connection: str) -> str:
    return str(exc).removeprefix(f"{connection}: ")


__all__ = ["ExactOptions", "ExactProvider"]
