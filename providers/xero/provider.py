"""The Xero adapter: open sales invoices and their contacts in the fewest calls, reminders by Xero's own e-mail.

Calls per sync (pages of 1,000, Xero's largest):
- full: one call per 1,000 open invoices (`Statuses=AUTHORISED[,SUBMITTED]`, ordered by UpdatedDateUTC), plus the
  contacts they need, plus a check of the stored open invoices that were not seen (50 per call) before they are
  closed — a concurrent change can shift a record across a page boundary, so "not seen" alone never closes one,
  and one Xero does not return at all is kept open and named (`providers.streams` decides this for every platform);
- incremental: `If-Modified-Since` the highest UpdatedDateUTC seen, *without* a status filter, so paid, voided and
  deleted invoices come back and are closed; plus one `If-Modified-Since` call for contacts. Nothing changed:
  2 calls.
Contacts are fetched only when new (50 ids per call) or changed (`If-Modified-Since`); when one page of invoices
needs more than 50 unknown contacts, reading all contacts 1,000 a page is cheaper and is done once instead.

The online invoice URL (the payment link) costs one call per invoice, so it is not read during sync (20,000
invoices would take days of Xero's limit): `payment_url` reads it when a text needs it (a letter, the dossier);
Xero's own invoice e-mail carries the link already, and `send_reminder` puts it on the receipt.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from connector.models import Debtor, DebtorKind, Invoice
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
from providers.errors import (
    AuthorizationExpired,
    BadPlatformData,
    DunningError,
    NotFound,
    PlatformError,
    ReminderRefused,
)
from providers.http import ApiClient, RateWindow
from providers.streams import Batch, Known, Problem, Stream
from providers.xero import mapping
from providers.xero.client import DEFAULT_API_URL, IDS_PER_CALL, PAGE_SIZE, XeroClient, XeroProfile

AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
TOKEN_URL = "https://identity.xero.com/connect/token"
CLOCK_MARGIN = timedelta(hours=1)
"""When Xero's answers carry no clock (`DateTimeUTC`, `Date`), contacts are next read as changed since our own
clock at the start of the sync minus this margin (for clock skew): re-reading a few contacts costs no call."""


class XeroOptions(BaseModel):
    """`[connections.options]` for a Xero connection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    include_submitted: bool = False
    """Also collect invoices awaiting approval (SUBMITTED), not only approved (AUTHORISED) ones."""
    starter_tier: bool = False
    """The app is on Xero's free Starter tier: 1,000 calls a day per organisation instead of 5,000."""
    debtor_kinds: dict[str, DebtorKind] = {}
    """ContactID → business | consumer, overriding the heuristic of `mapping.debtor_kind`."""


