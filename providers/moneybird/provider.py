"""The Moneybird adapter: open sales invoices and their contacts, reminders through Moneybird's own mailing.

Sync uses Moneybird's synchronization endpoints, which make an unchanged re-sync cost two calls: one
`GET …/synchronization` for invoice ids and versions (filtered on the open states — a filter is always sent,
because without one Moneybird silently limits the list to this year's invoices) and one for contacts. Only new or
changed invoices are fetched, 100 per `POST …/synchronization` (Moneybird's maximum; extra ids would be dropped
without an error), and each invoice carries its contact, so debtors cost no extra calls unless a contact changed on
its own. Stored invoices the open listing no longer holds are asked for by id (in the same batches) and closed
as Moneybird returns them (paid, uncollectible). One it does not return at all is read directly (`GET
sales_invoices/{id}`, at most `DIRECT_READS` a sync): Moneybird's 404 `record not found` is the evidence that it
was deleted, and it is closed; any other answer keeps it open, named.

Reminders go through `POST sales_invoices/send_reminders`: one reminder per (contact, workflow, document style,
identity) — Moneybird's own grouping — covering all the debtor's invoices in the request, with our rendered text,
followed by a note on every invoice carrying the step and the idempotency key (what `find_note` looks for).

Moneybird's own workflows can send reminders automatically too, which would collide with ours. `warnings()` (shown
by `dunning status`) names every active invoice workflow with a step whose `reminder_auto_send` is on (the field
of `workflow_response.steps[]` in Moneybird's OpenAPI description of 2026-10-02). To turn them off: in Moneybird
open Instellingen → Workflows (Settings → Workflows; confirmed by Moneybird's help centre), edit each invoice
workflow and switch off automatic sending in each of its reminder steps. The exact label of that switch in
Moneybird's screen is not confirmed here; the API calls it `reminder_auto_send`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from connector.models import DebtorKind, Invoice
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
from providers.errors import BadPlatformData, DunningError, PlatformError, ReminderRefused
from providers.moneybird import mapping
from providers.moneybird.client import DEFAULT_API_URL, MoneybirdClient, MoneybirdProfile, RecordNotFound
from providers.streams import Batch, Known, Problem, Stream, by_id

if TYPE_CHECKING:
    from providers.http import ApiClient

DIRECT_READS = 20
"""Leavers missing from the synchronization answer read one by one per sync; the rest stay open, named."""

log = logging.getLogger(__name__)

POSTED = "print and post the reminder"
"""Said in a receipt when Moneybird recorded the reminder but a person has to post it."""


class MoneybirdOptions(BaseModel):
    """`[connections.options]` for a Moneybird connection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    debtor_kinds: dict[str, DebtorKind] = Field(default_factory=dict)
    """Contact id → `business` or `consumer`, overriding the guess from the company name."""
    settings_scope: bool = False
    """Also ask for the `settings` scope (only needed to read identities; reminders do not need it)."""


