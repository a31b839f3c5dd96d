"""Reminders through Exact's own mailing, notes and PDFs, end to end against the simulator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.models import Debtor, Invoice
from providers.base import ReminderRequest, SyncState
from providers.errors import NotFound, PlatformError, ReminderRefused
from providers.exact import ExactProvider
from providers.exact.simulator import ExactSimulator

from .conftest import DIVISION, connect


@pytest.fixture
def provider(sim: ExactSimulator) -> ExactProvider:
    return connect(sim)


@pytest.fixture
def synced(provider: ExactProvider) -> tuple[dict[str, Invoice], dict[str, Debtor]]:
    pages = list(provider.sync(SyncState()))
    return ({i.platform_id: i for p in pages for i in p.invoices},
            {d.platform_id: d for p in pages for d in p.debtors})


def request_for(invoice: Invoice, debtor: Debtor, **changes: object) -> ReminderRequest:
    fields = {"step": "reminder_1", "debtor": debtor, "invoices": (invoice,), "message": "Wij zien uw betaling graag "
              "binnen 7 dagen tegemoet.", "idempotency_key": f"key-{invoice.platform_id}"}
    return ReminderRequest.model_validate(fields | changes)


def with_email(invoices: dict[str, Invoice], debtors: dict[str, Debtor]) -> tuple[Invoice, Debtor]:
    invoice = next(i for i in invoices.values() if i.is_collectable and debtors[i.debtor_id].emails
                   and i.currency == "EUR")
    return invoice, debtors[invoice.debtor_id]


def test_a_reminder_re_sends_the_processed_invoice_with_our_text_and_notes_it(
        sim: ExactSimulator, provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    invoice, debtor = with_email(*synced)
    receipt = provider.send_reminder(request_for(invoice, debtor))
    [mail] = sim.mail
    assert mail.invoice_ids == (invoice.platform_id,) and mail.text.startswith("Wij zien uw betaling")
    assert mail.recipients == debtor.emails
    note = sim.divisions[DIVISION].notes[receipt.platform_reference]
    assert note.Account == debtor.platform_id and f"dunning-key:key-{invoice.platform_id}" in note.Notes
    # Exact does not say which address it mailed (the invoice's contact person, or the account): no guess
    assert receipt.recipients == () and "re-sent" in receipt.detail and "does not report the address" in receipt.detail
    assert provider.find_note(invoice, f"key-{invoice.platform_id}").platform_reference == receipt.platform_reference


def test_an_unprocessed_invoice_is_never_sent_through_the_print_endpoint(
        sim: ExactSimulator, provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    invoices, debtors = synced
    _, debtor = with_email(invoices, debtors)
    draft = next(i for i in sim.divisions[DIVISION].invoices.values() if i.Status == 20)
    fake = next(iter(invoices.values())).model_copy(update={"platform_id": draft.InvoiceID, "number": None})
    with pytest.raises(ReminderRefused, match="not processed"):
        provider.send_reminder(request_for(fake, debtor))
    assert sim.call_count("*/PrintedSalesInvoices", "POST") == 0 and sim.processed_by_api == []


def test_exact_refusing_to_re_send_becomes_a_refusal_with_its_reason(
        sim: ExactSimulator, provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    sim.resend_processed = "refuse"
    invoice, debtor = with_email(*synced)
    with pytest.raises(ReminderRefused, match="al verwerkt") as refused:
        provider.send_reminder(request_for(invoice, debtor))
    assert sim.mail == [] and sim.divisions[DIVISION].notes == {}
    assert refused.value.status == 500 and sim.call_count("*/PrintedSalesInvoices", "POST") == 1  # not retried


def test_a_debtor_without_email_is_refused_before_anything_is_sent(
        sim: ExactSimulator, provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    invoice, debtor = with_email(*synced)
    with pytest.raises(ReminderRefused, match="no e-mail address"):
        provider.send_reminder(request_for(invoice, debtor.model_copy(update={"emails": ()})))
    assert sim.call_count("*/PrintedSalesInvoices") == 0


def test_exact_reporting_an_email_error_is_a_refusal(
        sim: ExactSimulator, provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    invoice, debtor = with_email(*synced)
    sim.change_account(DIVISION, debtor.platform_id, Email=None, MainContact=None)
    with pytest.raises(ReminderRefused, match="did not e-mail"):
        provider.send_reminder(request_for(invoice, debtor))
    assert sim.mail == [] and sim.divisions[DIVISION].notes == {}


@pytest.mark.parametrize("changes", [{"delivery": "post"}, {"delivery": "manual"}])
def test_other_delivery_methods_become_tasks(provider: ExactProvider, synced: tuple[dict, dict],
                                             changes: dict[str, str]) -> None:
    invoice, debtor = with_email(*synced)
    with pytest.raises(ReminderRefused, match="by hand"):
        provider.send_reminder(request_for(invoice, debtor, **changes))


def test_several_invoices_in_one_reminder_are_refused(provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    invoices, debtors = synced
    invoice, debtor = with_email(invoices, debtors)
    with pytest.raises(ReminderRefused, match="one invoice per e-mail"):
        provider.send_reminder(request_for(invoice, debtor, invoices=(invoice, invoice)))


def test_an_outage_while_printing_is_not_called_a_refusal(
        sim: ExactSimulator, provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    invoice, debtor = with_email(*synced)
    sim.faults.timeout("*/PrintedSalesInvoices", after_processing=True)
    with pytest.raises(PlatformError) as failed:
        provider.send_reminder(request_for(invoice, debtor))
    assert not isinstance(failed.value, ReminderRefused) and failed.value.retryable
    assert sim.call_count("*/PrintedSalesInvoices") == 1  # a POST is never repeated blindly


def test_notes_are_added_and_found_by_key(sim: ExactSimulator, provider: ExactProvider,
                                          synced: tuple[dict, dict]) -> None:
    invoice = next(iter(synced[0].values()))
    assert provider.find_note(invoice, "call-12345678") is None
    receipt = provider.add_note(invoice, "Klant belt terug op vrijdag", idempotency_key="call-12345678")
    found = provider.find_note(invoice, "call-12345678")
    assert found.platform_reference == receipt.platform_reference
    assert found.sent_at == sim.clock.now()  # Exact's Created is Dutch local time written as UTC: read back exactly
    assert sim.divisions[DIVISION].notes[receipt.platform_reference].Subject == f"Invoice {invoice.label}"


def test_the_invoice_pdf_is_downloaded_with_the_bearer_token(sim: ExactSimulator, provider: ExactProvider,
                                                             synced: tuple[dict, dict]) -> None:
    invoice = next(i for i in synced[0].values() if i.outstanding > Decimal(0))
    pdf = provider.fetch_pdf(invoice)
    assert pdf.startswith(b"%PDF") and invoice.number.encode() in pdf
    assert sim.call_count("/docs/SysAttachment.aspx") == 1


def test_an_invoice_without_a_document_has_no_pdf(provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    invoice = next(iter(synced[0].values())).model_copy(update={"platform_id": "5b1f3c9e-0000-4000-8000-0000000000ff"})
    with pytest.raises(NotFound, match="no PDF"):
        provider.fetch_pdf(invoice)


def test_capabilities_say_what_exact_can_do() -> None:
    capabilities = ExactProvider.capabilities
    assert capabilities.native_reminder and capabilities.custom_message
    assert not capabilities.consolidated_reminders and capabilities.delivery_methods == ("email",)


def test_a_processed_status_written_as_text_is_still_processed(sim: ExactSimulator, provider: ExactProvider,
                                                                synced: tuple[dict, dict]) -> None:
    invoice, debtor = with_email(*synced)
    sim.divisions[DIVISION].invoices[invoice.platform_id].Status = "50"  # type: ignore[assignment]
    assert "re-sent" in provider.send_reminder(request_for(invoice, debtor)).detail
    assert len(sim.mail) == 1


def test_each_re_send_creates_a_document_the_batched_re_check_reads_as_the_trace(
        sim: ExactSimulator, provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    invoice, debtor = with_email(*synced)
    before = provider.recheck([invoice])[invoice.platform_id].trace
    assert before  # processing created the invoice's first document

    provider.send_reminder(request_for(invoice, debtor))
    after = provider.recheck([invoice])[invoice.platform_id].trace

    [new] = set(after) - set(before)
    document = sim.divisions[DIVISION].documents[new]
    assert document.pdf.startswith(b"%PDF") and document.Created
    assert provider.reminder_trace(request_for(invoice, debtor), {invoice.platform_id: list(before)},
                                   {invoice.platform_id: provider.recheck([invoice])[invoice.platform_id]}) is True
    assert provider.reminder_trace(request_for(invoice, debtor), {invoice.platform_id: list(after)},
                                   provider.recheck([invoice])) is False
    assert provider.trace_lost is None


def test_the_re_check_reads_processed_states_and_documents_in_batches_and_the_mail_reads_nothing_more(
        sim: ExactSimulator, provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    invoices = [i for i in synced[0].values() if i.number]
    provider.recheck(invoices)
    reads = sim.call_count("*/salesinvoice/SalesInvoices", "GET")
    assert len(invoices) > 30 and reads == sim.call_count("*/documents/Documents", "GET") == 2  # ~40 ids a call
    invoice, debtor = with_email(*synced)

    provider.send_reminder(request_for(invoice, debtor))

    assert sim.call_count("*/salesinvoice/SalesInvoices", "GET") == reads  # the re-check's answer served the mail


def test_an_exact_that_re_uses_the_document_is_noticed_at_the_first_re_send(
        sim: ExactSimulator, provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    sim.resend_document = "reuse"
    invoice, debtor = with_email(*synced)
    before = provider.recheck([invoice])

    provider.send_reminder(request_for(invoice, debtor))

    assert provider.trace_lost and "re-used the document" in provider.trace_lost
    assert provider.reminder_trace(request_for(invoice, debtor), {invoice.platform_id: list(
        before[invoice.platform_id].trace)}, before) is None


def test_the_first_re_send_of_a_run_is_checked_once_for_its_new_document(
        sim: ExactSimulator, provider: ExactProvider, synced: tuple[dict, dict]) -> None:
    invoices, debtors = synced
    mailable = [i for i in invoices.values() if i.is_collectable and debtors[i.debtor_id].emails
                and i.currency == "EUR"][:2]
    provider.recheck(mailable)
    reads = sim.call_count("*/documents/Documents", "GET")

    for invoice in mailable:
        provider.send_reminder(request_for(invoice, debtors[invoice.debtor_id]))

    assert sim.call_count("*/documents/Documents", "GET") == reads + 1  # the first print's document, looked up once
    assert provider.trace_lost is None and len(sim.mail) == 2


@pytest.mark.parametrize(("status", "asked"), [(403, 1), (503, 2)])
def test_notes_exact_refused_once_are_not_asked_again_in_the_run(
        provider: ExactProvider, synced: tuple[dict, dict], monkeypatch: pytest.MonkeyPatch, status: int,
        asked: int) -> None:
    # providers.md: more than 10 errors (400/401/403/404) an hour on one endpoint block the app there for an hour
    from datetime import UTC, datetime

    from providers.base import Receipt

    invoice, debtor = with_email(*synced)
    calls = []

    def refused(body: object) -> object:
        calls.append(body)
        raise PlatformError("Forbidden", status=status, retryable=status >= 500)

    monkeypatch.setattr(provider.exact, "add_note", refused)
    mailed = Receipt(platform_reference="doc-1", sent_at=datetime(2026, 12, 1, tzinfo=UTC), detail="re-sent")

    first = provider.record_reminder(request_for(invoice, debtor), mailed)
    second = provider.record_reminder(request_for(invoice, debtor, idempotency_key="key-second-one"), mailed)

    assert len(calls) == asked and "the note on the account failed" in first.detail
    assert first.platform_reference == second.platform_reference == "doc-1"  # the mail itself went out
    if status == 403:
        assert "Exact refused notes earlier in this run (Forbidden)" in second.detail
