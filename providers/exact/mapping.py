"""Exact Online JSON ↔ the canonical models: the one place Exact's entity and field names appear.

Where open receivables come from, and why (decided here because it decides every amount):
`cashflow/Receivables` (its `bulk/` and `sync/Cashflow/PaymentTerms` twins) rather than
`read/financial/ReceivablesList`:
- ReceivablesList amounts are in the *division* currency (a GBP invoice shows its EUR value); dunning, statutory
  interest and the debtor's own statement need the *invoice* currency, which the payment terms carry (`AmountFC`,
  `TransactionAmountFC`, `Currency`).
- ReceivablesList has no sync twin and pages by 60: an unchanged daily sync of 20,000 open items would cost 334
  calls; the payment terms change feed costs one call when nothing changed.
- It carries no invoice total, so "how much was paid" cannot be told apart from "how much was invoiced".

One invoice is the group of payment-term rows with the same `TransactionEntryID` (= the sales entry, which is the
SalesInvoice `InvoiceID` and the Document's `FinancialTransactionEntryID`). A partly paid invoice has a matched
part (Status 50) and an open rest; instalments are several terms: the outstanding amount is the sum of the open
(non-50) terms. Signs: Exact was observed to give a receivable's open `AmountFC` as negative; nothing here depends
on the sign convention — amounts are taken as magnitudes and direction comes from `TransactionType`.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import pycountry
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from connector.models import Address, Debtor, DebtorKind, Invoice
from providers.base import Tenant
from providers.exact import odata

# --- the queries: every entity set, $select and $filter field the adapter uses ------------------------------------


@dataclass(frozen=True)
class Query:
    """One entity set as the adapter reads it. `entity` names its field list in exact-online-entities.json."""

    path: str
    entity: str
    select: tuple[str, ...]
    filter_fields: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The one field this query selects rows by (a GUID field, or `Timestamp` for a change feed)."""
        (field,) = self.filter_fields
        return field

    def params(self, filter: str | None = None, *, top: int | None = None) -> dict[str, str]:
        params = {"$select": ",".join(self.select)}
        if filter:
            params["$filter"] = filter
        if top is not None:
            params["$top"] = str(top)
        return params


FEED_CURSOR = "Timestamp"
"""The change feeds' position (an Int64 that only grows), the one field a `sync/` endpoint filters on."""
INVOICE_NUMBER = "InvoiceNumber"
SYNC_ONLY_FIELDS = (FEED_CURSOR, "LineType")
"""Fields of `sync/Cashflow/PaymentTerms` beyond cashflow/Receivables' (documented in providers.md; the entity
list has no separate SyncPaymentTerm entry)."""

_RECEIVABLE = (
    "ID", "Account", "AmountFC", "Currency", "DueDate", "InvoiceDate", "InvoiceNumber", "YourRef", "Status",
    "TransactionAmountFC", "TransactionEntryID", "TransactionType",
)
_ACCOUNT = (
    "ID", "Code", "Name", "Email", "Phone", "AddressLine1", "AddressLine2", "AddressLine3", "Postcode", "City",
    "Country", "ChamberOfCommerce", "VATNumber", "Language", "MainContact",
)

ME = Query("current/Me", "Me", ("CurrentDivision", "FullName"))
SYSTEM_DIVISIONS = Query("system/Divisions", "SystemDivision", ("Code", "Description", "Current", "Country", "Currency"))
HRM_DIVISIONS = Query("hrm/Divisions", "Division", ("Code", "Description", "Main", "Country", "Currency"))
PAYMENT_TERM_CHANGES = Query("sync/Cashflow/PaymentTerms", "Receivable", _RECEIVABLE + SYNC_ONLY_FIELDS, ("Timestamp",))
OPEN_RECEIVABLES = Query("bulk/Cashflow/Receivables", "Receivable", _RECEIVABLE, ("Status", "InvoiceNumber"))
ACCOUNT_CHANGES = Query("sync/CRM/Accounts", "SyncAccount", _ACCOUNT + ("Timestamp",), ("Timestamp",))
ACCOUNTS_BY_ID = Query("crm/Accounts", "Account", _ACCOUNT, ("ID",))
CONTACTS_OF_ACCOUNTS = Query(
    "crm/Contacts", "Contact", ("ID", "Account", "FullName", "Email", "BusinessEmail", "IsMainContact"), ("Account",)
)
SALES_INVOICE = Query("salesinvoice/SalesInvoices", "SalesInvoice", ("InvoiceID", "InvoiceNumber", "Status"), ("InvoiceID",))
NOTES_OF_ACCOUNT = Query(
    "activities/CommunicationNotes", "CommunicationNote", ("ID", "Account", "Subject", "Notes", "Date", "Created"), ("Account",)
)
DOCUMENTS_OF_INVOICE = Query(
    "documents/Documents", "Document", ("ID", "Subject", "FinancialTransactionEntryID"), ("FinancialTransactionEntryID",)
)
ATTACHMENTS_OF_DOCUMENT = Query(
    "documents/DocumentAttachments", "DocumentAttachment", ("ID", "Document", "FileName", "Url"), ("Document",)
)
PRINTED_SALES_INVOICES = "salesinvoice/PrintedSalesInvoices"
COMMUNICATION_NOTES = "activities/CommunicationNotes"