class MoneybirdProvider(Provider):
    name = "moneybird"
    capabilities: ClassVar[Capabilities] = Capabilities(
        native_reminder=True,
        custom_message=True,
        consolidated_reminders=True,
        delivery_methods=("email", "manual", "post"),
    )
    Options = MoneybirdOptions
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream("sales_invoices", mapping.INVOICES_SYNC, "version-list", mapping.VERSION, 1000, mapping.SYNC_BATCH),
        Stream("contacts", mapping.CONTACTS_SYNC, "version-list", mapping.VERSION, 1000, mapping.SYNC_BATCH),
    )

    def __init__(self, settings: ConnectionSettings, api: ApiClient) -> None:
        super().__init__(settings, api)
        self.client = MoneybirdClient(api, settings.tenant)
        self._fresh: dict[str, Mapping[str, Any]] = {}
        """Invoice records read by the last re-check, used once by the reminder that follows."""
        self._direct_reads = DIRECT_READS
        """Direct reads of missing leavers left in this sync."""

    # -- declarations -------------------------------------------------------------------------------------------

    @classmethod
    def oauth(cls, settings: ConnectionSettings) -> OAuthEndpoints:
        """Moneybird's OAuth lives on the same host as its API (`/oauth/authorize`, `/oauth/token`).

        No PKCE: Moneybird's authentication docs do not mention it (the app authenticates with its secret).
        """
        base = (settings.api_url or DEFAULT_API_URL).rstrip("/")
        options = MoneybirdOptions.model_validate(dict(settings.options))
        scopes = settings.scopes or ((*mapping.SCOPES, mapping.SETTINGS_SCOPE) if options.settings_scope
                                     else mapping.SCOPES)
        return OAuthEndpoints(
            authorize_url=settings.authorize_url or f"{base}/oauth/authorize",
            token_url=settings.token_url or f"{base}/oauth/token",
            scopes=tuple(scopes),
            pkce=False,
            token_auth="client_secret_post",
        )

    @classmethod
    def http_profile(cls, settings: ConnectionSettings) -> MoneybirdProfile:
        return MoneybirdProfile(base_url=f"{(settings.api_url or DEFAULT_API_URL).rstrip('/')}/api/v2/")

    # -- calls --------------------------------------------------------------------------------------------------

    def list_tenants(self) -> list[Tenant]:
        return [mapping.tenant(admin) for admin in self.client.administrations()]

    def read(self, known: Known) -> Iterator[Batch]:
        """Invoices in the open states whose version differs from the store's, then contacts that changed alone;
        stored open invoices the open listing no longer holds are leavers (the machine asks for them by id)."""
        connection = self.settings.name
        state = known.state
        self._direct_reads = DIRECT_READS
        contact_versions = self.api.started(self.client.contact_versions)  # both lists at once
        open_now = mapping.versions(self.client.invoice_versions(mapping.OPEN_FILTER))
        contacts_now = mapping.versions(contact_versions())
        wanted = [invoice_id for invoice_id, version in open_now.items() if not known.unchanged(invoice_id, version)]
        current: set[str] = set()
        """Debtors stored during this sync (or unchanged since the last one)."""

        def debtor_is_current(contact_id: str) -> bool:
            return contact_id in current or (
                not known.full and known.knows_debtor(contact_id)
                and known.debtor_marker(contact_id) == contacts_now.get(contact_id, known.debtor_marker(contact_id))
            )

        for records in self._fetch(self.client.invoices, wanted):
            batch = self._mapped(records, debtor_is_current, known)
            current.update(d.platform_id for d in batch.debtors)
            yield batch
        # contacts that changed while none of their open invoices did
        changed_alone = [cid for cid in state.debtors if cid in contacts_now and not debtor_is_current(cid)]
        for records in self._fetch(self.client.contacts, changed_alone):
            debtors, problems = [], []
            for record in records:
                try:
                    debtors.append(mapping.to_debtor(record, connection=connection, kinds=self.options.debtor_kinds))
                except BadPlatformData as exc:
                    problems.append(Problem(exc.message))
            yield Batch(debtors=debtors, problems=problems)
        # the cursor only records how far the versions went; the comparison with the store does the real work
        newest = max((int(v) for v in open_now.values() if v and v.isdigit()), default=None)
        yield Batch(leavers=[i for i in state.open_invoices if i not in open_now],
                    cursor=f"version:{newest}" if newest is not None else None)

    def confirm(self, invoice_ids: Sequence[str], known: Known) -> Iterator[Batch]:
        """`POST sales_invoices/synchronization`, 100 ids a call: each leaver as Moneybird has it now. The
        synchronization answer simply leaves a deleted invoice out, so one still missing is read directly."""
        returned: set[str] = set()
        for records in self._fetch(self.client.invoices, invoice_ids):
            returned.update(mapping.id_of(r) for r in records)
            yield self._mapped(records, lambda contact_id: known.knows_debtor(contact_id), known)
        missing = [i for i in invoice_ids if i not in returned][:self._direct_reads]
        self._direct_reads -= len(missing)
        deleted = [i for i in missing if self._deleted(i)]
        if deleted:
            yield Batch(deleted=deleted)

    def _deleted(self, invoice_id: str) -> bool:
        """Moneybird answers a direct read with its own `record not found`; anything else proves nothing."""
        try:
            self.client.invoice(invoice_id)
        except RecordNotFound:
            return True
        except DunningError:
            return False  # an outage or a refusal: the invoice stays open, named by the sync
        return False

    def _mapped(self, records: Sequence[Mapping[str, Any]], debtor_is_current: Callable[[str], bool],
                known: Known) -> Batch:
        """Invoices and the debtors they need (embedded in each invoice, as Moneybird sends them, else fetched)."""
        connection = self.settings.name
        invoices, debtors, problems = [], {}, []
        mapped = []
        for record in records:
            try:
                mapped.append((mapping.to_invoice(record, connection=connection), record))
            except BadPlatformData as exc:
                problems.append(Problem(exc.message, mapping.id_of(record) or None))
        contacts = self._contacts_for(mapped, debtor_is_current)
        for invoice, _record in mapped:
            if not debtor_is_current(invoice.debtor_id) and invoice.is_open:
                try:
                    debtors[invoice.debtor_id] = mapping.to_debtor(
                        contacts.get(invoice.debtor_id) or {}, connection=connection, kinds=self.options.debtor_kinds,
                    )
                except BadPlatformData as exc:
                    problems.append(Problem(f"{invoice.label}: its {exc.message}",
                                            invoice.platform_id))
                    if not known.knows_debtor(invoice.debtor_id):
                        continue  # without a debtor the invoice cannot be worked; the next sync retries it
            invoices.append(invoice)
        return Batch(invoices=invoices, debtors=list(debtors.values()), problems=problems)

    def _contacts_for(
        self, mapped: Sequence[tuple[Invoice, Mapping[str, Any]]], is_current: Callable[[str], bool]
    ) -> dict[str, Mapping[str, Any]]:
        """The contacts these invoices need: embedded in each invoice (as Moneybird sends them), else fetched."""
        contacts: dict[str, Mapping[str, Any]] = {}
        for invoice, record in mapped:
            embedded = mapping.embedded_contact(record, invoice.debtor_id)
            if embedded is not None:
                contacts[invoice.debtor_id] = embedded
        missing = list(dict.fromkeys(i.debtor_id for i, _ in mapped
                                     if i.is_open and i.debtor_id not in contacts and not is_current(i.debtor_id)))
        for batch in self._fetch(self.client.contacts, missing):
            contacts.update({mapping.id_of(c): c for c in batch})
        return contacts

    def _fetch(self, call: Any, ids: Sequence[str]) -> Iterator[list[Mapping[str, Any]]]:
        """Records in batches of 100, a few batches at once (within the window: Moneybird documents no limit on
        calls at once, only 150 per 5 minutes); Moneybird may answer with fewer, so missing ids are asked once
        more."""
        for records in by_id(call, ids, batch_size=mapping.SYNC_BATCH, id_of=mapping.id_of, reask_missing=True,
                             at_once=self.api.profile.max_in_flight):
            yield [r for r in records if isinstance(r, Mapping)]

    def fetch_pdf(self, invoice: Invoice) -> bytes:
        """Follow the 302 to the signed URL at once (it lives 30 seconds), without the bearer token."""
        link = self._pdf_link(invoice)
        if isinstance(link, bytes):
            return self._pdf(link, invoice)
        try:
            return self._pdf(self.client.download(link), invoice)
        except PlatformError as exc:
            if exc.status not in (401, 403, 404, 410):
                raise
        # the link died before we got to it (a long wait for the rate limit, say): once more with a fresh one
        link = self._pdf_link(invoice)
        return self._pdf(link if isinstance(link, bytes) else self.client.download(link), invoice)

    def _pdf(self, content: bytes, invoice: Invoice) -> bytes:
        """Only a PDF is handed on: an error page answered with 200 must not go out as the invoice."""
        if content.lstrip()[:5] != b"%PDF-":
            raise BadPlatformData(f"Moneybird's PDF of invoice {invoice.label} is not a PDF "
                                  f"({content[:40]!r}); try again later", connection=self.settings.name)
        return content

    def _pdf_link(self, invoice: Invoice) -> str | bytes:
        """The signed URL of the invoice's PDF, or the PDF itself from a server that answers without redirecting."""
        response = self.client.pdf_location(invoice.platform_id)
        if not response.is_redirect:
            return response.content
        location = response.headers.get("Location")
        if not location:
            raise BadPlatformData(f"Moneybird gave no PDF link for invoice {invoice.label}",
                                  connection=self.settings.name)
        return str(response.request.url.join(location))

    def send_reminder(self, request: ReminderRequest) -> Receipt:
        return self.record_reminder(request, self.mail_reminder(request))

    def recheck(self, invoices: Sequence[Invoice]) -> dict[str, FreshInvoice]:
        """`POST sales_invoices/synchronization` (100 ids a call): each invoice as it stands, with its reminder count.

        The records are kept for the reminders that follow in this run, so sending does not read them again."""
        connection = self.settings.name
        found: dict[str, FreshInvoice] = {}
        unreadable: set[str] = set()
        for batch in self._fetch(self.client.invoices, [i.platform_id for i in invoices]):
            for record in batch:
                invoice_id = mapping.record_id_of(record)
                self._fresh[invoice_id] = record
                try:
                    fresh = mapping.to_invoice(record, connection=connection)
                except BadPlatformData:
                    unreadable.add(invoice_id)  # returned but unreadable now: left unchecked, the stored state stands
                    continue
                found[invoice_id] = FreshInvoice(invoice=fresh if fresh.is_open else None,
                                                 trace=mapping.reminders_sent(record))
        for invoice in invoices:  # not returned: deleted on the platform
            if invoice.platform_id not in unreadable:
                found.setdefault(invoice.platform_id, FreshInvoice(invoice=None))
        return found

    def reminder_trace(self, request: ReminderRequest, before: Mapping[str, Any],
                       fresh: Mapping[str, FreshInvoice]) -> bool | None:
        """Moneybird counts reminders per invoice: risen on every invoice since the claim → it went out; on none →
        it did not; on some → cannot be told (a person checks)."""
        rose = [int(fresh[i.platform_id].trace or 0) > int(before[i.platform_id]) for i in request.invoices
                if i.platform_id in before and i.platform_id in fresh]
        if len(rose) != len(request.invoices):
            return None
        return True if all(rose) else False if not any(rose) else None

    def mail_reminder(self, request: ReminderRequest) -> Receipt:
        """One `send_reminders` call, one entry per (contact, workflow, document style, identity) of the invoices,
        with our text and the contact's delivery method; only late/reminded invoices with an amount due."""
        connection = self.settings.name
        wanted = [i.platform_id for i in request.invoices]
        if all(i in self._fresh for i in wanted):  # read by the re-check just before
            records = {i: self._fresh.pop(i) for i in wanted}
        else:
            records = {mapping.record_id_of(r): r for batch in self._fetch(self.client.invoices, wanted)
                       for r in batch}
        done = [note for r in records.values() for note in mapping.notes_with_key(r, request.idempotency_key)]
        if done:  # sent before (a retry after a crash that lost the receipt): never twice
            return _note_receipt(done[0], detail="already sent: Moneybird holds the note with this key")
        groups: dict[tuple[str, str, str, str], list[str]] = {}
        refusals = []
        not_late = 0
        defaults: dict[str, Any] = {}
        for invoice in request.invoices:
            record = records.get(invoice.platform_id)
            reason = _why_not_remindable(invoice, record, request.debtor.platform_id)
            if reason:
                refusals.append(reason)
                continue
            assert record is not None
            if mapping.state_of(record) in mapping.NOT_YET_LATE_STATES:
                refusals.append(f"invoice {invoice.label} is not late yet in Moneybird "
                                f"('{mapping.state_of(record)}'); Moneybird reminds only invoices that are late")
                not_late += 1
                continue
            try:
                groups.setdefault(self._reminder_group(record, defaults), []).append(invoice.platform_id)
            except ValueError as exc:
                refusals.append(f"invoice {invoice.label}: {exc}")
        if refusals:
            # only invoices not yet late: the step is fine, Moneybird's mailing just cannot carry it (our mail can)
            raise ReminderRefused("; ".join(refusals), connection=connection, cannot_carry=not_late == len(refusals))
        method = mapping.DELIVERY[request.delivery]
        contact_method = next(filter(None, (mapping.contact_delivery_method(records[i.platform_id])
                                            for i in request.invoices)), None)
        if method == mapping.EMAIL and contact_method not in (None, mapping.EMAIL):
            # the contact takes its documents by post or e-invoicing: Moneybird records a manual reminder (a to-do
            # for the bookkeeper), never a mail the contact did not ask for
            method, request = mapping.MANUAL, request.model_copy(update={"delivery": "post"})
        # the contact's invoice address as Moneybird holds it now (several addresses stay together, "a; b"), else
        # the first address the store knows
        address = next(filter(None, (mapping.invoice_email(records[i.platform_id]) for i in request.invoices)),
                       request.debtor.emails[0] if request.debtor.emails else None)
        if method == mapping.EMAIL and address is None:
            raise ReminderRefused(
                f"debtor {request.debtor.name} has no e-mail address in Moneybird; add one to the contact or send the "
                "reminder by post",
                connection=connection,
            )

        def reminders_to(to: str | None) -> list[dict[str, Any]]:
            return [mapping.reminder_entry(group, ids, reminder_text=request.message or None, delivery_method=method,
                                           email_address=to) for group, ids in groups.items()]

        numbers = ", ".join(i.label for i in request.invoices)
        try:
            try:
                self.client.send_reminders(reminders_to(address))
            except PlatformError as exc:
                # Unconfirmed whether `email_address` takes several addresses (Moneybird's own events show "a; b"):
                # refused for that, the reminder goes to the first one (a refusal sent nothing, so this is safe)
                first = mapping.first_email(address)
                if (exc.status not in (400, 422) or method != mapping.EMAIL or first == address
                        or not mapping.about_email_address(str(exc))):
                    raise
                address = first
                self.client.send_reminders(reminders_to(address))
        except PlatformError as exc:
            if exc.status in (400, 422):
                raise ReminderRefused(
                    f"Moneybird refused the reminder for {numbers}: {exc.message}",
                    connection=connection, status=exc.status,
                ) from None
            if not exc.retryable or not self._went_out_anyway(records, request.invoices):
                raise
        how = f"e-mail to {address}" if method == mapping.EMAIL else (
            f"post: Moneybird recorded it as Manual, {POSTED}" if request.delivery == "post"
            else "manual delivery")
        recipients = mapping.email_list(address) if method == mapping.EMAIL else ()
        return Receipt(sent_at=self.api.now(), recipients=recipients,
                       detail=f"Moneybird sent {len(groups)} reminder(s) ({how}) for {numbers}")

    def _add_note(self, invoice_id: str, note: str, *, todo: bool) -> Mapping[str, Any]:
        """The note, as a to-do where asked; a to-do Moneybird refuses (the reference documents notes with `todo`
        false only; an assignee or a to-do type may be required) is added as a plain note, so the key it carries
        (what a retried run looks for before sending again) is never lost with it."""
        try:
            return self.client.add_note(invoice_id, note, todo=todo)
        except PlatformError as exc:
            if not todo or exc.status not in (400, 422):
                raise
            log.warning("Moneybird refused the to-do for the letter to post on invoice id %s (%s); added as a note",
                        invoice_id, exc.status)
            return self.client.add_note(invoice_id, note, todo=False)

    def record_reminder(self, request: ReminderRequest, mailed: Receipt) -> Receipt:
        """Our note, carrying the key, on every invoice of the reminder (a letter to post: a to-do on the first)."""
        if mailed.detail.startswith("already sent"):
            return mailed
        numbers = ", ".join(i.label for i in request.invoices)
        note_text = f"Dunning Connector: reminder step {request.step}: {mailed.detail}."
        notes, failed = [], []
        for position, invoice in enumerate(request.invoices):
            # a letter to post becomes one to-do in Moneybird (on the first invoice), so it is not forgotten
            todo = (request.delivery == "post" or POSTED in mailed.detail) and position == 0
            note = f"{note_text} {mapping.note_key(request.idempotency_key)}"
            try:
                notes.append(self._add_note(invoice.platform_id, note, todo=todo))
            except DunningError:  # the reminder went out: report, never raise (a retry would send it twice)
                failed.append(invoice.label)
        detail = mailed.detail
        if failed:
            detail += f"; the note could not be added to {', '.join(failed)}"
        first = notes[0] if notes else None
        return Receipt(
            platform_reference=mapping.optional_id_of(first) if first else None,
            sent_at=_created(first) if first else mailed.sent_at,
            recipients=mailed.recipients,
            detail=detail if numbers in detail else f"{detail} ({numbers})",
        )

    def _reminder_group(self, record: Mapping[str, Any], defaults: dict[str, Any]) -> tuple[str, str, str, str]:
        """(contact, workflow, document style, identity) of one invoice, the four ids `send_reminders` requires.

        Taken from the invoice itself. Moneybird's OpenAPI says all three are always set; should one be null all the
        same (an assumption made safe, not documented), it is completed the way Moneybird fills in a new invoice:
        the contact's invoice workflow or the default invoice workflow, the default document style, and that
        style's identity or else the administration's default identity (`identities/default`, which needs the
        `settings` scope). Each listing is read at most once per reminder, and only when needed.
        """

        def listing(name: str, read: Callable[[], Any]) -> Any:
            if name not in defaults:
                defaults[name] = read()
            return defaults[name]

        contact_id, workflow_id, style_id, identity_id = mapping.reminder_group(record)
        if workflow_id is None:
            workflow_id = mapping.contact_workflow(record) or mapping.default_id(
                listing(mapping.WORKFLOWS, self.client.workflows), invoice_workflow=True)
        if style_id is None:
            style_id = mapping.default_id(listing(mapping.DOCUMENT_STYLES, self.client.document_styles))
        if identity_id is None and style_id is not None:
            styles = listing(mapping.DOCUMENT_STYLES, self.client.document_styles)
            identity_id = mapping.style_identity(styles, style_id)
        if identity_id is None:
            try:
                identity = listing(mapping.DEFAULT_IDENTITY, self.client.default_identity)
            except DunningError as exc:
                raise ValueError(
                    "Moneybird gives no identity for it and the default identity could not be read "
                    f"({exc.message}); set the identity on the invoice in Moneybird, "
                    "or set `settings_scope = true` in this connection's options and reconnect"
                ) from None
            identity_id = mapping.optional_id_of(identity) if isinstance(identity, Mapping) else None
        missing = [name for name, value in (("workflow", workflow_id), ("document style", style_id),
                                            ("identity", identity_id)) if value is None]
        if missing:
            raise ValueError(f"Moneybird gives no {' or '.join(missing)} for it and the administration has no "
                             "default one; set it on the invoice in Moneybird")
        assert workflow_id is not None and style_id is not None and identity_id is not None
        return contact_id, workflow_id, style_id, identity_id

    def _went_out_anyway(self, before: Mapping[str, Mapping[str, Any]], invoices: Sequence[Invoice]) -> bool:
        """After a timeout or outage on send: did Moneybird send it regardless? (Then we must not send again.)

        Every invoice's reminder count (or its reminder events) rose since the read just before sending: it went
        out. None rose: it did not, and the error stands. Some rose: that cannot be settled here, so the error
        stands and the outbox reconciliation shows it to a person.
        """
        after = {mapping.record_id_of(r): r for batch in self._fetch(
            self.client.invoices, [i.platform_id for i in invoices]) for r in batch}
        rose = [mapping.reminders_sent(after.get(i.platform_id, {})) > mapping.reminders_sent(before[i.platform_id])
                for i in invoices]
        return all(rose)

    def add_note(self, invoice: Invoice, text: str, *, idempotency_key: str) -> Receipt:
        note = self.client.add_note(invoice.platform_id, f"{text} {mapping.note_key(idempotency_key)}")
        return _note_receipt(note, detail=f"note added to invoice {invoice.label}")

    def find_note(self, invoice: Invoice, idempotency_key: str) -> Receipt | None:
        notes = mapping.notes_with_key(self.client.invoice(invoice.platform_id), idempotency_key)
        return _note_receipt(notes[0], detail=f"note found on invoice {invoice.label}") if notes else None

    def warnings(self) -> list[str]:
        try:
            workflows = self.client.workflows()
        except DunningError as exc:
            return [f"could not check Moneybird's workflows for automatic reminders: {exc.message}"]
        found = []
        for name, steps in mapping.automatic_reminder_workflows(workflows):
            found.append(
                f"Moneybird workflow '{name}' sends reminders automatically (steps {', '.join(map(str, steps))}); "
                "they can collide with Dunning Connector's reminders. Switch off automatic sending of its reminder "
                "steps in Moneybird: Instellingen → Workflows → edit the workflow"
            )
        unchecked = mapping.unchecked_workflows(workflows)
        if unchecked:
            found.append(f"could not check whether Moneybird workflow(s) {', '.join(unchecked)} send reminders "
                         "automatically (Moneybird did not list their steps); check them in Instellingen → Workflows")
        return found


