"""Exact JSON → canonical models: dates, Int64, GUID literals, payment terms grouped into invoices, debtors."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from connector.models import DebtorKind
from providers.exact import mapping, odata
from providers.exact.mapping import AccountRow, ContactRow, ReceivableRow

INVOICE = "5b1f3c9e-0000-4000-8000-000000000001"
ACCOUNT = "a0000000-0000-4000-8000-000000000001"


def ms(day: date) -> str:
    return f"/Date({int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)})/"


def term(amount: str, *, status: int = 20, id: str = "t1", entry: str = INVOICE, number: int | None = 26001,
         total: str | None = None, kind: int = 20, due: date = date(2026, 10, 1), line: int | None = 20,
         currency: str = "EUR", account: str = ACCOUNT) -> ReceivableRow:
    return ReceivableRow.model_validate({
        "ID": str(uuid.uuid5(uuid.NAMESPACE_URL, id)), "Account": account, "AmountFC": Decimal(amount), "Currency": currency, "DueDate": ms(due),
        "InvoiceDate": ms(date(2026, 9, 1)), "InvoiceNumber": number, "YourRef": "PO-1", "Status": status,
        "TransactionAmountFC": Decimal(total if total is not None else amount), "TransactionEntryID": entry,
        "TransactionType": kind, "LineType": line, "Timestamp": "123",
    })


def invoices(*rows: ReceivableRow) -> dict[str, Any]:
    found, problems = mapping.open_invoices(rows, connection="acme")
    assert problems == []
    return found


def test_dates_are_read_from_exact_ms_form_as_utc_midnight() -> None:
    assert odata.parse_date("/Date(1793404800000)/") == date(2026, 10, 31)
    assert odata.format_date(date(2026, 10, 31)) == "/Date(1793404800000)/"
    assert odata.parse_date(None) is None


def test_an_iso_date_is_read_too_and_anything_else_refused() -> None:
    assert odata.parse_date("2026-11-23T00:00:00") == date(2026, 11, 23)
    assert odata.parse_date("2026-11-23") == date(2026, 11, 23)
    assert odata.parse_local_datetime("2026-11-23T12:00:00") == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert odata.parse_local_datetime("2026-11-23T12:00:00+00:00") == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="not an Exact"):
        odata.parse_date("23-11-2026")


def test_modified_times_are_dutch_local_time_written_as_utc() -> None:
    # 12:00 "UTC" on the wire is 12:00 in Amsterdam (CET in November), i.e. 11:00 UTC
    assert odata.parse_local_datetime("/Date(1795435200000)/") == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def test_int64_values_arrive_as_strings() -> None:
    assert odata.parse_int64("12345678901") == 12345678901
    assert odata.parse_int64(17) == 17
    assert mapping.timestamp_filter(12345678901) == "Timestamp gt 12345678901L"
    assert mapping.timestamp_filter(1) == "Timestamp gt 1"  # Exact's documented first-run form


def test_guid_literals_refuse_anything_but_a_guid() -> None:
    assert odata.guid(INVOICE.upper()) == f"guid'{INVOICE}'"
    with pytest.raises(ValueError):
        odata.guid("x' or 1 eq 1")


def test_id_batches_keep_urls_short() -> None:
    literals = [odata.guid(f"a0000000-0000-4000-8000-{n:012d}") for n in range(100)]
    batches = list(odata.batches(literals, field="ID"))
    assert [len(b) for b in batches] == [40, 40, 20]
    assert all(len(odata.any_of("ID", b)) * 1.3 < odata.MAX_URL for b in batches)


def test_the_envelope_shapes_all_give_rows() -> None:
    assert odata.records({"d": {"results": [{"ID": 1}], "__next": "u"}}) == [{"ID": 1}]
    assert odata.records({"d": [{"ID": 1}]}) == [{"ID": 1}]  # $top ≤ page size
    assert odata.records({"d": {"ID": 1}}) == [{"ID": 1}]  # a single entity
    assert odata.next_link({"d": {"results": [], "__next": "https://x/next"}}) == "https://x/next"
    assert odata.next_link({"d": []}) is None


@pytest.mark.parametrize("sign", [1, -1])
def test_an_open_invoice_whatever_sign_exact_uses(sign: int) -> None:
    found = invoices(term(str(sign * Decimal("1210.00"))))
    invoice = found[INVOICE]
    assert (invoice.total, invoice.outstanding, invoice.amount_paid) == (Decimal("1210.00"),) * 2 + (Decimal(0),)
    assert (invoice.number, invoice.debtor_id, invoice.reference) == ("26001", ACCOUNT, "PO-1")
    assert (invoice.issue_date, invoice.due_date, invoice.currency) == (date(2026, 9, 1), date(2026, 10, 1), "EUR")


def test_a_partly_paid_invoice_owes_only_its_open_rest() -> None:
    found = invoices(term("-200.00", status=50, id="paid", total="-1210.00"),
                     term("-1010.00", id="rest", total="-1210.00"))
    invoice = found[INVOICE]
    assert (invoice.outstanding, invoice.amount_paid, invoice.total) == (Decimal("1010.00"), Decimal("200.00"),
                                                                         Decimal("1210.00"))


def test_instalments_add_up_and_the_earliest_open_term_is_due() -> None:
    found = invoices(term("-605.00", id="first", total="-1210.00", due=date(2026, 10, 1)),
                     term("-605.00", id="second", total="-1210.00", due=date(2026, 11, 1)))
    assert found[INVOICE].outstanding == Decimal("1210.00")
    assert found[INVOICE].due_date == date(2026, 10, 1)


def test_a_fully_matched_invoice_is_not_open() -> None:
    assert invoices(term("-1210.00", status=50)) == {}


def test_an_unmatched_payment_naming_the_invoice_reduces_what_is_owed() -> None:
    payment = term("300.00", id="bank", entry="b0000000-0000-4000-8000-00000000000b", kind=mapping.CASH_FLOW)
    found = invoices(term("-1210.00"), payment)
    assert set(found) == {INVOICE}  # the payment is not an invoice of its own
    assert found[INVOICE].outstanding == Decimal("910.00")


def test_guids_are_matched_whatever_their_spelling() -> None:
    found = invoices(term("-100.00", entry=INVOICE.upper(), account=ACCOUNT.upper()))
    assert set(found) == {INVOICE} and found[INVOICE].debtor_id == ACCOUNT


def test_a_credit_note_is_flagged() -> None:
    found = invoices(term("60.50", kind=mapping.SALES_CREDIT_NOTE))
    assert found[INVOICE].is_credit_note and not found[INVOICE].is_collectable


def test_an_open_entry_in_the_customers_favour_is_never_taken_for_a_debt() -> None:
    journal = "5b1f3c9e-0000-4000-8000-000000000002"
    found = invoices(term("-100.00"), term("-40.00", id="t2", entry="5b1f3c9e-0000-4000-8000-000000000003",
                                           number=26002),
                     term("150.00", id="t3", entry=journal, number=None, kind=90))  # a general journal entry
    assert not found[INVOICE].is_credit_note and found[INVOICE].outstanding == Decimal("100.00")
    assert found[journal].is_credit_note and not found[journal].is_collectable  # the customer's credit: not dunned


def test_an_entry_with_nothing_to_learn_the_sign_from_is_read_as_before() -> None:
    journal = "5b1f3c9e-0000-4000-8000-000000000002"
    assert not invoices(term("150.00", entry=journal, number=None, kind=90))[journal].is_credit_note


def test_amounts_stay_in_the_invoice_currency() -> None:
    assert invoices(term("-250.00", currency="GBP"))[INVOICE].currency == "GBP"


def test_supplier_payment_lines_are_dropped() -> None:
    assert invoices(term("500.00", line=mapping.SUPPLIER_PAYMENT_LINE)) == {}


@pytest.mark.parametrize("kind", [mapping.PURCHASE_ENTRY, mapping.PURCHASE_CREDIT_NOTE])
def test_a_purchase_entry_is_never_a_receivable_even_without_its_line_type(kind: int) -> None:
    assert invoices(term("500.00", kind=kind, line=None)) == {}


def test_the_version_changes_when_a_term_changes() -> None:
    before = invoices(term("-1210.00"))[INVOICE].version
    after = invoices(term("-1010.00", total="-1210.00"))[INVOICE].version
    assert before != after


def test_an_unreadable_row_is_a_named_problem_not_a_crash() -> None:
    rows, problems = mapping.parse_rows([{"ID": "x", "InvoiceNumber": 26001, "AmountFC": None, "Status": None}],
                                        ReceivableRow, "payment term")
    assert rows == [] and problems and problems[0].startswith("payment term 26001: unreadable record skipped")


def account(**fields: Any) -> AccountRow:
    return AccountRow.model_validate({"ID": ACCOUNT, "Code": "            000042", "Name": "Bakker B.V."} | fields)


@pytest.mark.parametrize(("fields", "kind"), [
    ({"ChamberOfCommerce": "30000001"}, DebtorKind.BUSINESS),
    ({"VATNumber": "NL800000001B01"}, DebtorKind.BUSINESS),
    ({}, DebtorKind.CONSUMER),
    ({"ChamberOfCommerce": "  "}, DebtorKind.CONSUMER),
])
def test_business_or_consumer_by_kvk_or_vat_number(fields: dict[str, str], kind: DebtorKind) -> None:
    assert mapping.debtor(account(**fields), connection="acme").kind is kind


def test_configuration_overrides_the_kind_heuristic() -> None:
    assert mapping.debtor(account(), connection="acme", rule="business").kind is DebtorKind.BUSINESS


def test_an_account_becomes_a_debtor_with_address_language_and_numbers() -> None:
    debtor = mapping.debtor(account(Email="debiteuren@bakker.nl", Phone="020 555", AddressLine1="Dorpsstraat 1",
                                    AddressLine2="", Postcode="1234 AB", City="Utrecht", Country="NL ",
                                    ChamberOfCommerce="30000001", VATNumber="NL800000001B01", Language="EN"),
                            connection="acme")
    assert debtor.emails == ("debiteuren@bakker.nl",)
    assert debtor.address.lines == ("Dorpsstraat 1",) and debtor.address.country == "NL"
    assert (debtor.coc_number, debtor.vat_number, debtor.language) == ("30000001", "NL800000001B01", "en")


def test_an_account_without_email_uses_its_main_contact() -> None:
    main, other = "c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000002"
    contacts = [ContactRow(ID=other, Account=ACCOUNT, FullName="Other", Email="other@bakker.nl"),
                ContactRow(ID=main, Account=ACCOUNT, FullName="Petra", Email="petra@bakker.nl", IsMainContact=True)]
    contact = mapping.main_contact(contacts, main)
    debtor = mapping.debtor(account(MainContact=main), connection="acme", contact=contact)
    assert debtor.emails == ("petra@bakker.nl",) and debtor.contact_person == "Petra"


def test_an_email_field_with_several_addresses_or_none_at_all_still_gives_a_debtor() -> None:
    several = mapping.debtor(account(Email="debiteuren@bakker.nl; jan@bakker.nl"), connection="acme")
    assert several.emails == ("debiteuren@bakker.nl", "jan@bakker.nl")
    contact = ContactRow(ID="c0000000-0000-4000-8000-000000000001", Account=ACCOUNT, FullName="Petra",
                         Email="petra@bakker.nl")
    assert mapping.debtor(account(Email="n.v.t."), connection="acme", contact=contact).emails == ("petra@bakker.nl",)
    assert mapping.debtor(account(Email="n.v.t."), connection="acme").emails == ()


def test_an_account_without_a_name_is_refused_by_code() -> None:
    with pytest.raises(ValueError, match="account 000042"):
        mapping.debtor(account(Name=None, Code="000042"), connection="acme")


def test_an_unknown_country_code_is_left_out() -> None:
    assert mapping.debtor(account(Country="XX"), connection="acme").address.country is None


def test_a_note_carries_the_idempotency_key() -> None:
    body = mapping.note_body(ACCOUNT, "Reminder", "Pay please", "key-12345678", date(2026, 11, 23))
    assert mapping.carries_key(body, "key-12345678") and not mapping.carries_key(body, "key-other")
    assert body["Date"] == "/Date(1795392000000)/"


def test_a_note_is_dated_by_the_dutch_day_not_the_utc_one() -> None:
    # providers.md: Exact's date-times are Dutch local time; 23:30 UTC on 1 December is already 2 December there
    assert odata.dutch_day(datetime(2026, 12, 1, 23, 30, tzinfo=UTC)) == date(2026, 12, 2)
    assert odata.dutch_day(datetime(2026, 7, 1, 21, 59, tzinfo=UTC)) == date(2026, 7, 1)  # summer: UTC+2
    assert odata.dutch_day(datetime(2026, 7, 1, 22, 0, tzinfo=UTC)) == date(2026, 7, 2)