QUERIES = (
    ME, SYSTEM_DIVISIONS, HRM_DIVISIONS, PAYMENT_TERM_CHANGES, OPEN_RECEIVABLES, ACCOUNT_CHANGES, ACCOUNTS_BY_ID,
    CONTACTS_OF_ACCOUNTS, SALES_INVOICE, NOTES_OF_ACCOUNT, DOCUMENTS_OF_INVOICE, ATTACHMENTS_OF_DOCUMENT,
)
POST_BODIES = {
    PRINTED_SALES_INVOICES: ("PrintedSalesInvoice", ("InvoiceID", "SendEmailToCustomer", "ExtraText", "EmailLayout",
                                                     "DocumentLayout")),
    COMMUNICATION_NOTES: ("CommunicationNote", ("Account", "Subject", "Notes", "Date")),
}

OPEN_STATUS_FILTER = "Status ne 50"
"""The bulk receivables cannot filter on IsFullyPaid; Status 50 (matched) is the paid part."""


def timestamp_filter(after: int) -> str:
    """The only filter sync endpoints take, in the two forms Exact documents: `Timestamp gt 1` for the first run,
    `Timestamp gt 123456L` (an Int64 literal) after that."""
    return "Timestamp gt 1" if after <= 1 else f"Timestamp gt {odata.int64_literal(after)}"


def invoice_numbers_filter(numbers: Sequence[int], *, open_only: bool = True) -> str:
    """The (open, or with `open_only=False` all) payment terms of these invoice numbers."""
    numbers_filter = odata.any_of(INVOICE_NUMBER, [str(n) for n in numbers])
    return f"{OPEN_STATUS_FILTER} and {numbers_filter}" if open_only else numbers_filter


def ids_filter(query: Query, guids: Sequence[str]) -> str:
    """The rows of `query` whose key (`ID`, `Account`, `InvoiceID`, …) is one of `guids`."""
    return odata.any_of(query.key, [odata.guid(g) for g in guids])


