"""Xero JSON ↔ the canonical models: the one place Xero's field names appear (the simulator renders with it too).

Xero's quirks handled here:
- dates come as Microsoft JSON dates, `/Date(1518685950940+0000)/` (milliseconds since the epoch, UTC, with the
  organisation's offset as information), often with an ISO `…String` sibling (`DateString`, `DueDateString`,
  `UpdatedDateUTCString`). A calendar date is read from the sibling when present. Otherwise it is the instant shifted
  by the offset (the .NET convention the format comes from), rounded to the nearest midnight: invoice dates are
  midnight UTC, but Xero also writes some dates as the organisation's local midnight in UTC (its docs show
  `PeriodLockDate` 31 December as `/Date(1419937200000+0000)/`, 30 December 11:00 UTC), which for a Dutch or
  Belgian organisation is 22:00 or 23:00 UTC the day before. A timestamp is the instant itself.
- amounts are JSON numbers: the client parses them as `Decimal` (never through float); a float that slipped
  through is converted via its shortest repr, which is exact for amounts with two decimals.
- a Contact carries no business/consumer flag: see `debtor_kind`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import pycountry
from pydantic import ValidationError

from connector.models import Address, Debtor, DebtorKind, Invoice, Payment
from providers.base import Tenant
from providers.dates import parse_ms_date
from providers.errors import BadPlatformData

SALES_INVOICE = "ACCREC"
SALES_CREDIT_NOTE = "ACCRECCREDIT"
OPEN_STATUSES = ("AUTHORISED",)
"""Statuses of a collectable sales invoice; SUBMITTED (awaiting approval) joins when the connection says so."""
AWAITING_APPROVAL = "SUBMITTED"
UPDATED = "UpdatedDateUTC"
"""Every listing's change cursor: what `If-Modified-Since` compares with, and the order pages are read in."""

SCOPES = ("offline_access", "accounting.invoices", "accounting.contacts.read", "accounting.settings.read")
"""Granular scopes, required for apps created on or after 2 March 2026. Older apps may configure
`offline_access accounting.transactions accounting.contacts.read accounting.settings.read` until September 2027."""


def open_statuses(*, include_submitted: bool) -> tuple[str, ...]:
    return (*OPEN_STATUSES, AWAITING_APPROVAL) if include_submitted else OPEN_STATUSES


HISTORY_DETAILS_MAX = 250
"""Xero keeps at most 250 characters of a history record's Details."""



# --- dates --------------------------------------------------------------------------------------------------------


def _iso(value: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} is {value!r}, not a date") from None


def read_date(record: Mapping[str, Any], name: str) -> date | None:
    """A calendar date field, preferring its `…String` sibling (`DueDateString: 2018-10-20T00:00:00`)."""
    sibling = record.get(f"{name}String")
    if isinstance(sibling, str) and sibling.strip():
        return _iso(sibling, f"{name}String").date()
    value = record.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} is {value!r}, not a date")
    if value.startswith("/Date("):
        instant, offset = parse_ms_date(value)
        return (instant + offset + timedelta(hours=12)).date()  # the nearest midnight
    return _iso(value, name).date()


def read_timestamp(record: Mapping[str, Any], name: str) -> datetime | None:
    """A UTC timestamp field (`UpdatedDateUTC`), to the millisecond when Xero gives them."""
    value = record.get(name)
    if isinstance(value, str) and value.startswith("/Date("):
        return parse_ms_date(value)[0]
    text = value if isinstance(value, str) and value.strip() else record.get(f"{name}String")
    if not isinstance(text, str) or not text.strip():
        return None
    moment = _iso(text, name)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def ms_date(moment: datetime, offset: str = "+0000") -> str:
    """Render a timestamp the way Xero writes it."""
    return f"/Date({int(moment.timestamp() * 1000)}{offset})/"


def ms_date_of_day(day: date) -> str:
    """Render a calendar date as Xero does: midnight UTC of that day."""
    return ms_date(datetime(day.year, day.month, day.day, tzinfo=UTC))


def day_string(day: date) -> str:
    return f"{day.isoformat()}T00:00:00"


