"""Xero JSON → canonical models: dates with offsets, exact amounts, open/closed, contacts → debtors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connector.models import DebtorKind
from providers.errors import BadPlatformData
from providers.xero import mapping


def invoice_json(**changes: object) -> dict:
    """A sales invoice as `GET /Invoices` returns it (amounts parsed as Decimal, as the client does)."""
    text = """{
      "Type": "ACCREC", "InvoiceID": "a03ffcd2-5d91-4c7e-b483-318584e9e439", "InvoiceNumber": "INV-0006",
      "Reference": "PO 4711", "AmountDue": 575.00, "AmountPaid": 0.00, "AmountCredited": 0.00,
      "Contact": {"ContactID": "5b96e86b-418e-48e8-8949-308c14aec278", "Name": "Bouw B.V."},
      "DateString": "2026-10-20T00:00:00", "Date": "/Date(1792454400000+0000)/",
      "DueDateString": "2026-11-03T00:00:00", "DueDate": "/Date(1793664000000+0000)/",
      "Status": "AUTHORISED", "SubTotal": 475.21, "TotalTax": 99.79, "Total": 575.00,
      "UpdatedDateUTC": "/Date(1792495328987+0000)/", "UpdatedDateUTCString": "2026-10-20T11:22:08Z",
      "CurrencyCode": "EUR"
    }"""
    return json.loads(text, parse_float=Decimal) | changes


def test_ms_dates_are_utc_instants_and_offsets_shift_the_calendar_date() -> None:
    instant, offset = mapping.parse_ms_date("/Date(1518685950940+0000)/")
    assert instant == datetime(2018, 2, 15, 9, 12, 30, 940000, tzinfo=UTC)
    # 2018-10-19T12:00Z written for a +13:00 organisation is already 20 October there
    assert mapping.read_date({"DueDate": "/Date(1539950400000+1300)/"}, "DueDate") == date(2018, 10, 20)
    assert mapping.read_date({"DueDate": "/Date(1539950400000-0500)/"}, "DueDate") == date(2018, 10, 19)
    assert mapping.read_date({"Date": "/Date(1539993600000)/"}, "Date") == date(2018, 10, 20)


def test_a_local_midnight_written_in_utc_keeps_its_day() -> None:
    # 1 March 2026 00:00 in Amsterdam (UTC+1) is 28 February 23:00 UTC
    assert mapping.read_date({"ExpectedPaymentDate": "/Date(1772319600000+0000)/"}, "ExpectedPaymentDate") == date(
        2026, 3, 1)
    assert mapping.read_date({"ExpectedPaymentDate": "/Date(1772323200000+0000)/"}, "ExpectedPaymentDate") == date(
        2026, 3, 1)


def test_the_string_sibling_wins_for_calendar_dates() -> None:
    record = {"DueDate": "/Date(1539950400000-1200)/", "DueDateString": "2018-10-20T00:00:00"}
    assert mapping.read_date(record, "DueDate") == date(2018, 10, 20)


def test_timestamps_keep_milliseconds_and_fall_back_to_the_string() -> None:
    assert mapping.read_timestamp({"UpdatedDateUTC": "/Date(1573755038314+0000)/"}, "UpdatedDateUTC") == datetime(
        2019, 11, 14, 18, 10, 38, 314000, tzinfo=UTC)
    assert mapping.read_timestamp({"UpdatedDateUTCString": "2019-11-14T18:10:38Z"}, "UpdatedDateUTC") == datetime(
        2019, 11, 14, 18, 10, 38, tzinfo=UTC)


def test_if_modified_since_is_utc_to_the_second_with_a_second_of_margin() -> None:
    # a record changed later in the same second (10:00:05.999) must come back whether the server's boundary is
    # inclusive or exclusive, with or without milliseconds
    moment = datetime(2026, 11, 23, 11, 0, 5, 999000, tzinfo=timezone(timedelta(hours=1)))
    assert mapping.if_modified_since(moment) == "2026-11-23T10:00:04Z"


def test_an_open_sales_invoice_maps_with_exact_amounts() -> None:
    invoice = mapping.invoice_from_xero(invoice_json(), connection="acme")

    assert invoice.platform_id == "a03ffcd2-5d91-4c7e-b483-318584e9e439"
    assert invoice.number == "INV-0006" and invoice.reference == "PO 4711"
    assert invoice.debtor_id == "5b96e86b-418e-48e8-8949-308c14aec278"
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 10, 20), date(2026, 11, 3))
    assert invoice.total == Decimal("575.00") and invoice.outstanding == Decimal("575.00")
    assert invoice.currency == "EUR" and invoice.is_open and invoice.status == "AUTHORISED"
    assert invoice.last_modified == datetime(2026, 10, 20, 11, 22, 8, 987000, tzinfo=UTC)
    assert invoice.version == "2026-10-20T11:22:08.987+00:00"


def test_credit_notes_and_payments_reduce_what_is_owed() -> None:
    record = invoice_json(AmountDue=Decimal("300.00"), AmountPaid=Decimal("200.00"), AmountCredited=Decimal("75.00"))

    invoice = mapping.invoice_from_xero(record, connection="acme")

    assert invoice.outstanding == Decimal("300.00")
    assert invoice.amount_paid == Decimal("275.00")
    assert invoice.total - invoice.amount_paid == invoice.outstanding


def test_a_float_amount_is_read_exactly() -> None:
    invoice = mapping.invoice_from_xero(invoice_json(AmountDue=148062.76, Total=148062.76), connection="acme")
    assert invoice.outstanding == Decimal("148062.76")


@pytest.mark.parametrize("status", ["PAID", "VOIDED", "DELETED", "DRAFT"])
def test_paid_voided_deleted_and_draft_invoices_are_not_open(status: str) -> None:
    assert not mapping.invoice_from_xero(invoice_json(Status=status), connection="acme").is_open


def test_submitted_invoices_are_open_only_when_the_connection_collects_them() -> None:
    record = invoice_json(Status="SUBMITTED")
    assert not mapping.invoice_from_xero(record, connection="acme").is_open
    assert mapping.invoice_from_xero(record, connection="acme", open_statuses=("AUTHORISED", "SUBMITTED")).is_open


def test_expected_payment_date_becomes_a_promise() -> None:
    record = invoice_json(ExpectedPaymentDate="/Date(1795046400000+0000)/")
    assert mapping.invoice_from_xero(record, connection="acme").promised_payment_date == date(2026, 11, 19)


def test_a_credit_note_type_is_marked_as_such() -> None:
    invoice = mapping.invoice_from_xero(invoice_json(Type="ACCRECCREDIT"), connection="acme")
    assert invoice.is_credit_note and not invoice.is_open


@pytest.mark.parametrize(("changes", "complaint"), [
    ({"Type": "ACCPAY"}, "not a sales invoice"),
    ({"CurrencyCode": None}, "currency"),
    ({"AmountDue": "n/a"}, "AmountDue"),
    ({"Contact": {}}, "ContactID"),
    ({"DueDate": None, "DueDateString": None}, "DueDate"),
    ({"Date": "20 October", "DateString": None}, "Date"),
])
def test_unreadable_invoices_are_refused_naming_the_invoice(changes: dict, complaint: str) -> None:
    with pytest.raises(BadPlatformData) as refused:
        mapping.invoice_from_xero(invoice_json(**changes), connection="acme")
    assert "INV-0006" in str(refused.value) and complaint in str(refused.value)
    assert str(refused.value).startswith("acme: ")


def contact_json(**changes: object) -> dict:
    return {
        "ContactID": "5b96e86b-418e-48e8-8949-308c14aec278", "ContactStatus": "ACTIVE", "Name": "Jan de Vries",
        "FirstName": "Jan", "LastName": "de Vries", "EmailAddress": "jan@example.nl",
        "ContactPersons": [
            {"FirstName": "Els", "LastName": "Boer", "EmailAddress": "els@example.nl", "IncludeInEmails": True},
            {"FirstName": "Piet", "LastName": "Kok", "EmailAddress": "piet@example.nl", "IncludeInEmails": False},
        ],
        "Addresses": [
            {"AddressType": "STREET"},
            {"AddressType": "POBOX", "AddressLine1": "Postbus 12", "City": "Utrecht", "PostalCode": "3500 AA",
             "Country": "Netherlands", "AttentionTo": "Administratie"},
        ],
        "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "1234567", "PhoneAreaCode": "30",
                    "PhoneCountryCode": "31"}, {"PhoneType": "FAX"}],
        "UpdatedDateUTC": "/Date(1573755038314+0000)/", "IsCustomer": True,
    } | changes


def test_a_contact_becomes_a_debtor_with_xeros_mail_recipients_and_postal_address() -> None:
    debtor = mapping.debtor_from_xero(contact_json(), connection="acme")

    assert debtor.name == "Jan de Vries" and debtor.contact_person == "Jan de Vries"
    assert debtor.emails == ("jan@example.nl", "els@example.nl")  # Piet is not included in e-mails
    assert debtor.address.lines == ("Postbus 12",) and debtor.address.city == "Utrecht"
    assert debtor.address.country == "NL" and debtor.address.attention == "Administratie"
    assert debtor.phone == "+31 30 1234567"
    assert debtor.kind == DebtorKind.CONSUMER
    assert debtor.version == "2019-11-14T18:10:38.314+00:00"


def test_the_street_address_is_used_when_the_postal_one_is_empty() -> None:
    record = contact_json(Addresses=[{"AddressType": "STREET", "AddressLine1": "Markt 1", "City": "Gent",
                                      "Country": "België"}, {"AddressType": "POBOX"}])
    address = mapping.debtor_from_xero(record, connection="acme").address
    assert address.lines == ("Markt 1",) and address.country == "BE"


def test_a_country_that_cannot_be_coded_is_kept_as_an_address_line() -> None:
    record = contact_json(Addresses=[{"AddressType": "POBOX", "AddressLine1": "Rue 1", "City": "X",
                                      "Country": "Atlantis"}])
    address = mapping.debtor_from_xero(record, connection="acme").address
    assert address.country is None and address.lines == ("Rue 1", "Atlantis")


@pytest.mark.parametrize(("changes", "kind"), [
    ({"CompanyNumber": "12345678"}, DebtorKind.BUSINESS),
    ({"TaxNumber": "NL001234567B01"}, DebtorKind.BUSINESS),
    ({"Name": "Bakkerij Jansen B.V."}, DebtorKind.BUSINESS),
    ({"Name": "Jansen Transport VOF"}, DebtorKind.BUSINESS),
    ({"Name": "Bvba-loze Bert"}, DebtorKind.CONSUMER),
    ({}, DebtorKind.CONSUMER),
])
def test_business_or_consumer_is_decided_on_evidence(changes: dict, kind: DebtorKind) -> None:
    assert mapping.debtor_from_xero(contact_json(**changes), connection="acme").kind == kind


def test_the_connection_can_override_the_kind_per_contact() -> None:
    record = contact_json(TaxNumber="NL001234567B01")
    overrides = {record["ContactID"]: DebtorKind.CONSUMER}
    assert mapping.debtor_from_xero(record, connection="acme", kinds=overrides).kind == DebtorKind.CONSUMER


def test_an_unreadable_contact_is_refused_by_name() -> None:
    with pytest.raises(BadPlatformData, match="contact Jan de Vries"):
        mapping.debtor_from_xero(contact_json(EmailAddress="not-an-address"), connection="acme")


def test_history_notes_fit_250_characters_and_keep_the_key() -> None:
    details = mapping.reminder_details("y" * 300, "k" * 40)
    assert len(details) == 250 and details.endswith("[" + "k" * 40 + "]")
    assert mapping.carries_key(details, "k" * 40) and not mapping.carries_key(details, "k" * 39)
    assert mapping.reminder_details("final_notice", "abc12345") == "Dunning Connector: final_notice [abc12345]"


def test_error_messages_come_from_the_validation_errors() -> None:
    body = {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
            "Elements": [{"ValidationErrors": [{"Message": "Contact has no email"}, {"Message": "Second"}]}]}
    assert mapping.error_messages(body) == ["Contact has no email", "Second"]
    assert mapping.error_messages({"Detail": "AuthorizationUnsuccessful"}) == ["AuthorizationUnsuccessful"]


def test_payments_keep_the_day_xero_records_them_paid() -> None:
    record = invoice_json(AmountDue=Decimal("175.00"), AmountPaid=Decimal("400.00"), Payments=[
        {"PaymentID": "p1", "Date": "/Date(1793664000000+0000)/", "Amount": Decimal("400.00")},
    ])

    invoice = mapping.invoice_from_xero(record, connection="acme")

    assert [(p.on, p.amount) for p in invoice.payments] == [(date(2026, 11, 3), Decimal("400.00"))]
    assert mapping.invoice_from_xero(invoice_json(), connection="acme").payments == ()


def test_only_organisations_are_offered_as_tenants_not_a_practice() -> None:
    found = mapping.tenants([
        {"tenantId": "t-org", "tenantType": "ORGANISATION", "tenantName": "Acme B.V."},
        {"tenantId": "t-practice", "tenantType": "PRACTICE", "tenantName": "Boekhouders & Co"},
        {"tenantId": "t-untyped", "tenantName": "Oud B.V."},
    ])
    assert [tenant.id for tenant in found] == ["t-org", "t-untyped"]