def download_url(url: str) -> str:
    """A DocumentAttachment's `Url` asks for the file itself with `Download=1` (without it Exact shows a page)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}Download=1"


# --- rows as Exact sends them -------------------------------------------------------------------------------------

ExactDate = Annotated[date | None, BeforeValidator(odata.parse_date)]
Int64 = Annotated[int | None, BeforeValidator(odata.parse_int64)]


def _text(value: Any) -> Any:
    return value.strip() or None if isinstance(value, str) else value


Text = Annotated[str | None, BeforeValidator(_text)]


def _guid(value: Any) -> Any:
    """GUIDs in one spelling, so an InvoiceID read from one entity set matches the same id from another."""
    return str(UUID(str(value))) if value not in (None, "") else None


Guid = Annotated[str | None, BeforeValidator(_guid)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ReceivableRow(_Row):
    """One payment term (cashflow/Receivables, bulk/Cashflow/Receivables, sync/Cashflow/PaymentTerms)."""

    ID: Annotated[str, BeforeValidator(_guid)]
    Account: Guid = None
    AmountFC: Decimal
    Currency: Text = None
    DueDate: ExactDate = None
    InvoiceDate: ExactDate = None
    InvoiceNumber: int | None = None
    YourRef: Text = None
    Status: int
    TransactionAmountFC: Decimal | None = None
    TransactionEntryID: Guid = None
    TransactionType: int | None = None
    Timestamp: Int64 = None
    LineType: int | None = None


class AccountRow(_Row):
    ID: Annotated[str, BeforeValidator(_guid)]
    Code: Text = None
    Name: Text = None
    Email: Text = None
    Phone: Text = None
    AddressLine1: Text = None
    AddressLine2: Text = None
    AddressLine3: Text = None
    Postcode: Text = None
    City: Text = None
    Country: Text = None
    ChamberOfCommerce: Text = None
    VATNumber: Text = None
    Language: Text = None
    MainContact: Guid = None
    Timestamp: Int64 = None


class ContactRow(_Row):
    ID: Annotated[str, BeforeValidator(_guid)]
    Account: Guid = None
    FullName: Text = None
    Email: Text = None
    BusinessEmail: Text = None
    IsMainContact: bool | None = None


MATCHED = 50
SUPPLIER_PAYMENT_LINE = 22
"""sync/Cashflow/PaymentTerms also returns supplier payments (LineType 22): never receivables."""
SALES_ENTRY, SALES_CREDIT_NOTE, CASH_FLOW = 20, 21, 40
"""Exact's TransactionType codes (assumption from Exact's TransactionTypes list, not in providers.md): a cash-flow
row that is still open is a payment not yet matched to its invoice."""
PURCHASE_ENTRY, PURCHASE_CREDIT_NOTE = 30, 31
"""Purchase entries (same assumption): payables, never receivables, should a feed row lack its LineType."""


def parse_rows(raw: Iterable[Mapping[str, Any]], model: type[_Row], what: str) -> tuple[list[Any], list[str]]:
    """Validate rows; a bad row becomes a named problem, never a silent drop."""
    rows, problems = [], []
    for record in raw:
        try:
            rows.append(model.model_validate(record))
        except (ValidationError, ValueError) as exc:
            label = record.get("InvoiceNumber") or record.get("Name") or record.get("ID") or "?"
            problems.append(f"{what} {label}: unreadable record skipped ({_first_error(exc)})")
    return rows, problems


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
    return str(exc)


# --- receivables → invoices ---------------------------------------------------------------------------------------


def receivable_rows(rows: Iterable[ReceivableRow]) -> list[ReceivableRow]:
    """Only customer receivables: supplier payment lines (and purchase entries, whatever their line) dropped."""
    return [row for row in rows if row.LineType != SUPPLIER_PAYMENT_LINE
            and row.TransactionType not in (PURCHASE_ENTRY, PURCHASE_CREDIT_NOTE)]


def open_invoices(rows: Iterable[ReceivableRow], *, connection: str, owed_sign: int | None = None
                  ) -> tuple[dict[str, Invoice], list[str]]:
    """Open invoices (by InvoiceID) from payment-term rows; unmatched payments reduce the invoice they name."""
    groups: dict[str, list[ReceivableRow]] = defaultdict(list)
    payments: dict[tuple[str | None, int], list[ReceivableRow]] = defaultdict(list)
    for row in receivable_rows(rows):
        if row.Status == MATCHED:
            continue
        if row.TransactionType == CASH_FLOW:
            if row.InvoiceNumber is not None:
                payments[(row.Account, row.InvoiceNumber)].append(row)
            continue  # a payment on account that names no invoice: nothing to collect, nothing to subtract
        if row.TransactionEntryID is None:
            continue
        groups[row.TransactionEntryID].append(row)
    if owed_sign is None:
        owed_sign = sign_of(receivable_balance(row for terms in groups.values() for row in terms))
    invoices, problems = {}, []
    for invoice_id, terms in groups.items():
        try:
            invoice = _invoice(invoice_id, terms, payments, owed_sign, connection=connection)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        invoices[invoice_id] = invoice
    return invoices, problems


def receivable_balance(terms: Iterable[ReceivableRow]) -> int:
    """The open sales entries (TransactionType 20) among these terms with a positive amount, less those with a
    negative one: its sign is the sign an amount the customer owes carries (most sales entries are debts; a negative
    sales invoice is a credit of its own).

    providers.md: "the open part's AmountDC/AmountFC is negative for a receivable (observed once — check the sign on
    first use)". So the sign is learnt from the sales entries rather than assumed, and an open term running the other
    way (a journal entry or an opening balance in the customer's favour) is never taken for a debt. Learnt from a
    first sync's whole feed and kept with the cursor (`sign_of`): a small answer of a later sync (a lone credit
    booked as a negative sales invoice, say) must not set it by itself."""
    return sum((1 if row.AmountFC > 0 else -1) for row in terms
               if row.TransactionType == SALES_ENTRY and row.Status != MATCHED and row.AmountFC != 0)


def sign_of(balance: int) -> int | None:
    """-1 or 1 from a `receivable_balance`; None when it cannot tell."""
    return None if balance == 0 else (1 if balance > 0 else -1)


def settled_entries(rows: Iterable[ReceivableRow]) -> set[str]:
    """Invoices (by InvoiceID) whose every payment term in `rows` is matched: paid in full, or credited."""
    terms: dict[str, list[ReceivableRow]] = defaultdict(list)
    for row in receivable_rows(rows):
        if row.TransactionType != CASH_FLOW and row.TransactionEntryID is not None:
            terms[row.TransactionEntryID].append(row)
    return {entry for entry, found in terms.items() if all(t.Status == MATCHED for t in found)}


def invoice_keys(row: ReceivableRow) -> tuple[str | None, tuple[str | None, int] | None]:
    """The invoice a payment-term row belongs to (its entry), and the (account, number) an unmatched payment names."""
    if row.TransactionType == CASH_FLOW:
        return None, (row.Account, row.InvoiceNumber) if row.InvoiceNumber is not None else None
    return row.TransactionEntryID, (row.Account, row.InvoiceNumber) if row.InvoiceNumber is not None else None


def number_in_version(version: str | None) -> int | None:
    """The invoice number an invoice's version carries (so a stored invoice can be read again by number, the only
    way `bulk/Cashflow/Receivables` filters on an invoice)."""
    number = (version or "").split(".", 1)[0]
    return int(number) if number.isdigit() else None


def current_division(me: Mapping[str, Any]) -> int | None:
    """`current/Me` → `CurrentDivision`."""
    found = me.get("CurrentDivision")
    return int(found) if found is not None else None


def _invoice(
    invoice_id: str,
    terms: list[ReceivableRow],
    payments: Mapping[tuple[str | None, int], list[ReceivableRow]],
    owed_sign: int | None,
    *,
    connection: str,
) -> Invoice:
    first = min(terms, key=lambda t: (t.DueDate or date.max, t.ID))
    number = first.InvoiceNumber
    label = f"invoice {number}" if number is not None else f"entry {invoice_id}"
    if first.Account is None:
        raise ValueError(f"{label}: the receivable names no customer account; skipped")
    if first.InvoiceDate is None or first.DueDate is None:
        raise ValueError(f"{label}: the receivable has no invoice or due date; skipped")
    open_sum = sum((t.AmountFC for t in terms), Decimal(0))
    unmatched = [p for p in payments.get((first.Account, number), []) if p.Currency == first.Currency] \
        if number is not None else []
    paid_unmatched = sum((p.AmountFC for p in unmatched), Decimal(0))
    # A payment runs against the invoice's direction (opposite sign), whatever sign convention Exact uses.
    outstanding = abs(open_sum)
    if _opposite(open_sum, paid_unmatched):
        outstanding = max(Decimal(0), outstanding - abs(paid_unmatched))
    total = abs(first.TransactionAmountFC) if first.TransactionAmountFC is not None else abs(open_sum)
    total = max(total, outstanding)  # an instalment row without the transaction total: never claim more than is open
    digest = hashlib.sha1(
        repr(sorted((t.ID, str(t.AmountFC), t.Status, str(t.DueDate)) for t in terms + unmatched)).encode()
    ).hexdigest()[:16]
    version = f"{number if number is not None else ''}.{digest}"
    return Invoice.model_validate({
        "connection": connection,
        "platform_id": invoice_id,
        "number": str(number) if number is not None else None,
        "debtor_id": first.Account,
        "issue_date": first.InvoiceDate,
        "due_date": first.DueDate,
        "currency": first.Currency or "EUR",
        "total": total,
        # No `payments` with dates: the Outstanding Items report has none, and a payment-term row gives only
        # `LastPaymentDate` per matched part (payments matched together share one date); so interest on an Exact
        # invoice counts what was paid as paid by the due date.
        "amount_paid": total - outstanding,
        "outstanding": outstanding,
        # a credit note, or any other entry whose open part runs against what customers owe (the customer's credit)
        "is_credit_note": first.TransactionType == SALES_CREDIT_NOTE or (
            owed_sign is not None and open_sum != 0 and (open_sum > 0) != (owed_sign > 0)),
        "status": str(min(t.Status for t in terms)),
        "is_open": outstanding > 0,
        "reference": first.YourRef,
        "version": version,
    })


def _opposite(a: Decimal, b: Decimal) -> bool:
    return a != 0 and b != 0 and (a > 0) != (b > 0)


# --- accounts → debtors -------------------------------------------------------------------------------------------

DebtorKindRule = Literal["auto", "business", "consumer"]


def debtor_kind(account: AccountRow, rule: DebtorKindRule) -> DebtorKind:
    """Exact accounts carry no reliable person/company flag. `auto`: a KvK/KBO or VAT number means a business;
    otherwise a consumer, the lawful side (a consumer gets the 14-day letter before any costs). Config overrides."""
    if rule != "auto":
        return DebtorKind(rule)
    return DebtorKind.BUSINESS if account.ChamberOfCommerce or account.VATNumber else DebtorKind.CONSUMER


def emails(text: str | None) -> tuple[str, ...]:
    """The usable addresses in an Exact e-mail field: several may be typed in one (`a@x.nl; b@x.nl`), and text that
    is no address ("n.v.t.") is left out, so the customer still syncs (reminders then become tasks)."""
    found = (part.strip() for part in re.split(r"[;,\s]+", text or ""))
    return tuple(dict.fromkeys(p for p in found if "@" in p and not p.startswith("@") and not p.endswith("@")))


def by_id(accounts: Iterable[AccountRow]) -> dict[str, AccountRow]:
    return {account.ID: account for account in accounts}


def without_email(accounts: Iterable[AccountRow]) -> list[str]:
    """Accounts whose own e-mail field holds no usable address: their main contact's is asked for."""
    return [account.ID for account in accounts if not emails(account.Email)]