def utc_string(moment: datetime) -> str:
    """`UpdatedDateUTCString`: to the second, with Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def if_modified_since(moment: datetime, *, zoned: bool = True) -> str:
    """The `If-Modified-Since` value for "changed at or after `moment`": UTC, to the second, one second early.

    Xero compares to the second with the boundary included (providers.md); the second of margin keeps a record
    changed in the same second as `moment` even where the comparison is exclusive or drops the milliseconds
    (unconfirmed either way). Records that come back again are recognised by their version and cost nothing.
    Written with an explicit `Z`: RFC 3339, as the spec's `format: date-time` asks (the official SDKs send
    ISO 8601 with a zone too); `zoned=False` gives the zone-less form providers.md shows, for a server that
    refuses the other.
    """
    early = moment.astimezone(UTC).replace(microsecond=0) - timedelta(seconds=1)
    return early.strftime("%Y-%m-%dT%H:%M:%SZ" if zoned else "%Y-%m-%dT%H:%M:%S")


def version_of(moment: datetime | None) -> str | None:
    """A record's change marker: its UpdatedDateUTC to the millisecond."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds") if moment else None


# --- money --------------------------------------------------------------------------------------------------------


def read_money(record: Mapping[str, Any], name: str, *, default: Decimal | None = None) -> Decimal:
    value = record.get(name)
    if value is None:
        if default is not None:
            return default
        raise ValueError(f"{name} is missing")
    if isinstance(value, bool):
        raise ValueError(f"{name} is {value!r}, not an amount")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name} is {value!r}, not an amount") from None
    if not amount.is_finite():
        raise ValueError(f"{name} is {value!r}, not an amount")
    return amount


# --- invoices -----------------------------------------------------------------------------------------------------


def invoice_label(record: Mapping[str, Any]) -> str:
    number = record.get("InvoiceNumber")
    return f"invoice {number}" if number else f"invoice id {record.get('InvoiceID', '?')}"


def contact_id_of(record: Mapping[str, Any]) -> str | None:
    contact = record.get("Contact")
    return contact.get("ContactID") if isinstance(contact, Mapping) else None


def payments_of(record: Mapping[str, Any]) -> tuple[Payment, ...]:
    """`Payments[]` with the day each was paid (`Date`) and its `Amount` in the invoice currency. Applied credit
    notes, overpayments and prepayments carry no payment date on the invoice: they stay in `amount_paid` only."""
    found = record.get("Payments") or []
    if not isinstance(found, list):
        raise ValueError("Payments is not a list")
    payments = []
    for payment in found:
        paid_on = read_date(payment, "Date")
        if paid_on is None:
            raise ValueError("a payment has no Date")
        payments.append(Payment(on=paid_on, amount=read_money(payment, "Amount")))
    return tuple(payments)


def invoice_from_xero(
    record: Mapping[str, Any], *, connection: str, open_statuses: Sequence[str] = OPEN_STATUSES
) -> Invoice:
    """One element of `Invoices[]` → `Invoice`; `BadPlatformData` naming the invoice when it cannot be read.

    `outstanding` is Xero's `AmountDue`; `amount_paid` is everything that reduced it: payments (`AmountPaid`) and
    applied credit notes, overpayments and prepayments (`AmountCredited`), so total − paid = outstanding.
    """
    label = invoice_label(record)
    try:
        invoice_id = record["InvoiceID"]
        kind = record.get("Type")
        if kind not in (SALES_INVOICE, SALES_CREDIT_NOTE):
            raise ValueError(f"Type is {kind!r}, not a sales invoice")
        debtor_id = contact_id_of(record)
        if not debtor_id:
            raise ValueError("it has no Contact.ContactID")
        status = record.get("Status")
        if not isinstance(status, str) or not status:
            raise ValueError("Status is missing")
        issued = read_date(record, "Date")
        due = read_date(record, "DueDate")
        if issued is None:
            raise ValueError("Date is missing")
        if due is None and status in open_statuses:
            raise ValueError("DueDate is missing")
        updated = read_timestamp(record, "UpdatedDateUTC")
        outstanding = read_money(record, "AmountDue")
        paid = read_money(record, "AmountPaid", default=Decimal(0)) + read_money(
            record, "AmountCredited", default=Decimal(0)
        )
        return Invoice(
            connection=connection,
            platform_id=invoice_id,
            number=record.get("InvoiceNumber") or None,
            debtor_id=debtor_id,
            issue_date=issued,
            due_date=due or issued,  # only a record that is not open may lack one (a draft)
            currency=record.get("CurrencyCode") or "",
            total=read_money(record, "Total"),
            amount_paid=paid,
            outstanding=outstanding,
            is_credit_note=kind == SALES_CREDIT_NOTE,
            status=status,
            is_open=kind == SALES_INVOICE and status in open_statuses and outstanding > 0,
            reference=record.get("Reference") or None,
            promised_payment_date=read_date(record, "ExpectedPaymentDate"),
            payments=payments_of(record),
            last_modified=updated,
            version=version_of(updated),
        )
    except (KeyError, ValueError, TypeError, ValidationError) as exc:
        reason = f"{exc.args[0]} is missing" if isinstance(exc, KeyError) else str(exc)
        raise BadPlatformData(f"{label}: {reason.removeprefix(f'{label}: ')}", connection=connection) from None


