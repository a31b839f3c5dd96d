"""Moneybird JSON ↔ the canonical model: the one place Moneybird's field names appear (outside the simulator).

Shapes follow Moneybird's API v2 OpenAPI description (`sales_invoice_response`, `simple_contact_response`,
`workflow_response`, `note_response`; version v2-20261002) and `shared/reference/providers.md`:
ids are digit strings or integers, amounts decimal strings (a few may be JSON numbers), dates `YYYY-MM-DD`,
timestamps ISO 8601 UTC with milliseconds, and an unset string is `null` or `""`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from connector.models import Address, Debtor, DebtorKind, Invoice, Payment
from providers.base import Tenant
from providers.errors import BadPlatformData

OPEN_STATES = ("open", "pending_payment", "late", "reminded")
"""Sales invoice states that still expect money. `draft`/`scheduled` were never sent; `paid`/`uncollectible` are
done (the OpenAPI enum: draft, scheduled, open, pending_payment, reminded, late, paid, uncollectible)."""

OPEN_FILTER = "state:" + "|".join(OPEN_STATES)
"""Always sent: without a filter Moneybird defaults to `period:this_year` and silently misses older invoices."""

REMINDABLE_STATES = ("late", "reminded")
"""Which states Moneybird lets `send_reminders` cover is not documented; we only remind overdue ones."""

NOT_YET_LATE_STATES = ("open",)
"""Sent and not yet overdue: Moneybird's reminders cannot carry a step for it (a pre-due note), another channel can.
`pending_payment` is not among them: a payment is under way, nothing should be sent."""

SYNC_BATCH = 100
"""`POST …/synchronization` returns at most 100 records and silently drops extra ids."""

NOTE_KEY_PREFIX = "dunning-key:"

EMAIL = "Email"
MANUAL = "Manual"
DELIVERY = {"email": EMAIL, "manual": MANUAL, "post": MANUAL}
"""Our delivery → `send_reminders`' `delivery_method`, which accepts `Email` or `Manual` only: a letter by post is
recorded as Manual, to be printed."""

SCOPES = ("sales_invoices",)
SETTINGS_SCOPE = "settings"
"""Needed only to read `identities/default`."""

# --- the endpoints (below an administration) and their query parameters ------------------------------------------

ADMINISTRATIONS = "administrations.json"
INVOICES_SYNC = "sales_invoices/synchronization"
CONTACTS_SYNC = "contacts/synchronization"
SEND_REMINDERS = "sales_invoices/send_reminders"
WORKFLOWS = "workflows"
DOCUMENT_STYLES = "document_styles"
DEFAULT_IDENTITY = "identities/default"
VERSION = "version"
"""The synchronization listings' change marker for each id."""
WITH_ARCHIVED = {"include_archived": "true"}
"""Archived contacts too: their open invoices still need a debtor."""
NOTES = "/notes"
DOWNLOAD_PDF = "/download_pdf"


def invoice_path(invoice_id: str, tail: str = "") -> str:
    """`sales_invoices/{id}` and its sub-resources (`/notes`, `/download_pdf`)."""
    return f"sales_invoices/{invoice_id}{tail}"


def filtered(filter_: str) -> dict[str, str]:
    return {"filter": filter_}


# --- scalar readers -----------------------------------------------------------------------------------------------