def contacts_by_account(contacts: Iterable[ContactRow]) -> dict[str, list[ContactRow]]:
    found: dict[str, list[ContactRow]] = defaultdict(list)
    for contact in contacts:
        found[contact.Account or ""].append(contact)
    return found


def contact_for(account: AccountRow, contacts: Mapping[str, Sequence[ContactRow]]) -> ContactRow | None:
    """The contact whose address stands in for an account without one."""
    return main_contact(contacts.get(account.ID, []), account.MainContact)


def feed_position(row: ReceivableRow | AccountRow) -> int | None:
    """A change-feed row's `Timestamp` (the rowversion the next sync starts after)."""
    return row.Timestamp


def invoice_numbers(rows: Iterable[ReceivableRow]) -> set[int]:
    """The invoice numbers changed payment terms belong to (what the open terms are read again by)."""
    return {row.InvoiceNumber for row in rows if row.InvoiceNumber is not None}


def renumbered_entries(rows: Iterable[ReceivableRow]) -> set[str]:
    """Invoices (by InvoiceID) of changed terms that carry a number, so they can be read again by it."""
    return {row.TransactionEntryID for row in rows if row.TransactionEntryID and row.InvoiceNumber is not None}


def main_contact(contacts: Sequence[ContactRow], main_id: str | None) -> ContactRow | None:
    """The account's main contact with an address, else any contact with one."""
    with_mail = [c for c in contacts if emails(c.Email) or emails(c.BusinessEmail)]
    ranked = sorted(with_mail, key=lambda c: (c.ID != main_id, not c.IsMainContact, c.ID))
    return ranked[0] if ranked else None