# --- contacts -----------------------------------------------------------------------------------------------------

_LEGAL_FORMS = re.compile(
    r"(?i)(?:^|[\s,.(])(b\.?\s?v\.?|n\.?\s?v\.?|v\.?\s?o\.?\s?f\.?|c\.?\s?v\.?|bvba|bv\s?ba|srl|sprl|sa|nv|"
    r"commv|cvba|vzw|asbl|stichting|vereniging|coöperatie|cooperatie|holding|ltd\.?|limited|llc|inc\.?|gmbh|ag|"
    r"plc|sarl|s\.?a\.?s\.?)(?:$|[\s,.)])"
)


def debtor_kind(record: Mapping[str, Any], overrides: Mapping[str, DebtorKind] | None = None) -> DebtorKind:
    """Business or consumer: Xero has no such flag, so we decide on evidence, safe side first.

    A per-contact override from the connection's options wins. Otherwise a contact is a business when it carries a
    company registration number (`CompanyNumber`, the KvK/KBO number) or a VAT number (`TaxNumber`), or when its
    name ends in a legal form (B.V., N.V., VOF, BVBA, Ltd, GmbH, Stichting…). Everyone else is treated as a
    consumer: wrongly treating a consumer as a business would charge costs and interest a consumer does not owe,
    while the reverse only makes the schedule gentler.
    """
    if overrides and record.get("ContactID") in overrides:
        return DebtorKind(overrides[record["ContactID"]])
    if (record.get("CompanyNumber") or "").strip() or (record.get("TaxNumber") or "").strip():
        return DebtorKind.BUSINESS
    if _LEGAL_FORMS.search(record.get("Name") or ""):
        return DebtorKind.BUSINESS
    return DebtorKind.CONSUMER


def _emails(record: Mapping[str, Any]) -> tuple[str, ...]:
    """Who Xero mails an invoice to: the contact's address and the contact persons ticked `IncludeInEmails`."""
    found = [record.get("EmailAddress")]
    found += [p.get("EmailAddress") for p in record.get("ContactPersons") or () if p.get("IncludeInEmails")]
    unique: dict[str, None] = {}
    for email in found:
        if isinstance(email, str) and email.strip():
            unique.setdefault(email.strip(), None)
    return tuple(unique)


_PHONE_PREFERENCE = ("DEFAULT", "MOBILE", "DDI", "OFFICE")


def _phone(record: Mapping[str, Any]) -> str | None:
    phones = {p.get("PhoneType"): p for p in record.get("Phones") or () if (p.get("PhoneNumber") or "").strip()}
    for kind in _PHONE_PREFERENCE:
        phone = phones.get(kind)
        if phone:
            country = (phone.get("PhoneCountryCode") or "").strip().lstrip("+")
            parts = [f"+{country}" if country else "", (phone.get("PhoneAreaCode") or "").strip(),
                     phone["PhoneNumber"].strip()]
            return " ".join(p for p in parts if p)
    return None


_COUNTRY_NAMES = {
    "nederland": "NL", "holland": "NL", "the netherlands": "NL", "belgië": "BE", "belgie": "BE", "belgique": "BE",
    "duitsland": "DE", "frankrijk": "FR", "luxemburg": "LU", "verenigd koninkrijk": "GB", "uk": "GB",
}


def country_code(text: str | None) -> str | None:
    """Xero's free-text Country ("Netherlands", "NL", "Nederland") → ISO alpha-2, None when unrecognisable."""
    if not text or not text.strip():
        return None
    name = text.strip()
    if name.lower() in _COUNTRY_NAMES:
        return _COUNTRY_NAMES[name.lower()]
    try:
        return pycountry.countries.lookup(name).alpha_2
    except LookupError:
        return None


