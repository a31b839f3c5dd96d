"""Reminders through Xero's own invoice e-mail, history notes, PDFs, tenants and warnings (simulator)."""

from __future__ import annotations

import re

import pytest

from providers.base import ReminderRequest, SyncState
from providers.errors import ReminderRefused
from providers.xero import XeroProvider
from providers.xero.simulator import XeroSimulator

EMAIL = "/api.xro/2.0/Invoices/*/Email"


@pytest.fixture
def synced(sim: XeroSimulator, xero: XeroProvider) -> dict:
    """Invoices and debtors as the adapter delivered them, by platform id."""
    pages = list(xero.sync(SyncState()))
    return {"invoices": {i.platform_id: i for p in pages for i in p.invoices},
            "debtors": {d.platform_id: d for p in pages for d in p.debtors}}


def request_for(synced: dict, invoice_id: str, key: str = "outbox-0001-first", step: str = "first_reminder"):
    invoice = synced["invoices"][invoice_id]
    return ReminderRequest(step=step, debtor=synced["debtors"][invoice.debtor_id], invoices=(invoice,),
                           message="(Xero sends its own text)", idempotency_key=key)


def mailable(sim: XeroSimulator) -> str:
    return next(i.invoice_id for i in sim.org.open_invoices() if sim.org.contacts[i.contact_id].email)


def test_a_reminder_is_mailed_by_xero_and_recorded_in_the_invoice_history(
    sim: XeroSimulator, xero: XeroProvider, synced: dict
) -> None:
    invoice_id = mailable(sim)
    contact = sim.org.contacts[sim.org.invoices[invoice_id].contact_id]

    receipt = xero.send_reminder(request_for(synced, invoice_id))

    assert len(sim.mail) == 1
    assert sim.mail[0].invoice_ids == (invoice_id,)
    assert sim.mail[0].recipients[0] == contact.email
    history = sim.history(invoice_id)
    assert [h.details for h in history] == ["Dunning Connector: first_reminder [outbox-0001-first]"]
    assert receipt.recipients[0] == contact.email
    assert sim.call_count("*/OnlineInvoice") == 0  # the link is not read while sending: two calls a reminder
    assert receipt.sent_at == history[0].at


def test_the_same_idempotency_key_never_mails_twice(sim: XeroSimulator, xero: XeroProvider, synced: dict) -> None:
    invoice_id = mailable(sim)

    xero.send_reminder(request_for(synced, invoice_id))
    xero.send_reminder(request_for(synced, invoice_id))

    assert len(sim.mail) == 1
    assert len(sim.history(invoice_id)) == 1


def test_an_answer_lost_after_xero_mailed_is_retried_without_a_second_mail(
    sim: XeroSimulator, xero: XeroProvider, synced: dict
) -> None:
    invoice_id = mailable(sim)
    sim.faults.timeout(EMAIL, after_processing=True)

    xero.send_reminder(request_for(synced, invoice_id))

    assert sim.call_count(EMAIL) == 2
    assert len(sim.mail) == 1


def test_a_contact_without_email_is_refused_with_a_reason(sim: XeroSimulator, xero: XeroProvider,
                                                          synced: dict) -> None:
    invoice_id = mailable(sim)
    sim.org.change_contact(sim.org.invoices[invoice_id].contact_id, email=None)

    with pytest.raises(ReminderRefused) as refused:
        xero.send_reminder(request_for(synced, invoice_id))

    invoice = sim.org.invoices[invoice_id]
    assert "email address" in refused.value.reason and invoice.number in refused.value.reason
    assert sim.mail == [] and sim.history(invoice_id) == []


def test_an_invoice_no_longer_approved_is_refused(sim: XeroSimulator, xero: XeroProvider, synced: dict) -> None:
    invoice_id = mailable(sim)
    sim.org.void(invoice_id)

    with pytest.raises(ReminderRefused, match="VOIDED"):
        xero.send_reminder(request_for(synced, invoice_id))