def debtor(
    account: AccountRow,
    *,
    connection: str,
    rule: DebtorKindRule = "auto",
    contact: ContactRow | None = None,
) -> Debtor:
    if not account.Name:
        raise ValueError(f"account {account.Code or account.ID}: it has no name; skipped")
    found = emails(account.Email) or (emails(contact.Email) or emails(contact.BusinessEmail) if contact else ())
    lines = tuple(line for line in (account.AddressLine1, account.AddressLine2, account.AddressLine3) if line)
    fields = {
        "connection": connection,
        "platform_id": account.ID,
        "name": account.Name,
        "kind": debtor_kind(account, rule),
        "emails": found,
        "phone": account.Phone,
        "address": Address(lines=lines, postal_code=account.Postcode, city=account.City,
                           country=_country(account.Country)),
        "coc_number": account.ChamberOfCommerce,
        "vat_number": account.VATNumber,
        "language": account.Language,
        "contact_person": contact.FullName if contact else None,
    }
    fields["version"] = hashlib.sha1(repr(sorted((k, str(v)) for k, v in fields.items())).encode()).hexdigest()[:16]
    try:
        return Debtor.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(f"account {account.Code or account.ID} ({account.Name}): {_first_error(exc)}") from None


def _country(code: str | None) -> str | None:
    """Exact's country codes are ISO alpha-2 (sometimes padded); anything else is left out rather than guessed."""
    if not code:
        return None
    code = code.strip().upper()
    return code if pycountry.countries.get(alpha_2=code) else None