def _address(record: Mapping[str, Any]) -> Address:
    """The postal address (POBOX, the one Xero prints on invoices) when filled in, else the street address."""
    addresses = {a.get("AddressType"): a for a in record.get("Addresses") or ()}
    for kind in ("POBOX", "STREET"):
        address = addresses.get(kind)
        lines = [address.get(f"AddressLine{n}") for n in range(1, 5)] if address else []
        lines = [line.strip() for line in lines if isinstance(line, str) and line.strip()]
        if address and (lines or (address.get("City") or "").strip()):
            country_text = (address.get("Country") or "").strip()
            country = country_code(country_text)
            if country_text and country is None:
                lines.append(country_text)  # keep what we cannot code rather than lose it
            return Address(
                lines=tuple(lines),
                postal_code=address.get("PostalCode") or None,
                city=address.get("City") or None,
                region=address.get("Region") or None,
                country=country,
                attention=address.get("AttentionTo") or None,
            )
    return Address()


def debtor_from_xero(
    record: Mapping[str, Any], *, connection: str, kinds: Mapping[str, DebtorKind] | None = None
) -> Debtor:
    """One element of `Contacts[]` → `Debtor`; `BadPlatformData` naming the contact when it cannot be read."""
    label = f"contact {record.get('Name') or record.get('ContactID', '?')}"
    try:
        person = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p and p.strip())
        updated = read_timestamp(record, "UpdatedDateUTC")
        return Debtor(
            connection=connection,
            platform_id=record["ContactID"],
            name=record.get("Name") or person,
            kind=debtor_kind(record, kinds),
            emails=_emails(record),
            phone=_phone(record),
            address=_address(record),
            coc_number=record.get("CompanyNumber") or None,
            vat_number=record.get("TaxNumber") or None,
            contact_person=person or None,
            version=version_of(updated),
        )
    except (KeyError, ValueError, TypeError, AttributeError, ValidationError) as exc:
        reason = f"{exc.args[0]} is missing" if isinstance(exc, KeyError) else " ".join(str(exc).split())
        raise BadPlatformData(f"{label}: {reason}", connection=connection) from None


# --- history notes and error bodies -------------------------------------------------------------------------------


def note_details(text: str, idempotency_key: str) -> str:
    """`<text> [<key>]`, shortened to Xero's 250 characters by trimming the text, never the key."""
    suffix = f" [{idempotency_key}]"
    room = HISTORY_DETAILS_MAX - len(suffix)
    body = text if len(text) <= room else text[: max(0, room - 1)].rstrip() + "…"
    return f"{body}{suffix}"


def reminder_details(step: str, idempotency_key: str) -> str:
    return note_details(f"Dunning Connector: {step}", idempotency_key)


def carries_key(details: str | None, idempotency_key: str) -> bool:
    return bool(details) and f"[{idempotency_key}]" in details


def error_messages(body: Any) -> list[str]:
    """The human messages of a Xero error body: `Elements[].ValidationErrors[].Message`, else `Message`/`Detail`."""
    if not isinstance(body, Mapping):
        return []
    messages = [
        error.get("Message")
        for element in body.get("Elements") or ()
        if isinstance(element, Mapping)
        for error in element.get("ValidationErrors") or ()
        if isinstance(error, Mapping) and error.get("Message")
    ]
    if not messages:
        messages = [body.get("Message") or body.get("Detail") or body.get("Title")]
    return [str(m) for m in dict.fromkeys(messages) if m]


def problem_detail(body: Any) -> str:
    """A 401/403's `Detail` (or `detail`, RFC 7807's spelling, should a gateway answer in it), or ''."""
    return str(body.get("Detail") or body.get("detail") or "").strip() if isinstance(body, Mapping) else ""


# --- answers' envelopes -------------------------------------------------------------------------------------------


