"""The Exact Online adapter: open receivables and their accounts, reminders by re-sent invoice, notes, PDFs.

Sync, with the fewest calls Exact allows:
- first sync: `sync/Cashflow/PaymentTerms` from `Timestamp gt 1` (Exact's own guidance for a first sync API
  run) and `sync/CRM/Accounts` likewise, 1,000 rows a call;
- every later sync: the same two feeds from the stored Timestamps (one call each when nothing changed), then the
  *current* open terms of the touched invoices from `bulk/Cashflow/Receivables` by InvoiceNumber (a changed term
  does not tell the rest of its invoice: instalments, split partial payments, unmatched receipts);
- `--full`: `bulk/Cashflow/Receivables` with `Status ne 50` (the open set only, 1,000 a call); the stored
  cursor stays. Stored invoices a complete open set does not list are read again by number (all their terms):
  closed when every term is matched, kept open and named when Exact returns none; with unreadable rows nothing
  is closed and the cursor does not pass them, so nothing is lost.
- a first sync is stored page by page with the feed position reached (the accounts feed follows once the terms
  are in), so an interrupted one carries on from there.

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
entry deleted in Exact (rather than paid or reversed) leaves no row at all, so with no evidence either way the next
`--full` sync keeps it open and names it for a person to look at; when Exact moves a division to another database its Timestamps restart (system/Divisions
`DivisionMoveDate`) and the stored cursor must be discarded — `--full` keeps it.
Accounts without an e-mail fall back to their main contact's (`crm/Contacts`, batched by account).

Reminders: Exact has no reminder API. A reminder re-sends a *processed* sales invoice by e-mail through
`PrintedSalesInvoices` with our text as `ExtraText`, then records a communication note on the account carrying
the step and idempotency key. Anything else (not processed, not a sales invoice, no e-mail address, Exact
refusing or not confirming the e-mail, post/manual delivery, several invoices at once) raises `ReminderRefused`
with the reason, which becomes a task: never a pretended "sent". Each re-send creates a Document of the invoice:
the re-check before sending reads the invoices' documents in batches, the baseline delivery settles a send a crash
cut off by (`reminder_trace`). A promise's written confirmation goes the same way (`confirms_by_mail`).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
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
    Tenant,
)
from providers.errors import BadPlatformData, DunningError, NotFound, PlatformError, ReminderRefused
from providers.exact import mapping, odata
from providers.exact.client import DEFAULT_API_URL, ExactClient, ExactProfile
from providers.exact.mapping import (
    AccountRow,
    ContactRow,
    DebtorKindRule,
    ReceivableRow,
)
from providers.http import ApiClient
from providers.streams import Batch, Known, Problem, Stream

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
"""Rows per page of Exact's bulk and sync endpoints, and invoices per stored page."""


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
    """The two change-feed positions (Exact's Int64 rowversions), stored as one opaque JSON string.

    `accounts` is None while a first sync is under way: its payment-term pages are stored one by one, and the
    accounts feed is read whole once they are in (the sync that carries on from here reads it from the start).
    `owed_sign` is the sign a debt's open amount carries in this division, as the first sync's whole feed showed it
    (`mapping.receivable_balance`); None for a cursor from before it was kept (then each answer tells)."""

    payment_terms: int
    accounts: int | None
    owed_sign: int | None = None

    def dump(self) -> str:
        return json.dumps({"payment_terms": str(self.payment_terms),
                           "accounts": str(self.accounts) if self.accounts is not None else None,
                           **({"owed_sign": self.owed_sign} if self.owed_sign is not None else {})})

    @classmethod
    def load(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            accounts, sign = data["accounts"], data.get("owed_sign")
            return cls(int(data["payment_terms"]), int(accounts) if accounts is not None else None,
                       sign if sign in (-1, 1) else None)
        except (ValueError, KeyError, TypeError):
            return None  # not ours (or damaged): start over, which is always safe


@dataclass
class _Feed:
    rows: list[Any]
    problems: list[str]
    position: int
    """The highest Timestamp before the first unreadable row: the next sync starts there, so nothing is lost."""


_COUNTED_ERRORS = frozenset({400, 401, 403, 404})
"""The answers Exact counts towards blocking an endpoint for an hour (more than 10 an hour, providers.md)."""


class ExactProvider(Provider):
    name = "exact"
    capabilities = Capabilities(
        native_reminder=True,  # partly: only a processed sales invoice can be re-sent; the rest become tasks
        custom_message=True,  # our text travels as the e-mail's ExtraText
        consolidated_reminders=False,
        delivery_methods=("email",),
    )
    confirms_by_mail = True  # a re-sent invoice carries our text as ExtraText, and Exact counts no reminder
    Options = ExactOptions
    numbered_invoices = False  # an opening-balance entry is a real debt without an invoice number
    https_redirect = True  # providers.md: "Redirect URIs must be HTTPS"
    refresh_token_lifetime = timedelta(days=30)  # providers.md: "A refresh token unused for 30 days" is refused
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream("payment_terms", mapping.PAYMENT_TERM_CHANGES.path, "change-feed", mapping.FEED_CURSOR, PAGE_SIZE,
               odata.GUID_BATCH),
        Stream("receivables", mapping.OPEN_RECEIVABLES.path, "next-link", None, PAGE_SIZE, 100),
        Stream("accounts", mapping.ACCOUNT_CHANGES.path, "change-feed", mapping.FEED_CURSOR, PAGE_SIZE, odata.GUID_BATCH),
    )

    def __init__(self, settings: ConnectionSettings, api: ApiClient) -> None:
        super().__init__(settings, api)
        self.exact = ExactClient(api, settings.tenant)
        self._sales: dict[str, Mapping[str, Any] | None] = {}
        """SalesInvoices read by the re-check (None: not a sales invoice), so a mail does not read its own."""
        self._documents: dict[str, tuple[str, ...]] = {}
        """Each invoice's document ids as the last re-check read them (to see whether a print made a new one)."""
        self._trace_seen = False
        """A print of this run showed as a new document of its invoice: the trace holds, no need to look again."""
        self._notes_refused: str | None = None
        """Why Exact refused a CommunicationNote in this run (the app's rights, say): not asked again, since more than
        10 errors an hour on one endpoint block the app there for an hour (providers.md), find_note's reads too."""
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
        current = mapping.current_division(self.exact.me())
        if current is None:
            raise BadPlatformData("Exact Online's current/Me names no current division",
                                  connection=self.settings.name)
        return mapping.tenants(self.exact.divisions(current))

    # -- sync -------------------------------------------------------------------------------------------------

    def read(self, known: Known) -> Iterator[Batch]:
        cursor = Cursor.load(known.cursor)
        sign = cursor.owed_sign if cursor is not None else None
        if known.full:
            invoices = yield from self._open_set(known)
        elif cursor is None:
            invoices, position, sign = yield from self._first_terms(known)
        else:
            invoices, position = yield from self._changed_terms(known, cursor.payment_terms, sign)
        every_account = known.full or cursor is None or cursor.accounts is None
        accounts_after = 1 if every_account else cursor.accounts  # type: ignore[union-attr]
        accounts = self._feed(self.exact.changes(mapping.ACCOUNT_CHANGES, after=accounts_after), AccountRow,
                              "account", after=accounts_after)
        # and the debtors of invoices stored without theirs (a first sync carried on: its earlier pages' invoices)
        needed = {i.debtor_id for i in invoices if i.is_open} | known.state.debtors_missing
        debtors, problems = self._debtors(known, needed, accounts.rows)
        next_cursor = None if known.full else Cursor(position, accounts.position, sign).dump()
        yield Batch(debtors=debtors, problems=[Problem(p) for p in accounts.problems + problems], cursor=next_cursor)

    def confirm(self, invoice_ids: Sequence[str], known: Known) -> Iterator[Batch]:
        """Every payment term of these invoices, matched or not, read by the invoice number their stored version
        carries: settled when all are matched. One without a number cannot be read again (an opening balance
        entry, say): the machine keeps it open and names it."""
        numbers = {n for n in (mapping.number_in_version(known.marker(i)) for i in invoice_ids) if n is not None}
        if not numbers:
            return
        rows, unreadable = mapping.parse_rows(self.exact.open_receivables_of(sorted(numbers), open_only=False),
                                              ReceivableRow, "receivable")
        if unreadable:  # not sure of any of them: none is closed
            yield Batch(problems=[Problem(p) for p in unreadable], returned=invoice_ids)
            return
        asked = set(invoice_ids)
        cursor = Cursor.load(known.cursor)
        invoices, problems = mapping.open_invoices(rows, connection=self.settings.name,
                                                   owed_sign=cursor.owed_sign if cursor is not None else None)
        yield Batch(invoices=[i for i in invoices.values() if i.platform_id in asked],
                    settled=(mapping.settled_entries(rows) & asked) - invoices.keys(),
                    problems=[Problem(p) for p in problems])

    def _open_set(self, known: Known) -> Generator[Batch, None, list[Invoice]]:
        """`--full`: the whole open set from `bulk/Cashflow/Receivables`; what it does not list is asked for."""
        rows, problems = mapping.parse_rows(self.exact.all(mapping.OPEN_RECEIVABLES, mapping.OPEN_STATUS_FILTER),
                                            ReceivableRow, "receivable")
        invoices, more = mapping.open_invoices(rows, connection=self.settings.name)
        problems += more
        if problems:
            problems.append("no invoice was closed in this sync because some receivables could not be read")
        yield Batch(invoices=list(invoices.values()), problems=[Problem(p) for p in problems],
                    covers_open_set=not problems)
        return list(invoices.values())

    def _first_terms(self, known: Known) -> Generator[Batch, None, tuple[list[Invoice], int, int | None]]:
        """The payment-term feed from its start, stored page by page with the feed position reached, so an
        interrupted first sync keeps its pages. An invoice whose terms span pages is stored again as more of them
        come in; one a page cuts short is completed by the next sync, which re-reads the invoices it touches.
        Returns the invoices, the position and the sign of a debt as the feed read so far shows it."""
        entries: dict[str, list[ReceivableRow]] = defaultdict(list)
        paid_by: dict[tuple[str | None, int], list[ReceivableRow]] = defaultdict(list)
        entries_of: dict[tuple[str | None, int], dict[str, None]] = defaultdict(dict)  # ordered sets: see `touched`
        delivered: dict[str, Invoice] = {}
        position, broken, complete, balance = 1, False, True, 0
        for raw in self.exact.pages(mapping.PAYMENT_TERM_CHANGES, mapping.timestamp_filter(1)):
            feed = self._feed(raw, ReceivableRow, "payment term", after=position)
            balance += mapping.receivable_balance(mapping.receivable_rows(feed.rows))
            broken = broken or bool(feed.problems)
            complete = complete and not feed.problems
            if not broken:
                position = feed.position
            touched: dict[str, None] = {}  # in feed order (a set's order varies per process): reproducible pages
            for row in mapping.receivable_rows(feed.rows):
                entry, key = mapping.invoice_keys(row)
                if entry is None:
                    if key is not None:
                        paid_by[key].append(row)
                        touched |= entries_of[key]
                    continue
                entries[entry].append(row)
                touched[entry] = None
                if key is not None:
                    entries_of[key][entry] = None
            terms = [row for entry in touched for row in entries[entry]]
            named = dict.fromkeys(key for row in terms if (key := mapping.invoice_keys(row)[1]) is not None)
            subset = terms + [row for key in named for row in paid_by[key]]  # with their unmatched payments
            invoices, problems = mapping.open_invoices(subset, connection=self.settings.name,
                                                       owed_sign=mapping.sign_of(balance))
            delivered.update(invoices)
            yield Batch(invoices=list(invoices.values()), settled=mapping.settled_entries(subset) - invoices.keys(),
                        problems=[Problem(p) for p in feed.problems + problems],
                        cursor=Cursor(position, None).dump())
        yield Batch(covers_open_set=complete)
        return list(delivered.values()), position, mapping.sign_of(balance)

    def _changed_terms(self, known: Known, after: int, sign: int | None
                       ) -> Generator[Batch, None, tuple[list[Invoice], int]]:
        """The payment terms changed since `after`, then the *current* open terms of the invoices they touch (a
        debt's sign as the first sync learnt it, where known)."""
        feed = self._feed(self.exact.changes(mapping.PAYMENT_TERM_CHANGES, after=after), ReceivableRow,
                          "payment term", after=after)
        changed = mapping.receivable_rows(feed.rows)
        numbers = mapping.invoice_numbers(changed)
        current, unreadable = mapping.parse_rows(self.exact.open_receivables_of(sorted(numbers)) if numbers else [],
                                                 ReceivableRow, "receivable")
        invoices, problems = mapping.open_invoices(current, connection=self.settings.name, owed_sign=sign)
        problems = feed.problems + unreadable + problems
        if unreadable:  # re-read these changes next time rather than judge on incomplete data
            yield Batch(invoices=list(invoices.values()), problems=[Problem(p) for p in problems])
            return list(invoices.values()), after
        # only invoices that were re-read can be judged (a term without an InvoiceNumber, e.g. an opening balance
        # entry, cannot be re-read by number: its changes are picked up by the next `--full` sync)
        touched = mapping.renumbered_entries(changed)
        gone = {i for i in touched if known.is_stored_open(i)} - set(invoices)
        settled = gone & mapping.settled_entries(changed)  # absent from the open terms *and* read settled
        yield Batch(invoices=list(invoices.values()), settled=sorted(settled), leavers=sorted(gone - settled),
                    problems=[Problem(p) for p in problems])
        return list(invoices.values()), feed.position

    def _feed(self, raw: list[dict[str, Any]], model: type[Any], what: str, *, after: int) -> _Feed:
        rows, problems, position, broken = [], [], after, False
        for record in raw:
            parsed, trouble = mapping.parse_rows([record], model, what)
            if trouble:
                problems += trouble
                broken = True
                continue
            rows += parsed
            reached = mapping.feed_position(parsed[0])
            if not broken and reached is not None:
                position = max(position, reached)
        return _Feed(rows, problems, position)

    def _debtors(self, known: Known, needed: set[str],
                 changed_accounts: Sequence[AccountRow]) -> tuple[list[Debtor], list[str]]:
        """Accounts of open invoices that are new or changed, with the contact fallback for their e-mail."""
        state = known.state
        found = {i: row for i, row in mapping.by_id(changed_accounts).items() if i in needed or i in state.debtors}
        missing = sorted(needed - set(found) - set(state.debtors))
        problems: list[str] = []
        if missing:
            rows, trouble = mapping.parse_rows(self.exact.by_ids(mapping.ACCOUNTS_BY_ID, missing), AccountRow,
                                               "account")
            problems += trouble
            found |= mapping.by_id(rows)
        without_email = mapping.without_email(found.values())
        contacts: dict[str, list[ContactRow]] = {}
        if without_email:
            rows, trouble = mapping.parse_rows(self.exact.by_ids(mapping.CONTACTS_OF_ACCOUNTS, without_email),
                                               ContactRow, "contact")
            problems += trouble
            contacts = mapping.contacts_by_account(rows)
        debtors = []
        for account in found.values():
            contact = mapping.contact_for(account, contacts)
            try:
                debtors.append(mapping.debtor(account, connection=self.settings.name, rule=self.options.debtor_kind,
                                              contact=contact))
            except ValueError as exc:
                problems.append(str(exc))
        for account_id in sorted(needed - set(found) - set(state.debtors)):
            problems.append(f"account {account_id}: Exact did not return this customer of an open invoice")
        return debtors, problems

    # -- reminders and notes ----------------------------------------------------------------------------------

    def send_reminder(self, request: ReminderRequest) -> Receipt:
        return self.record_reminder(request, self.mail_reminder(request))

    def recheck(self, invoices: Sequence[Invoice]) -> dict[str, FreshInvoice]:
        """The open terms of these invoice numbers (one bulk receivables call per 100 numbers) and, while Exact
        re-sends invoices for this connection, their SalesInvoices (processed or not, one call per ~40, kept for the
        mails of this run) and their documents (one call per ~40): the ids are each invoice's `trace`, the
        baseline `reminder_trace` compares with after a crash."""
        numbers = {int(i.number): i for i in invoices if i.number and i.number.isdigit()}
        if not numbers:
            return {}
        rows, unreadable = mapping.parse_rows(self.exact.open_receivables_of(sorted(numbers)), ReceivableRow,
                                              "receivable")
        if unreadable:
            return {}  # not sure of any of them: the stored state stands
        still_open, _problems = mapping.open_invoices(rows, connection=self.settings.name)
        ids = [invoice.platform_id for invoice in numbers.values()]
        traces: dict[str, tuple[str, ...]] | None = None
        if not self.mailing_refused:  # nothing is printed otherwise: neither is needed
            records = mapping.sales_invoices_by_id(self.exact.by_ids(mapping.SALES_INVOICE, ids))
            self._sales.update({i: records.get(i) for i in ids})
            if not self.trace_lost:
                documents = mapping.documents_by_invoice(self.exact.by_ids(mapping.DOCUMENTS_OF_INVOICE, ids))
                traces = {i: documents.get(i, ()) for i in ids}
                self._documents.update(traces)
        return {i: FreshInvoice(invoice=still_open.get(i), trace=traces[i] if traces is not None else None)
                for i in ids}

    def reminder_trace(self, request: ReminderRequest, before: Mapping[str, Any],
                       fresh: Mapping[str, FreshInvoice]) -> bool | None:
        """Each print creates a Document of the invoice (the spec's PrintedSalesInvoice `Document`: "the id of the
        document that was created"): a document the claim's baseline lacks → the print happened; none → it did not.
        Where this connection showed that a print re-uses the invoice's document (`trace_lost`), it cannot tell.

        A new document proves the print, not the mail: Exact creates it also when the e-mail fails, and its answer
        saying so was lost with the crash. The debtor had an address when the row was claimed, so it is taken as
        mailed."""
        invoice = request.invoices[0].platform_id
        now = fresh.get(invoice)
        if self.trace_lost or invoice not in before or now is None or not isinstance(now.trace, tuple):
            return None
        return bool(set(now.trace) - set(before[invoice]))

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
        record = (self._sales[invoice.platform_id] if invoice.platform_id in self._sales
                  else self.exact.sales_invoice(invoice.platform_id))
        if record is None:
            raise ReminderRefused(f"invoice {invoice.label} is not a sales invoice of Exact's invoicing (an opening "
                                  "balance or journal entry, say), so Exact cannot re-send it", connection=connection)
        if not mapping.is_processed(record):
            raise ReminderRefused(f"invoice {invoice.label} is not processed in Exact Online (status "
                                  f"{mapping.invoice_status(record)}); sending it would book it, so it was not sent",
                                  connection=connection)
        body = mapping.resend_body(invoice.platform_id, request.message, email_layout=self.options.email_layout,
                                   document_layout=self.options.document_layout)
        try:
            answer = mapping.printed_invoice_receipt(self.exact.print_invoice(body))
        except PlatformError as exc:
            if exc.retryable or isinstance(exc, ReminderRefused):
                raise  # an outage: whether Exact mailed is unknown, so the outbox must not call this a refusal
            self.mailing_refused = (f"Exact Online refused to re-send processed invoice {invoice.label} "
                                    f"({exc.message})")
            raise ReminderRefused(f"Exact Online would not re-send invoice {invoice.label}: {exc.message}",
                                  connection=connection, status=exc.status) from None
        if answer.email_error:
            raise ReminderRefused(f"Exact Online did not e-mail invoice {invoice.label}: {answer.email_error}",
                                  connection=connection)
        if not answer.email_success:
            raise ReminderRefused(f"Exact Online did not confirm e-mailing invoice {invoice.label}; check the invoice "
                                  "in Exact before reminding by hand", connection=connection)
        self._learn_trace(invoice, answer)
        # Exact mails the invoice's contact person (or the account), and does not say which address: the receipt
        # does not guess one.
        return Receipt(platform_reference=answer.document, sent_at=self.api.now(), recipients=(),
                       detail=f"Exact re-sent invoice {invoice.label} by e-mail to the invoice's contact (Exact does "
                              f"not report the address): {answer.email_success}")

    def _learn_trace(self, invoice: Invoice, answer: mapping.PrintedInvoice) -> None:
        """Assumed, as the spec documents, that each print creates a new document of the invoice, found by
        `FinancialTransactionEntryID`. Unconfirmed on a real administration, so the first print of each run is
        checked with one read of the invoice's documents: should it show no new one (Exact re-used the document, or
        did not link the new one to the invoice), a print leaves no trace `reminder_trace` can read, and delivery
        remembers that for the connection (a crash mid-print is then checked by hand). Before a connection's first
        print has answered, "no new document" is read as "not printed"."""
        baseline = self._documents.get(invoice.platform_id)
        if self.trace_lost or self._trace_seen or baseline is None:
            return
        try:
            documents = self.exact.documents_of(invoice.platform_id)
        except DunningError as exc:  # the mail went out: a failed check must not turn it into a failed send
            log.warning("%s: could not check the documents of invoice %s after re-sending it (%s); checked on the "
                        "next re-send", self.settings.name, invoice.label, exc.message)
            return
        now = mapping.documents_by_invoice(documents).get(invoice.platform_id, ())
        self._documents[invoice.platform_id] = now
        if set(now) - set(baseline):
            self._trace_seen = True
            return
        reused = mapping.printed_document(answer) in baseline
        self.trace_lost = (f"Exact Online {'re-used the document' if reused else 'showed no new document'} of "
                           f"invoice {invoice.label} when re-sending it, so a re-send leaves no trace to find after "
                           "a crash")

    def record_reminder(self, request: ReminderRequest, mailed: Receipt) -> Receipt:
        """A CommunicationNote on the account, carrying the key (a processed invoice itself cannot be changed)."""
        invoice = request.invoices[0]
        subject = request.subject or f"Reminder ({request.step}) for invoice {invoice.label}"
        if self._notes_refused is not None:
            return Receipt(platform_reference=mailed.platform_reference, sent_at=mailed.sent_at, recipients=(),
                           detail=f"{mailed.detail}; no note on the account: Exact refused notes earlier in this run "
                                  f"({self._notes_refused})")
        try:
            note = self.exact.add_note(mapping.note_body(invoice.debtor_id, subject, request.message or subject,
                                                         request.idempotency_key, odata.dutch_day(self.api.now())))
        except PlatformError as exc:  # the mail went out: report it sent, and say the note is missing
            if exc.status in _COUNTED_ERRORS:
                self._notes_refused = exc.message
            return Receipt(platform_reference=mailed.platform_reference, sent_at=mailed.sent_at, recipients=(),
                           detail=f"{mailed.detail}; the note on the account failed: {exc.message}")
        return Receipt(platform_reference=mapping.note_id(note), sent_at=mailed.sent_at, recipients=(),
                       detail=f"{mailed.detail}; recorded as a communication note on the account")

    def add_note(self, invoice: Invoice, text: str, *, idempotency_key: str) -> Receipt:
        note = self.exact.add_note(mapping.note_body(invoice.debtor_id, f"Invoice {invoice.label}", text,
                                                     idempotency_key, odata.dutch_day(self.api.now())))
        return Receipt(platform_reference=mapping.note_id(note), sent_at=self.api.now(),
                       detail=f"communication note on the account of invoice {invoice.label}")

    def find_note(self, invoice: Invoice, idempotency_key: str) -> Receipt | None:
        for note in self.exact.notes_of(invoice.debtor_id):
            if mapping.carries_key(note, idempotency_key):
                return Receipt(platform_reference=mapping.note_id(note),
                               sent_at=mapping.note_created(note) or self.api.now(),
                               detail=f"communication note found on the account of invoice {invoice.label}")
        return None

    # -- PDF --------------------------------------------------------------------------------------------------

    def fetch_pdf(self, invoice: Invoice) -> bytes:
        for document in self.exact.documents_of(invoice.platform_id):
            for url in mapping.pdf_urls(self.exact.attachments_of(mapping.document_id(document))):
                response = self.exact.download(url)
                if not response.content.startswith(b"%PDF"):
                    raise PlatformError(f"Exact Online answered the PDF download of invoice {invoice.label} with a "
                                        "web page instead of the file", connection=self.settings.name)
                return response.content
        raise NotFound(f"Exact Online holds no PDF for invoice {invoice.label} (no document with a PDF attachment)",
                       connection=self.settings.name)


__all__ = ["ExactOptions", "ExactProvider"]