def record_id(value: Any) -> str:
    """An id as Moneybird sends it (digit string or integer) → our digit string."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an id: {value!r}")
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"not an id: {value!r}")
    return text


def optional_id(value: Any) -> str | None:
    return None if value in (None, "") else record_id(value)


def text(value: Any) -> str | None:
    """Moneybird leaves unset strings `null` or `""`: both become None."""
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def money(value: Any, field: str) -> Decimal:
    """A decimal string like `"121.0"`; a JSON number is read through its shortest text form, never as binary."""
    if isinstance(value, bool) or value in (None, ""):
        raise ValueError(f"{field} is missing")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{field} is not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"{field} is not an amount: {value!r}")
    return amount


def day(value: Any, field: str) -> date:
    if not value:
        raise ValueError(f"{field} is missing")
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"{field} is not a date: {value!r}") from None


def timestamp(value: Any) -> datetime | None:
    """`2026-10-02T10:43:51.305Z` → an aware UTC datetime (a timestamp without zone is taken as UTC; the
    `2026-10-02 10:43:51 UTC` form of Moneybird's filter examples is read too)."""
    if not value:
        return None
    cleaned = str(value).strip()
    if cleaned.endswith(" UTC"):
        cleaned = cleaned.removesuffix(" UTC") + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"updated_at is not a timestamp: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _modified(value: Any) -> datetime | None:
    """`updated_at` is informative only (the `version` drives sync): an unreadable one never costs the invoice."""
    try:
        return timestamp(value)
    except ValueError:
        return None


def version(value: Any) -> str | None:
    """`version` is `updated_at` in epoch seconds (an integer; some implementations send a string)."""
    return None if value in (None, "") else str(value).strip()


def _emails(*values: Any) -> tuple[str, ...]:
    """Moneybird address fields may hold several addresses separated by `,` or `;`."""
    found: list[str] = []
    for value in values:
        for part in re.split(r"[,;\s]+", text(value) or ""):
            if part and part.lower() not in (seen.lower() for seen in found):
                found.append(part)
    return tuple(found)


def email_list(value: Any) -> tuple[str, ...]:
    """The separate addresses in one Moneybird address field (`"a@x.nl; b@x.nl"` → both)."""
    return _emails(value)


def first_email(value: Any) -> str | None:
    found = _emails(value)
    return found[0] if found else None


# --- records → canonical ------------------------------------------------------------------------------------------


def invoice_label(record: Mapping[str, Any]) -> str:
    """How a bookkeeper finds a raw record in Moneybird: its number, else its id."""
    if not isinstance(record, Mapping):
        return "a sales invoice record"
    number = text(record.get("invoice_id"))
    return f"invoice {number}" if number else f"sales invoice id {record.get('id', '?')}"


def payments_of(record: Mapping[str, Any]) -> tuple[Payment, ...]:
    """`payments[]` with the day each was paid (`payment_date`) and its amount in the invoice currency (`price`)."""
    found = record.get("payments") or []
    if not isinstance(found, list):
        raise ValueError("payments is not a list")
    return tuple(
        Payment(on=day(p.get("payment_date"), "payments.payment_date"), amount=money(p.get("price"), "payments.price"))
        for p in found
    )


def to_invoice(record: Mapping[str, Any], *, connection: str) -> Invoice:
    """A `sales_invoice_response` → `Invoice`. Raises `BadPlatformData` naming the invoice when it cannot be read."""
    try:
        state = text(record.get("state")) or ""
        total = money(record.get("total_price_incl_tax"), "total_price_incl_tax")
        unpaid = money(record.get("total_unpaid"), "total_unpaid")
        paid_text = record.get("total_paid")
        paid = money(paid_text, "total_paid") if paid_text not in (None, "") else total - unpaid
        currency = text(record.get("currency"))
        if currency is None:
            raise ValueError("currency is missing")
        return Invoice(
            connection=connection,
            platform_id=record_id(record.get("id")),
            number=text(record.get("invoice_id")),
            debtor_id=record_id(record.get("contact_id")),
            issue_date=day(record.get("invoice_date"), "invoice_date"),
            due_date=day(record.get("due_date"), "due_date"),
            currency=currency,
            total=total,
            amount_paid=paid,
            outstanding=unpaid,
            # a credit invoice carries negative totals and a negative total_unpaid
            is_credit_note=total < 0 or unpaid < 0,
            status=state,
            is_open=state in OPEN_STATES,
            payment_url=text(record.get("payment_url")) or text(record.get("url")),
            reference=text(record.get("reference")),
            payments=payments_of(record),
            last_modified=_modified(record.get("updated_at")),
            version=version(record.get("version")),
        )
    except (ValueError, ValidationError, AttributeError, TypeError) as exc:
        raise BadPlatformData(f"{invoice_label(record)}: {_reason(exc)}", connection=connection) from None


def debtor_name(contact: Mapping[str, Any]) -> str | None:
    company = text(contact.get("company_name"))
    if company:
        return company
    person = " ".join(filter(None, (text(contact.get("firstname")), text(contact.get("lastname")))))
    return person or text(contact.get("attention")) or text(contact.get("send_invoices_to_attention"))


def to_debtor(
    contact: Mapping[str, Any], *, connection: str, kinds: Mapping[str, DebtorKind] | None = None
) -> Debtor:
    """A contact (`simple_contact_response`, also embedded in every sales invoice) → `Debtor`.

    Business or consumer is a heuristic — a contact with a company name is a business — that the connection's
    `debtor_kinds` option overrides per contact id (a sole trader entered by first and last name, say).
    """
    label = f"contact id {contact.get('id', '?') if isinstance(contact, Mapping) else '?'}"
    try:
        contact_id = record_id(contact.get("id"))
        name = debtor_name(contact)
        if not name:
            raise ValueError("it has no company name, first name or last name")
        kind = (kinds or {}).get(contact_id) or (
            DebtorKind.BUSINESS if text(contact.get("company_name")) else DebtorKind.CONSUMER
        )
        people = contact.get("contact_people") or []
        first_person = people[0] if people and isinstance(people[0], Mapping) else {}
        person_name = " ".join(filter(None, (text(first_person.get("firstname")), text(first_person.get("lastname")))))
        return Debtor(
            connection=connection,
            platform_id=contact_id,
            name=name,
            kind=kind,
            # the invoice address first: it is where Moneybird sends this debtor's invoices and reminders
            emails=_emails(contact.get("send_invoices_to_email"), contact.get("email")),
            phone=text(contact.get("phone")),
            address=Address(
                lines=tuple(filter(None, (text(contact.get("address1")), text(contact.get("address2"))))),
                postal_code=text(contact.get("zipcode")),
                city=text(contact.get("city")),
                country=text(contact.get("country")),
                attention=text(contact.get("send_invoices_to_attention")) or text(contact.get("attention")),
            ),
            coc_number=text(contact.get("chamber_of_commerce")),
            vat_number=text(contact.get("tax_number")),
            contact_person=person_name or None,
            version=version(contact.get("version")),
        )
    except (ValueError, ValidationError, AttributeError, TypeError) as exc:
        raise BadPlatformData(f"{label}: {_reason(exc)}", connection=connection) from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
    return str(exc).removeprefix("Value error, ")


# --- what the adapter needs from a record beyond the canonical model --------------------------------------------


def reminder_group(record: Mapping[str, Any]) -> tuple[str, str | None, str | None, str | None]:
    """(contact, workflow, document style, identity) as the invoice carries them: Moneybird sends one reminder per
    such group. The OpenAPI marks the last three as always set; a null one is returned as None for the adapter to
    complete from the administration's defaults (see `default_id`) instead of refusing the reminder."""
    return (
        record_id(record.get("contact_id")),
        optional_id(record.get("workflow_id")),
        optional_id(record.get("document_style_id")),
        optional_id(record.get("identity_id")),
    )


def invoice_email(record: Mapping[str, Any]) -> str | None:
    """Where Moneybird sends this invoice's mail: its embedded contact's `send_invoices_to_email`, else `email`,
    exactly as Moneybird holds it."""
    contact = record.get("contact")
    if not isinstance(contact, Mapping):
        return None
    return text(contact.get("send_invoices_to_email")) or text(contact.get("email"))


def contact_delivery_method(record: Mapping[str, Any]) -> str | None:
    """How the invoice's embedded contact wants documents (`contact.delivery_method`: Email, Post, Manual,
    Simplerinvoicing, Peppol), if given."""
    contact = record.get("contact")
    return text(contact.get("delivery_method")) if isinstance(contact, Mapping) else None


def contact_workflow(record: Mapping[str, Any]) -> str | None:
    """The invoice workflow set on the invoice's embedded contact (`contact.invoice_workflow_id`), if any."""
    contact = record.get("contact")
    return optional_id(contact.get("invoice_workflow_id")) if isinstance(contact, Mapping) else None


def default_id(records: Iterable[Mapping[str, Any]], *, invoice_workflow: bool = False) -> str | None:
    """The id of the record marked `default: true` in a workflows or document styles listing (for workflows: the
    active default `InvoiceWorkflow`)."""
    for record in records:
        if not isinstance(record, Mapping) or record.get("default") is not True:
            continue
        if invoice_workflow and (record.get("type") != "InvoiceWorkflow" or record.get("active") is False):
            continue
        return optional_id(record.get("id"))
    return None


def style_identity(styles: Iterable[Mapping[str, Any]], style_id: str) -> str | None:
    """The identity a document style belongs to (`document_style_response.identity_id`)."""
    for style in styles:
        if isinstance(style, Mapping) and str(style.get("id")) == style_id:
            return optional_id(style.get("identity_id"))
    return None


def reminders_sent(record: Mapping[str, Any]) -> int:
    """How many reminders Moneybird sent for this invoice: `reminder_count`, else its `…send_reminder…` events."""
    count = record.get("reminder_count")
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    return sum(1 for event in record.get("events") or []
               if isinstance(event, Mapping) and str(event.get("action", "")).startswith("sales_invoice_send_reminder"))


def versions(listing: Sequence[Mapping[str, Any]]) -> dict[str, str | None]:
    """The synchronization GET answer `[{"id", "version"}]` → id → version."""
    return {record_id(item["id"]): version(item.get("version")) for item in listing}


def note_key(idempotency_key: str) -> str:
    return f"{NOTE_KEY_PREFIX}{idempotency_key}"


def notes_with_key(record: Mapping[str, Any], idempotency_key: str) -> list[Mapping[str, Any]]:
    """The invoice's notes that carry this idempotency key (our notes end with `dunning-key:<key>`)."""
    marker = note_key(idempotency_key)
    return [
        note
        for note in record.get("notes") or []
        if isinstance(note, Mapping) and marker in (text(note.get("note")) or "").split()
    ]


def automatic_reminder_workflows(workflows: Iterable[Mapping[str, Any]]) -> list[tuple[str, list[int]]]:
    """Active invoice workflows with steps that Moneybird sends by itself (`steps[].reminder_auto_send`).

    The `steps` array appears in the OpenAPI description of 2026-10-02 (not in 2025-01-07): a workflow without it
    cannot be checked, which the caller reports instead of assuming it is safe.
    """
    found = []
    for workflow in workflows:
        if workflow.get("type") not in (None, "InvoiceWorkflow") or workflow.get("active") is False:
            continue
        steps = workflow.get("steps")
        if steps is None:
            continue
        auto = sorted(
            int(step.get("step_order") or 0)
            for step in steps
            if isinstance(step, Mapping) and step.get("reminder_auto_send")
        )
        if auto:
            found.append((text(workflow.get("name")) or f"id {workflow.get('id')}", auto))
    return found


def unchecked_workflows(workflows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Active invoice workflows listed without their `steps`: whether they remind by themselves cannot be told."""
    return [str(w.get("name") or w.get("id")) for w in workflows
            if w.get("type") in (None, "InvoiceWorkflow") and w.get("active") is not False and w.get("steps") is None]


# --- canonical → request bodies -----------------------------------------------------------------------------------


def sync_request(ids: Sequence[str]) -> dict[str, Any]:
    return {"ids": list(ids)}


def reminder_entry(
    group: tuple[str, str, str, str],
    invoice_ids: Sequence[str],
    *,
    reminder_text: str | None,
    delivery_method: str,
    email_address: str | None,
) -> dict[str, Any]:
    """One element of `sales_invoice_reminders` (`delivery_method` is `Email` or `Manual` per the OpenAPI enum).

    Without our text (`None`), Moneybird uses its workflow's text for the next reminder step."""
    contact_id, workflow_id, document_style_id, identity_id = group
    entry: dict[str, Any] = {
        "contact_id": contact_id,
        "workflow_id": workflow_id,
        "document_style_id": document_style_id,
        "identity_id": identity_id,
        "sales_invoice_ids": list(invoice_ids),
        "delivery_method": delivery_method,
    }
    if reminder_text:
        entry["reminder_text"] = reminder_text
    if delivery_method == "Email" and email_address:
        entry["email_address"] = email_address
    return entry


def send_reminders_request(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"sales_invoice_reminders": list(entries)}


def note_request(note: str, *, todo: bool = False) -> dict[str, Any]:
    """A note, or with `todo` a to-do on Moneybird's task list (the OpenAPI `note` object: note, todo)."""
    return {"note": {"note": note, "todo": todo}}


# --- what the sync asks of a raw record ---------------------------------------------------------------------------


def tenant(administration: Mapping[str, Any]) -> Tenant:
    """An `administration_response` → the administration a connection names in `tenant`."""
    detail = ", ".join(filter(None, (administration.get("country"), administration.get("currency"),
                                     "suspended" if administration.get("suspended") else None)))
    return Tenant(id=record_id(administration["id"]), name=str(administration.get("name") or administration["id"]),
                  detail=detail or None)


def id_of(record: Mapping[str, Any]) -> str:
    """A record's `id` as text (`""` when it has none)."""
    return str(record.get("id")) if isinstance(record, Mapping) and record.get("id") is not None else ""


def embedded_contact(record: Mapping[str, Any], contact_id: str) -> Mapping[str, Any] | None:
    """The `contact` a sales invoice carries, when it is the invoice's own contact."""
    embedded = record.get("contact")
    return embedded if isinstance(embedded, Mapping) and id_of(embedded) == contact_id else None


def record_id_of(record: Mapping[str, Any]) -> str:
    """A record's `id` as our digit string (raises ValueError when it has none)."""
    return record_id(record.get("id"))


def optional_id_of(record: Mapping[str, Any]) -> str | None:
    return optional_id(record.get("id"))


def is_paused(record: Mapping[str, Any]) -> bool:
    """Whether the user paused the invoice's reminders in Moneybird (`paused`; `next_reminder` then reads 2099-01-01)."""
    return record.get("paused") in (True, "true")


def state_of(record: Mapping[str, Any]) -> str | None:
    return text(record.get("state"))


def unpaid_of(record: Mapping[str, Any]) -> Decimal:
    """`total_unpaid` (raises ValueError, naming the field, when it is not an amount)."""
    return money(record.get("total_unpaid"), "total_unpaid")


def contact_id_of(record: Mapping[str, Any]) -> str:
    return str(record.get("contact_id"))


def created_at(note: Mapping[str, Any]) -> datetime | None:
    """A note's `created_at` (raises ValueError when unreadable)."""
    return timestamp(note.get("created_at"))


def missing_scope(error: str) -> str | None:
    """The scope named by Moneybird's `No access to [:scope]` refusal, if that is what `error` says."""
    if error.startswith("No access to [:") and "]" in error:
        return error.removeprefix("No access to [:").split("]")[0]
    return None


def error_of(body: Any) -> Any:
    """The `error` of an error body (`{"error": "…", "symbolic": …}` or `{"error": {field: [msg]}}`)."""
    return body.get("error") if isinstance(body, Mapping) else body


def says_record_not_found(body: Any) -> bool:
    """Whether an error body is Moneybird's own `{"error": "record not found", "symbolic": {"id": "not_found"}}`
    (a 404 without it may come from a proxy or a wrong path, and proves nothing)."""
    if not isinstance(body, Mapping):
        return False
    symbolic = body.get("symbolic")
    return body.get("error") == "record not found" or (isinstance(symbolic, Mapping)
                                                       and symbolic.get("id") == "not_found")


def about_email_address(error: str) -> bool:
    """Whether a refusal of `send_reminders` concerns the e-mail address (Moneybird names the field `email`)."""
    return "email" in error