class _Cursor(BaseModel):
    """The bookmark between syncs: the highest invoice UpdatedDateUTC seen, when contacts were last read, and the
    `If-Modified-Since` form the platform accepted (`XeroClient.zoned_since`; None: not yet known), so a server that
    refuses one form costs one refused call once, not on every sync."""

    model_config = ConfigDict(frozen=True)

    invoices: datetime | None = None
    contacts: datetime | None = None
    zoned_since: bool | None = None

    @classmethod
    def parse(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            return cls.model_validate(json.loads(text))
        except ValueError:
            return cls()  # an unreadable bookmark means: read everything again

    def dump(self) -> str:
        return self.model_dump_json()


def _floor_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _later(highest: datetime | None, updated: datetime | None) -> datetime | None:
    return updated if updated and (highest is None or updated > highest) else highest


class _Contacts:
    """The contacts one sync has read, and the cheapest way to read the ones still missing."""

    def __init__(self, client: XeroClient, connection: str, known: Mapping[str, str | None],
                 kinds: Mapping[str, DebtorKind], since: datetime) -> None:
        self.client = client
        self.since = since
        """The contacts cursor to keep when Xero's answers carry no clock: our own, less `CLOCK_MARGIN`."""
        self.connection = connection
        self.known = known
        self.kinds = kinds
        self.read: dict[str, Debtor | str] = {}
        """ContactID → Debtor, or the problem that made it unreadable."""
        self.read_all = False
        self.delivered: set[str] = set()

    def remember(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            contact_id = mapping.contact_id(record)
            if not contact_id:
                continue
            try:
                self.read[contact_id] = mapping.debtor_from_xero(record, connection=self.connection, kinds=self.kinds)
            except BadPlatformData as exc:
                self.read[contact_id] = str(exc)

    def fetch(self, needed: set[str], pages_to_come: int) -> None:
        """Read the needed contacts not yet read: by id in 50s, or all at once when that takes fewer calls."""
        missing = needed - self.read.keys()
        if len(missing) > IDS_PER_CALL and not self.read_all:
            self.read_all = True
            for page in self.client.contacts(since=None):
                self.remember(page.records)
                still = needed - self.read.keys()
                pages_left = (page.page_count or 0) - 1
                if page.page_count and pages_left > math.ceil(len(still) / IDS_PER_CALL) * max(1, pages_to_come):
                    break  # a book with far more contacts than debtors: ids are cheaper after all
            missing = needed - self.read.keys()
        for records in self.client.contacts_by_id(sorted(missing)):
            self.remember(records)

    def changed_known(self) -> list[Debtor]:
        """Read contacts the store already holds (the sync machine keeps those that changed)."""
        return [d for cid, d in self.read.items() if cid in self.known and isinstance(d, Debtor)
                and cid not in self.delivered]

    def deliver(self, contact_ids: set[str]) -> tuple[list[Debtor], list[str]]:
        """Debtors read for these ids (once per sync), and problems for unreadable ones."""
        debtors, problems = [], []
        for cid in sorted(contact_ids - self.delivered):
            found = self.read.get(cid)
            if isinstance(found, Debtor):
                debtors.append(found)
                self.delivered.add(cid)
            elif isinstance(found, str) or cid not in self.known:
                problems.append(found or f"contact {cid}: Xero did not return it")
                self.delivered.add(cid)
        return debtors, problems


class XeroProvider(Provider):
    name: ClassVar[str] = "xero"
    capabilities: ClassVar[Capabilities] = Capabilities(
        native_reminder=True, custom_message=False, consolidated_reminders=False, delivery_methods=("email",)
    )
    Options = XeroOptions
    replay_window: ClassVar[timedelta | None] = timedelta(minutes=2)
    """Xero answers a repeated Idempotency-Key from memory for "minutes" (the length is unconfirmed): two, to be
    on the safe side; a crashed send found later becomes a task to check rather than a second mail."""
    refresh_token_lifetime: ClassVar[timedelta | None] = timedelta(days=60)  # providers.md: "an unused refresh
    # token expires after 60 days"
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream("invoices", mapping.INVOICES, "page-number", mapping.UPDATED, PAGE_SIZE, IDS_PER_CALL),
        Stream("contacts", mapping.CONTACTS, "page-number", mapping.UPDATED, PAGE_SIZE, IDS_PER_CALL),
    )

    def __init__(self, settings: ConnectionSettings, api: ApiClient) -> None:
        super().__init__(settings, api)
        self.options: XeroOptions
        self.client = XeroClient(api)

    # -- declarations ------------------------------------------------------------------------------------------

    @classmethod
    def oauth(cls, settings: ConnectionSettings) -> OAuthEndpoints:
        return OAuthEndpoints(
            authorize_url=settings.authorize_url or AUTHORIZE_URL,
            token_url=settings.token_url or TOKEN_URL,
            scopes=settings.scopes or mapping.SCOPES,
            pkce=True,
            # Web apps authenticate at the token endpoint with HTTP Basic; PKCE apps have no secret.
            token_auth="client_secret_basic",
        )

    @classmethod
    def http_profile(cls, settings: ConnectionSettings) -> XeroProfile:
        options = XeroOptions.model_validate(dict(settings.options))
        headers = {"Accept": "application/json"}
        if settings.tenant:
            headers["Xero-tenant-id"] = settings.tenant
        return XeroProfile(
            base_url=(settings.api_url or DEFAULT_API_URL).rstrip("/"),
            headers=headers,
            windows=(RateWindow("minute", 60, 60), RateWindow("day", 1000 if options.starter_tier else 5000, 86400)),
            tenant=settings.tenant,
        )

    # -- calls -------------------------------------------------------------------------------------------------

    def list_tenants(self) -> list[Tenant]:
        return mapping.tenants(self.client.connections())

    def _open_statuses(self) -> tuple[str, ...]:
        return mapping.open_statuses(include_submitted=self.options.include_submitted)

    def read(self, known: Known) -> Iterator[Batch]:
        cursor = _Cursor.parse(known.cursor)
        full = known.full or cursor.invoices is None
        if cursor.zoned_since is not None:
            self.client.zoned_since = cursor.zoned_since
        statuses = self._open_statuses()
        self._contacts = contacts = _Contacts(self.client, self.settings.name, known.state.debtors,
                                              self.options.debtor_kinds, _floor_second(self.api.now() - CLOCK_MARGIN))
        started: datetime | None = None
        pages = self.api.first_started(  # the first page is on its way while the changed contacts are read
            self.client.sales_invoices(statuses=statuses if full else None, since=None if full else cursor.invoices))
        if not full and cursor.contacts is not None:  # contacts changed since the last sync (1 call if none did)
            for page in self.client.contacts(since=cursor.contacts):
                started = started or page.server_time
                contacts.remember(page.records)
        highest = cursor.invoices
        for page in pages:
            started = started or page.server_time
            invoices, problems, returned = self._mapped(page.records, known, statuses)
            for record in page.records:
                highest = _later(highest, mapping.updated_of(record))
            yield self._batch(invoices, problems, returned, page.page_count, reread=full,
                              cursor=self._cursor(highest, started))
        yield Batch(covers_open_set=full, cursor=self._cursor(highest, started).dump())

    def confirm(self, invoice_ids: Sequence[str], known: Known) -> Iterator[Batch]:
        """`GET /Invoices?IDs=…`, 50 a call: a full read can miss a record a concurrent change moved across a page
        boundary, so "not listed" is asked once more by id before anything closes."""
        statuses = self._open_statuses()
        for records in self.client.invoices_by_id(invoice_ids):
            invoices, problems, returned = self._mapped(records, known, statuses, ours_only=False)
            yield self._batch(invoices, problems, returned, 1, reread=True, cursor=None)

    def _mapped(self, records: Sequence[Mapping[str, Any]], known: Known, statuses: tuple[str, ...], *,
                ours_only: bool = True) -> tuple[list[Invoice], list[Problem], list[str]]:
        invoices, problems, returned = [], [], []
        for record in records:
            invoice_id = mapping.invoice_id_of(record)
            if ours_only and not known.is_stored_open(invoice_id or "") and mapping.is_other_document(record,
                                                                                                     statuses):
                returned.append(invoice_id or "")
                continue
            try:
                invoices.append(mapping.invoice_from_xero(record, connection=self.settings.name,
                                                          open_statuses=statuses))
            except BadPlatformData as exc:
                problems.append(Problem(str(exc), invoice_id))
        return invoices, problems, returned

    def _cursor(self, invoices: datetime | None, started: datetime | None) -> _Cursor:
        """Where the next sync starts: after the latest invoice change seen, at the clock of the first answer for
        contacts (else our own, less the margin), in the `If-Modified-Since` form Xero accepted."""
        contacts = _floor_second(started) if started else self._contacts.since
        return _Cursor(invoices=invoices, contacts=contacts, zoned_since=self.client.zoned_since)

    def _batch(self, invoices: list[Invoice], problems: list[Problem], returned: list[str], page_count: int | None,
               *, reread: bool, cursor: _Cursor | None) -> Batch:
        """One page: its invoices, the debtors they need that are new or changed, and the cursor."""
        contacts = self._contacts
        debtor_ids = {i.debtor_id for i in invoices if i.is_open}  # a full read re-reads every debtor with open ones
        to_read = debtor_ids if reread else {cid for cid in debtor_ids if cid not in contacts.known}
        contacts.fetch(to_read, pages_to_come=max(1, (page_count or 1)))
        changed = contacts.changed_known()
        new, contact_problems = contacts.deliver(debtor_ids)
        contacts.delivered.update(d.platform_id for d in changed)
        return Batch(invoices=invoices, debtors=list({d.platform_id: d for d in changed + new}.values()),
                     problems=[*problems, *(Problem(p) for p in contact_problems)], returned=returned,
                     cursor=cursor.dump() if cursor else None)

    def fetch_pdf(self, invoice: Invoice) -> bytes:
        return self.client.invoice_pdf(invoice.platform_id)

    def send_reminder(self, request: ReminderRequest) -> Receipt:
        """Xero e-mails its own invoice e-mail, then the step is recorded in the invoice's history with the key."""
        return self.record_reminder(request, self.mail_reminder(request))

    def mail_reminder(self, request: ReminderRequest) -> Receipt:
        """`POST /Invoices/{id}/Email` with the outbox key as `Idempotency-Key`: a repeat within Xero's replay
        window is answered without a second mail (`replay_window`); after it, only the history note tells."""
        if len(request.invoices) != 1:
            raise ReminderRefused(
                f"Xero e-mails one invoice at a time; this reminder covers {len(request.invoices)} invoices",
                connection=self.settings.name)
        invoice = request.invoices[0]
        if not request.debtor.emails:
            # Xero refuses such a mail with a 400 (simulator, unconfirmed wording); it must never be a silent 204.
            raise ReminderRefused(
                f"Xero cannot e-mail invoice {invoice.label}: contact {request.debtor.name} has no e-mail address "
                "in Xero (add one, or tick 'Include in emails' for a contact person)", connection=self.settings.name)
        try:
            self.client.email_invoice(invoice.platform_id, idempotency_key=request.idempotency_key)
        except NotFound:
            raise ReminderRefused(f"invoice {invoice.label} no longer exists in Xero",
                                  connection=self.settings.name, status=404) from None
        except PlatformError as exc:
            if exc.status != 400:
                raise
            raise ReminderRefused(f"Xero would not e-mail invoice {invoice.label}: {exc.message}",
                                  connection=self.settings.name, status=400) from None
        # Xero mails the contact's address and the contact persons ticked "Include in emails" (the debtor's
        # addresses as synced); it does not report them in its answer.
        return Receipt(sent_at=self.api.now(), recipients=request.debtor.emails,
                       detail=f"Xero e-mailed invoice {invoice.label} (its own invoice e-mail)")

    def record_reminder(self, request: ReminderRequest, mailed: Receipt) -> Receipt:
        invoice = request.invoices[0]
        try:
            note = self.add_note(invoice, f"Dunning Connector: {request.step}",
                                 idempotency_key=request.idempotency_key)
        except DunningError as exc:
            # The mail went out: raising would invite a second one. Say what to record by hand instead.
            by_hand = mapping.reminder_details(request.step, request.idempotency_key)
            return Receipt(sent_at=mailed.sent_at, recipients=mailed.recipients,
                           detail=f"{mailed.detail}, but recording it in the invoice's history failed ({exc}); add "
                                  f"the note '{by_hand}' in Xero by hand")
        return Receipt(platform_reference=note.platform_reference, sent_at=note.sent_at, recipients=mailed.recipients,
                       detail=f"{mailed.detail}; history: {note.detail}")

    def recheck(self, invoices: Sequence[Invoice]) -> dict[str, FreshInvoice]:
        """`GET /Invoices?IDs=…`, 50 ids a call: what is still open right before sending."""
        statuses = self._open_statuses()
        found: dict[str, FreshInvoice] = {}
        for batch in self.client.invoices_by_id([i.platform_id for i in invoices]):
            for record in batch:
                try:
                    fresh = mapping.invoice_from_xero(record, connection=self.settings.name, open_statuses=statuses)
                except BadPlatformData:
                    continue  # unreadable now: left unchecked, the stored state stands
                found[fresh.platform_id] = FreshInvoice(invoice=fresh if fresh.is_open else None)
        return found

    def payment_url(self, invoice: Invoice) -> str | None:
        """`GET /Invoices/{id}/OnlineInvoice`: the online invoice, where the debtor can pay (not for drafts)."""
        return invoice.payment_url or self.client.online_invoice_url(invoice.platform_id)

    def add_note(self, invoice: Invoice, text: str, *, idempotency_key: str) -> Receipt:
        """A history record `<text> [<key>]` (Xero shows it as "System Generated", at most 250 characters)."""
        details = mapping.note_details(text, idempotency_key)
        # Its own key: Xero may scope idempotency keys per organisation rather than per endpoint (unconfirmed).
        record = self.client.add_history(invoice.platform_id, details,
                                         idempotency_key=f"{idempotency_key[:120]}:history")
        created = mapping.history_created(record) if record else None
        return Receipt(platform_reference=None, sent_at=created or self.api.now(), detail=details)

    def find_note(self, invoice: Invoice, idempotency_key: str) -> Receipt | None:
        for record in self.client.history(invoice.platform_id):
            details = mapping.history_details(record)
            if mapping.carries_key(details, idempotency_key):
                created = mapping.history_created(record)
                return Receipt(sent_at=created or self.api.now(), detail=str(details))
        return None

    def warnings(self) -> list[str]:
        try:
            enabled = self.client.reminders_enabled()
        except AuthorizationExpired as exc:
            return [(f"{self.settings.name}: could not check whether Xero's own invoice reminders are on ({exc}); "
                     "the app needs the accounting.settings.read scope")]
        except DunningError as exc:  # a check, never a reason to fail
            return [(f"{self.settings.name}: could not check whether Xero's own invoice reminders are on ({exc}); "
                     "check Invoice settings → Invoice reminders in Xero yourself")]
        if enabled:
            return [(f"{self.settings.name}: Xero's own invoice reminders are switched on (Invoice settings → "
                     "Invoice reminders); debtors would get two sets of reminders. Switch them off in Xero.")]
        return []