# --- divisions ----------------------------------------------------------------------------------------------------


def tenants(divisions: Iterable[Mapping[str, Any]]) -> list[Tenant]:
    found = []
    for row in divisions:
        detail = " · ".join(str(row[k]).strip() for k in ("Country", "Currency") if row.get(k))
        if row.get("Current") or row.get("Main"):
            detail = f"{detail} · current" if detail else "current"
        found.append(Tenant(id=str(row["Code"]), name=str(row.get("Description") or row["Code"]), detail=detail or None))
    return found


# --- reminders and notes ------------------------------------------------------------------------------------------

PROCESSED = 50
"""SalesInvoice Status: 10 draft, 20 open (not yet processed), 50 processed. Says nothing about payment."""
KEY_MARK = "dunning-key:"


def resend_body(invoice_id: str, text: str, *, email_layout: str | None, document_layout: str | None) -> dict[str, Any]:
    """Re-send a processed invoice by e-mail with our text (never sent for an unprocessed invoice)."""
    body: dict[str, Any] = {"InvoiceID": invoice_id, "SendEmailToCustomer": True, "ExtraText": text}
    if email_layout:
        body["EmailLayout"] = email_layout
    if document_layout:
        body["DocumentLayout"] = document_layout
    return body


def note_body(account_id: str, subject: str, text: str, key: str, on: date) -> dict[str, Any]:
    return {
        "Account": account_id,
        "Subject": subject[:200],
        "Notes": f"{text}\n\n[{KEY_MARK}{key}]",
        "Date": odata.format_date(on),
    }


def carries_key(note: Mapping[str, Any], key: str) -> bool:
    return f"[{KEY_MARK}{key}]" in (note.get("Notes") or "")


def invoice_status(record: Mapping[str, Any]) -> Any:
    """A SalesInvoice's `Status` as Exact gave it (a number, or its text), for messages."""
    return record.get("Status")


def is_processed(record: Mapping[str, Any]) -> bool:
    """Whether a SalesInvoice is processed (only then may it be re-sent: sending an unprocessed one books it)."""
    return str(record.get("Status")) == str(PROCESSED)  # a number, or its text


@dataclass(frozen=True)
class PrintedInvoice:
    """PrintedSalesInvoices' answer: Exact reports a failed e-mail in a field, not with a status code."""

    email_error: Any
    email_success: Any
    document: Any


def printed_invoice_receipt(answer: Mapping[str, Any]) -> PrintedInvoice:
    return PrintedInvoice(answer.get("EmailCreationError"), answer.get("EmailCreationSuccess"), answer.get("Document"))


def note_id(note: Mapping[str, Any]) -> Any:
    return note.get("ID")


def note_created(note: Mapping[str, Any]) -> datetime | None:
    return odata.parse_local_datetime(note.get("Created"))


def document_id(document: Mapping[str, Any]) -> str:
    return str(document["ID"])


def documents_by_invoice(documents: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    """Document ids per sales invoice (`FinancialTransactionEntryID` is the InvoiceID), sorted."""
    found: dict[str, set[str]] = defaultdict(set)
    for document in documents:
        invoice = document.get("FinancialTransactionEntryID")
        if invoice and document.get("ID"):
            found[_guid_text(invoice)].add(_guid_text(document["ID"]))
    return {invoice: tuple(sorted(ids)) for invoice, ids in found.items()}


def sales_invoices_by_id(records: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {_guid_text(record["InvoiceID"]): record for record in records if record.get("InvoiceID")}


def printed_document(answer: PrintedInvoice) -> str | None:
    """The id of the document a print created, as `documents_by_invoice` writes ids."""
    return _guid_text(answer.document) if answer.document else None


def _guid_text(value: Any) -> str:
    """`_guid`, keeping a value that is not a GUID as it came (bad data is compared, never fatal)."""
    try:
        return str(_guid(value))
    except ValueError:
        return str(value)


def pdf_urls(attachments: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The `Url` of each attachment whose `FileName` ends in .pdf, in Exact's order."""
    for attachment in attachments:
        if str(attachment.get("FileName") or "").lower().endswith(".pdf") and attachment.get("Url"):
            yield str(attachment["Url"])