def _why_not_remindable(invoice: Invoice, record: Mapping[str, Any] | None, contact_id: str) -> str | None:
    if record is None:
        return f"invoice {invoice.label} no longer exists in Moneybird"
    if mapping.is_paused(record):  # the user held its reminders there: ours would go out behind their back
        return (f"invoice {invoice.label} is paused in Moneybird (its reminders are held there); resume it in "
                f"Moneybird, or remind the debtor yourself")
    state = mapping.state_of(record)
    if state not in (*mapping.REMINDABLE_STATES, *mapping.NOT_YET_LATE_STATES):
        return f"invoice {invoice.label} is '{state}' in Moneybird; only late or reminded invoices are reminded"
    try:
        unpaid = mapping.unpaid_of(record)
    except ValueError as exc:
        return f"invoice {invoice.label}: {exc}"
    if unpaid <= 0:
        return f"invoice {invoice.label} has nothing left to pay in Moneybird"
    if mapping.contact_id_of(record) != contact_id:
        return f"invoice {invoice.label} belongs to another Moneybird contact than the reminder's debtor"
    return None


def _created(note: Mapping[str, Any] | None) -> datetime:
    try:
        moment = mapping.created_at(note) if note else None
    except ValueError:
        moment = None
    return moment or datetime.now(UTC)


def _note_receipt(note: Mapping[str, Any], *, detail: str) -> Receipt:
    return Receipt(platform_reference=mapping.optional_id_of(note), sent_at=_created(note), detail=detail)


__all__ = ["MoneybirdOptions", "MoneybirdProvider"]