def test_the_daily_email_limit_is_a_refusal_not_a_crash(sim: XeroSimulator, xero: XeroProvider,
                                                        synced: dict) -> None:
    sim.email_daily_limit = 1
    first, second = [i.invoice_id for i in sim.org.open_invoices() if sim.org.contacts[i.contact_id].email][:2]
    xero.send_reminder(request_for(synced, first, key="outbox-0001-first"))

    with pytest.raises(ReminderRefused, match="daily limit"):
        xero.send_reminder(request_for(synced, second, key="outbox-0002-first"))
    assert len(sim.mail) == 1


def test_a_history_failure_after_the_mail_went_out_returns_a_receipt_not_an_error(
    sim: XeroSimulator, xero: XeroProvider, synced: dict
) -> None:
    invoice_id = mailable(sim)
    sim.faults.server_error("/api.xro/2.0/Invoices/*/History", status=500, times=10)

    receipt = xero.send_reminder(request_for(synced, invoice_id))

    assert len(sim.mail) == 1
    assert "by hand" in receipt.detail and "[outbox-0001-first]" in receipt.detail


def test_several_invoices_in_one_reminder_are_refused_as_xero_mails_one_at_a_time(
    sim: XeroSimulator, xero: XeroProvider, synced: dict
) -> None:
    one, two = list(synced["invoices"].values())[:2]
    request = request_for(synced, one.platform_id).model_copy(update={"invoices": (one, two)})

    with pytest.raises(ReminderRefused, match="one invoice at a time"):
        xero.send_reminder(request)
    assert sim.mail == []


def test_find_note_recognises_the_key_after_a_crash(sim: XeroSimulator, xero: XeroProvider, synced: dict) -> None:
    invoice = synced["invoices"][mailable(sim)]
    xero.add_note(invoice, "Called the debtor: pays Friday", idempotency_key="outbox-0042-call")

    found = xero.find_note(invoice, "outbox-0042-call")

    assert found is not None and "pays Friday" in found.detail
    assert xero.find_note(invoice, "outbox-0043-call") is None


def test_a_long_note_is_cut_to_xeros_250_characters_keeping_the_key(
    sim: XeroSimulator, xero: XeroProvider, synced: dict
) -> None:
    invoice = synced["invoices"][mailable(sim)]

    xero.add_note(invoice, "x" * 400, idempotency_key="outbox-0099-note")

    details = sim.history(invoice.platform_id)[0].details
    assert len(details) <= 250 and details.endswith("[outbox-0099-note]")


def test_fetch_pdf_returns_a_valid_pdf(sim: XeroSimulator, xero: XeroProvider, synced: dict) -> None:
    invoice = next(iter(synced["invoices"].values()))

    pdf = xero.fetch_pdf(invoice)

    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\n(\d+)", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref")
    assert invoice.number.encode() in pdf


def test_xeros_own_reminders_being_on_gives_a_warning(sim: XeroSimulator, xero: XeroProvider) -> None:
    assert xero.warnings() == []
    sim.org.reminders_enabled = True

    assert "two sets of reminders" in xero.warnings()[0]


def test_tenants_are_the_organisations_the_user_consented_to(connect_xero, sim: XeroSimulator, tokens) -> None:
    other = sim.add_organisation("Second Company")
    xero = connect_xero(sim, tokens)  # the user ticks both organisations
    sim.add_organisation("Not Consented Ltd")

    tenants = xero.list_tenants()

    assert {(t.id, t.name) for t in tenants} == {(sim.org.tenant_id, sim.org.name), (other.tenant_id, other.name)}


def test_capabilities_say_xero_sends_its_own_text_one_invoice_at_a_time() -> None:
    caps = XeroProvider.capabilities
    assert caps.native_reminder and not caps.custom_message and not caps.consolidated_reminders


def test_the_payment_link_is_the_online_invoice_read_when_a_text_needs_it(
    sim: XeroSimulator, xero: XeroProvider, synced: dict
) -> None:
    invoice = synced["invoices"][mailable(sim)]
    assert invoice.payment_url is None  # not read during sync: one call per invoice would eat the day's budget

    calls = xero.api.calls
    link = xero.payment_url(invoice)

    assert link is not None and link.startswith("https://in.xero.com/")
    assert xero.api.calls == calls + 1
