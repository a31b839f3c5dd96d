"""Moneybird JSON → canonical model: ids, amounts, dates, timestamps, empty strings, credit invoices, debtors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from connector.models import DebtorKind
from providers.errors import BadPlatformData
from providers.moneybird import mapping


def sales_invoice(**changes: object) -> dict[str, object]:
    """A record shaped like the OpenAPI example of `POST sales_invoices/synchronization`."""
    record: dict[str, object] = {
        "id": "499874861138577196", "administration_id": 123, "contact_id": "499874860915230472",
        "invoice_id": "2026-0003", "state": "late", "invoice_date": "2026-10-02", "due_date": "2026-10-16",
        "currency": "EUR", "total_price_incl_tax": "363.0", "total_paid": "0.0", "total_unpaid": "363.0",
        "reference": "Project X", "url": "http://moneybird.dev/123/external/abc/sales_invoice",
        "payment_url": "http://moneybird.dev/123/external/abc/pay", "version": 1790937838,
        "updated_at": "2026-10-02T10:43:58.258Z", "workflow_id": "499874808615404687",
        "document_style_id": "499874808810439833", "identity_id": "499874807993599083", "notes": [],
    }
    return record | changes


def contact(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": "499874860915230472", "company_name": "Foobar Holding B.V.", "firstname": None, "lastname": None,
        "address1": "Hoofdstraat 12", "address2": "", "zipcode": "1234AB", "city": "Amsterdam", "country": "NL",
        "phone": "", "email": "info@example.com", "send_invoices_to_email": "info@example.com",
        "send_invoices_to_attention": "", "attention": None, "tax_number": "NL852924574B01",
        "chamber_of_commerce": "12345678", "contact_people": [], "version": 1790937837,
    }
    return record | changes


def test_invoice_fields_are_read_exactly():
    invoice = mapping.to_invoice(sales_invoice(), connection="mb")

    assert invoice.platform_id == "499874861138577196" and invoice.debtor_id == "499874860915230472"
    assert invoice.number == "2026-0003" and invoice.status == "late" and invoice.is_open
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 10, 2), date(2026, 10, 16))
    assert (invoice.total, invoice.amount_paid, invoice.outstanding) == (Decimal("363.0"), Decimal("0.0"),
                                                                         Decimal("363.0"))
    assert invoice.last_modified == datetime(2026, 10, 2, 10, 43, 58, 258000, tzinfo=UTC)
    assert invoice.version == "1790937838"
    assert invoice.payment_url == "http://moneybird.dev/123/external/abc/pay"


def test_integer_ids_and_json_number_amounts_are_accepted_exactly():
    invoice = mapping.to_invoice(
        sales_invoice(id=499874861138577196, contact_id=17, total_price_incl_tax=121.1, total_paid=0.1,
                      total_unpaid=121.0, version="1790937838"),
        connection="mb",
    )

    assert (invoice.platform_id, invoice.debtor_id) == ("499874861138577196", "17")
    assert (invoice.total, invoice.amount_paid) == (Decimal("121.1"), Decimal("0.1"))


def test_empty_strings_and_nulls_are_absent_values():
    invoice = mapping.to_invoice(sales_invoice(reference="", payment_url="", url=None), connection="mb")

    assert invoice.reference is None and invoice.payment_url is None


def test_payment_url_falls_back_to_the_public_url():
    invoice = mapping.to_invoice(sales_invoice(payment_url=None), connection="mb")

    assert invoice.payment_url == "http://moneybird.dev/123/external/abc/sales_invoice"


def test_a_credit_invoice_has_negative_amounts_and_is_flagged():
    invoice = mapping.to_invoice(
        sales_invoice(total_price_incl_tax="-60.5", total_paid="0.0", total_unpaid="-60.5", state="open"),
        connection="mb",
    )

    assert invoice.is_credit_note and invoice.outstanding == Decimal("-60.5")
    assert not invoice.is_collectable


@pytest.mark.parametrize("state", ["paid", "uncollectible", "draft", "scheduled"])
def test_states_outside_the_open_set_are_closed(state):
    assert not mapping.to_invoice(sales_invoice(state=state), connection="mb").is_open


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"total_unpaid": "abc"}, "total_unpaid"),
        ({"due_date": None}, "due_date"),
        ({"invoice_date": "02-10-2026"}, "invoice_date"),
        ({"currency": "XXY"}, "currency"),
        ({"contact_id": None}, "id"),
        ({"total_unpaid": "400.0"}, "outstanding"),
    ],
)
def test_unreadable_invoices_are_refused_naming_the_invoice_and_the_field(changes, named):
    with pytest.raises(BadPlatformData) as refused:
        mapping.to_invoice(sales_invoice(**changes), connection="mb")

    assert "invoice 2026-0003" in str(refused.value) and named in str(refused.value)


def test_a_draft_without_number_is_named_by_its_id():
    with pytest.raises(BadPlatformData, match="sales invoice id 499874861138577196"):
        mapping.to_invoice(sales_invoice(invoice_id=None, due_date=""), connection="mb")


def test_a_company_contact_is_a_business_debtor_with_kvk_and_vat():
    debtor = mapping.to_debtor(contact(), connection="mb")

    assert debtor.name == "Foobar Holding B.V." and debtor.kind is DebtorKind.BUSINESS
    assert (debtor.coc_number, debtor.vat_number) == ("12345678", "NL852924574B01")
    assert debtor.emails == ("info@example.com",)  # the same address twice is one address
    assert debtor.address.lines == ("Hoofdstraat 12",) and debtor.address.postal_code == "1234AB"
    assert debtor.phone is None and debtor.version == "1790937837"


def test_the_separate_invoice_address_comes_first_and_lists_may_hold_several():
    debtor = mapping.to_debtor(
        contact(send_invoices_to_email="crediteuren@foobar.nl; boekhouding@foobar.nl", email="info@foobar.nl"),
        connection="mb",
    )

    assert debtor.emails == ("crediteuren@foobar.nl", "boekhouding@foobar.nl", "info@foobar.nl")


def test_a_contact_without_company_name_is_a_consumer_unless_configured_otherwise():
    person = contact(company_name="", firstname="Jan", lastname="Janssen", id=42)

    assert mapping.to_debtor(person, connection="mb").kind is DebtorKind.CONSUMER
    assert mapping.to_debtor(person, connection="mb").name == "Jan Janssen"
    overridden = mapping.to_debtor(person, connection="mb", kinds={"42": DebtorKind.BUSINESS})
    assert overridden.kind is DebtorKind.BUSINESS


def test_attention_and_first_contact_person_are_kept():
    debtor = mapping.to_debtor(
        contact(send_invoices_to_attention="Afd. crediteuren",
                contact_people=[{"id": "1", "firstname": "Jan", "lastname": "Janssen"}]),
        connection="mb",
    )

    assert debtor.address.attention == "Afd. crediteuren" and debtor.contact_person == "Jan Janssen"


def test_a_nameless_contact_is_refused_naming_its_id():
    with pytest.raises(BadPlatformData, match="contact id 77"):
        mapping.to_debtor(contact(id="77", company_name=None, firstname="", lastname=None), connection="mb")


def test_reminder_groups_come_from_the_invoice_itself():
    assert mapping.reminder_group(sales_invoice()) == (
        "499874860915230472", "499874808615404687", "499874808810439833", "499874807993599083")


def test_notes_match_the_whole_key_only():
    record = sales_invoice(notes=[{"id": "1", "note": "step sent dunning-key:abc-123"},
                                  {"id": "2", "note": "dunning-key:abc-1234"}])

    assert [n["id"] for n in mapping.notes_with_key(record, "abc-123")] == ["1"]
    assert mapping.notes_with_key(record, "abc-12") == []


def test_automatic_reminders_are_found_in_active_invoice_workflows_only():
    step = {"step_order": 1, "reminder_auto_send": True}
    workflows = [
        {"id": "1", "type": "InvoiceWorkflow", "name": "Standaard", "active": True,
         "steps": [{"step_order": 0, "reminder_auto_send": False}, step,
                   {"step_order": 2, "reminder_auto_send": True}]},
        {"id": "2", "type": "InvoiceWorkflow", "name": "Oud", "active": False, "steps": [step]},
        {"id": "3", "type": "EstimateWorkflow", "name": "Offertes", "active": True, "steps": [step]},
        {"id": "4", "type": "InvoiceWorkflow", "name": "Handmatig", "active": True,
         "steps": [{"step_order": 1, "reminder_auto_send": False}]},
    ]

    assert mapping.automatic_reminder_workflows(workflows) == [("Standaard", [1, 2])]


def test_reminder_entry_sends_an_address_only_with_email_delivery():
    group = ("1", "2", "3", "4")
    by_mail = mapping.reminder_entry(group, ["10"], reminder_text="t", delivery_method="Email",
                                     email_address="a@b.nl")
    by_hand = mapping.reminder_entry(group, ["10"], reminder_text="t", delivery_method="Manual",
                                     email_address="a@b.nl")

    assert by_mail["email_address"] == "a@b.nl" and "email_address" not in by_hand
    assert by_hand == {"contact_id": "1", "workflow_id": "2", "document_style_id": "3", "identity_id": "4",
                       "sales_invoice_ids": ["10"], "reminder_text": "t", "delivery_method": "Manual"}


def test_an_unreadable_updated_at_does_not_cost_the_invoice():
    odd = mapping.to_invoice(sales_invoice(updated_at="yesterday"), connection="mb")
    spaced = mapping.to_invoice(sales_invoice(updated_at="2026-10-02 10:43:58 UTC"), connection="mb")

    assert odd.last_modified is None and odd.version == "1790937838"
    assert spaced.last_modified == datetime(2026, 10, 2, 10, 43, 58, tzinfo=UTC)


def test_a_null_workflow_style_or_identity_is_left_for_the_adapter_to_complete():
    record = sales_invoice(workflow_id=None, document_style_id="", identity_id=None,
                           contact={"id": "499874860915230472", "invoice_workflow_id": "55"})

    assert mapping.reminder_group(record) == ("499874860915230472", None, None, None)
    assert mapping.contact_workflow(record) == "55"
    workflows = [{"id": "1", "type": "EstimateWorkflow", "default": True},
                 {"id": "2", "type": "InvoiceWorkflow", "default": False},
                 {"id": "3", "type": "InvoiceWorkflow", "default": True, "active": True}]
    styles = [{"id": 7, "default": True, "identity_id": 9}]
    assert mapping.default_id(workflows, invoice_workflow=True) == "3"
    assert mapping.default_id(styles) == "7" and mapping.style_identity(styles, "7") == "9"


def test_payments_keep_the_day_moneybird_records_them_paid():
    paid = [{"id": "1", "price": "100.0", "price_base": "100.0", "payment_date": "2026-10-20"},
            {"id": "2", "price": 63.5, "price_base": 63.5, "payment_date": "2026-11-02"}]
    invoice = mapping.to_invoice(sales_invoice(payments=paid, total_paid="163.5", total_unpaid="199.5"), connection="mb")

    assert [(p.on, p.amount) for p in invoice.payments] == [(date(2026, 10, 20), Decimal("100.0")),
                                                             (date(2026, 11, 2), Decimal("63.5"))]
    assert mapping.to_invoice(sales_invoice(), connection="mb").payments == ()