def page_count(body: Mapping[str, Any]) -> int | None:
    """`pagination.pageCount`, where Xero gives it."""
    pagination = body.get("pagination")
    value = pagination.get("pageCount") if isinstance(pagination, Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def server_clock(body: Mapping[str, Any]) -> datetime | None:
    """`DateTimeUTC` (`/Date(ms)/`, or ISO): Xero's clock when it answered, or None."""
    try:
        return read_timestamp(body, "DateTimeUTC")
    except ValueError:
        return None


# --- what the sync asks of a raw record before mapping it ---------------------------------------------------------


def invoice_id_of(record: Mapping[str, Any]) -> str | None:
    found = record.get("InvoiceID")
    return found if isinstance(found, str) and found else None


def contact_id(record: Mapping[str, Any]) -> str | None:
    found = record.get("ContactID")
    return found if isinstance(found, str) and found else None


def updated_of(record: Mapping[str, Any]) -> datetime | None:
    """`UpdatedDateUTC`, or None when it is missing or unreadable (the record's own mapping then says why)."""
    try:
        return read_timestamp(record, UPDATED)
    except ValueError:
        return None


def is_other_document(record: Mapping[str, Any], open_statuses: Sequence[str]) -> bool:
    """Another document type (a server that ignored `where`), or a sales invoice in a status we do not collect
    (a draft, a paid invoice changed): when it was never stored open, there is nothing to store."""
    kind, status = record.get("Type"), record.get("Status")
    if isinstance(kind, str) and kind and kind != SALES_INVOICE:
        return True
    return isinstance(status, str) and bool(status) and status not in open_statuses


PRACTICE = "PRACTICE"


def tenants(connections: Sequence[Mapping[str, Any]]) -> list[Tenant]:
    """`GET /connections` → the organisations the token reaches. A `PRACTICE` tenant (providers.md: tenantType
    ORGANISATION|PRACTICE) is an accounting practice for Xero's practice APIs, not a set of books the accounting API
    holds sales invoices for: it is not offered (a missing type is taken as an organisation)."""
    return [Tenant(id=c["tenantId"], name=c.get("tenantName") or c["tenantId"], detail=c.get("tenantType"))
            for c in connections if c.get("tenantId") and c.get("tenantType") != PRACTICE]


# --- the endpoints: paths, query parameters, the answers' collection keys and request bodies ---------------------

ACCOUNTING = "/api.xro/2.0"
CONNECTIONS = "/connections"
INVOICES = "/Invoices"
CONTACTS = "/Contacts"
REMINDER_SETTINGS = "/InvoiceReminders/Settings"
INVOICES_KEY = "Invoices"
CONTACTS_KEY = "Contacts"
ONLINE_INVOICES_KEY = "OnlineInvoices"
HISTORY_KEY = "HistoryRecords"
REMINDERS_KEY = "InvoiceReminders"
PAGE = "page"
PAGE_SIZE_PARAM = "pageSize"
WITH_ARCHIVED = {"includeArchived": "true"}
"""Contacts are asked for archived ones too: an archived contact can still owe an open invoice."""
QUERY_PARSE_ERROR = '"QueryParseException"'
"""The error type of a 400 for a `where` or `order` Xero could not read (our bug, not the bookkeeper's)."""
MISSING_SCOPE = "AuthorizationUnsuccessful"
"""The 401 detail for a scope the token lacks: refreshing cannot help."""
ONLINE_INVOICE = "/OnlineInvoice"
EMAIL = "/Email"
HISTORY = "/History"


def invoice_path(invoice_id: str, tail: str = "") -> str:
    """`/Invoices/{id}` and its sub-resources (`/Email`, `/History`, `/OnlineInvoice`)."""
    return f"{INVOICES}/{invoice_id}{tail}"


def sales_invoice_params(statuses: Sequence[str] | None) -> dict[str, Any]:
    """Sales invoices only, oldest change first (so a cut-off listing resumes where it stopped)."""
    params: dict[str, Any] = {"where": f'Type=="{SALES_INVOICE}"', "order": f"{UPDATED} ASC"}
    if statuses:
        params["Statuses"] = ",".join(statuses)
    return params


def ids_query(ids: Sequence[str], extra: Mapping[str, str] | None = None) -> str:
    """`IDs=a,b,c[&…]`, the commas written as Xero's own examples write them.

    Not through httpx's `params`, which percent-encodes every comma: three characters each made a full batch of
    50 GUIDs 2,014 characters of URL. providers.md says only "at most ~50 GUIDs per call (longer URLs answer 404)";
    the length Xero refuses is not documented (the simulator assumes 2,048), so the URL is kept as short as Xero's
    examples write it: under 1,950 characters."""
    pairs = {"IDs": ",".join(ids), **(extra or {})}
    return "&".join(f"{quote(key)}={quote(value, safe=',')}" for key, value in pairs.items())


def history_body(details: str) -> dict[str, Any]:
    return {HISTORY_KEY: [{"Details": details}]}


def history_details(record: Mapping[str, Any]) -> Any:
    return record.get("Details")


def history_created(record: Mapping[str, Any]) -> datetime | None:
    return read_timestamp(record, "DateUTC")


def online_invoice_url(records: Sequence[Mapping[str, Any]]) -> str | None:
    """`OnlineInvoices[0].OnlineInvoiceUrl`, or None (a draft has none)."""
    url = records[0].get("OnlineInvoiceUrl") if records else None
    return url if isinstance(url, str) and url else None


def reminders_enabled(records: Sequence[Mapping[str, Any]]) -> bool | None:
    """`InvoiceReminders[0].Enabled`, or None when Xero does not say."""
    enabled = records[0].get("Enabled") if records else None
    return enabled if isinstance(enabled, bool) else None
