"""End to end against the simulator: consolidated reminders, notes with the idempotency key, PDF, warnings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from providers.base import ReminderRequest, Token
from providers.errors import PlatformError, ReminderRefused
from providers.moneybird.simulator import MoneybirdSimulator, Problem

SEND = "/api/v2/*/sales_invoices/send_reminders.json"


@pytest.fixture
def late_pair(sim, provider, books):
    """Two late invoices of one company contact, synced into `books`."""
    contact = sim.new_contact(company_name="Drukkerij Letterzetter B.V.", email="info@letterzetter.example",
                              send_invoices_to_email="administratie@letterzetter.example")
    first = sim.new_invoice(contact.id, state="late", invoice_date=sim.today - timedelta(days=45))
    second = sim.new_invoice(contact.id, state="reminded", invoice_date=sim.today - timedelta(days=60),
                             reminder_count=1)
    books.apply(provider.sync(books.state()))
    return books.debtors[contact.id], books.invoices[first.id], books.invoices[second.id]


def reminder(debtor, *invoices, key="run-2026-11-23-acme-1", delivery="email"):
    return ReminderRequest(step="first_reminder", debtor=debtor, invoices=invoices, idempotency_key=key,
                           message="Beste klant, wij missen uw betaling.", delivery=delivery)


def test_one_consolidated_reminder_covers_both_invoices_of_the_contact(sim, provider, late_pair):
    debtor, first, second = late_pair
    versions = {i: sim.administration.invoices[i].version for i in (first.platform_id, second.platform_id)}

    receipt = provider.send_reminder(reminder(debtor, first, second))

    assert len(sim.reminders) == 1
    sent = sim.reminders[0]
    assert sent["contact_id"] == debtor.platform_id
    assert sorted(sent["sales_invoice_ids"]) == sorted([first.platform_id, second.platform_id])
    assert sent["reminder_text"] == "Beste klant, wij missen uw betaling."
    assert (sent["delivery_method"], sent["email_address"]) == ("Email", "administratie@letterzetter.example")
    for invoice_id, old_version in versions.items():
        held = sim.administration.invoices[invoice_id]
        assert held.state == "reminded" and held.version > old_version
        assert held.events[-1]["action"] == "sales_invoice_send_reminder_email"
    assert sim.administration.invoices[first.platform_id].reminder_count == 1
    assert sim.administration.invoices[second.platform_id].reminder_count == 2
    assert receipt.recipients == ("administratie@letterzetter.example",)
    assert sim.call_count("/api/v2/*/sales_invoices/send_reminders.json") == 1


def test_each_invoice_gets_a_note_with_step_and_idempotency_key(sim, provider, late_pair):
    debtor, first, second = late_pair

    receipt = provider.send_reminder(reminder(debtor, first, second, key="run-42-key-abc"))

    for invoice in (first, second):
        notes = sim.administration.invoices[invoice.platform_id].notes
        assert len(notes) == 1
        assert "first_reminder" in notes[0]["note"] and "dunning-key:run-42-key-abc" in notes[0]["note"]
    assert receipt.platform_reference == sim.administration.invoices[first.platform_id].notes[0]["id"]
    found = provider.find_note(second, "run-42-key-abc")
    second_note = sim.administration.invoices[second.platform_id].notes[0]
    assert found is not None and found.platform_reference == second_note["id"]
    assert provider.find_note(second, "run-42-key-ab") is None  # a prefix of the key is another key


def test_a_repeated_request_with_the_same_key_is_not_sent_twice(sim, provider, late_pair):
    debtor, first, second = late_pair
    request = reminder(debtor, first, second)
    provider.send_reminder(request)

    again = provider.send_reminder(request)

    assert len(sim.reminders) == 1
    assert "already sent" in again.detail


def test_invoices_in_two_workflows_go_out_as_two_reminders_in_one_call(sim, provider, books):
    contact = sim.new_contact(company_name="Studio Pixel", email="hi@pixel.example")
    other_workflow = sim.administration.workflows[1]["id"]
    a = sim.new_invoice(contact.id, state="late", invoice_date=sim.today - timedelta(days=40))
    b = sim.new_invoice(contact.id, state="late", invoice_date=sim.today - timedelta(days=40),
                        workflow_id=other_workflow)
    books.apply(provider.sync(books.state()))

    provider.send_reminder(reminder(books.debtors[contact.id], books.invoices[a.id], books.invoices[b.id]))

    assert sorted(len(r["sales_invoice_ids"]) for r in sim.reminders) == [1, 1]
    assert {r["workflow_id"] for r in sim.reminders} == {a.workflow_id, other_workflow}
    assert sim.call_count("/api/v2/*/sales_invoices/send_reminders.json") == 1


def test_post_delivery_is_recorded_as_manual_for_printing(sim, provider, late_pair):
    debtor, first, _ = late_pair

    receipt = provider.send_reminder(reminder(debtor, first, delivery="post"))

    assert sim.reminders[0]["delivery_method"] == "Manual"
    assert sim.reminders[0]["email_address"] is None and sim.mail == []
    assert "print and post" in receipt.detail and receipt.recipients == ()
    assert sim.administration.invoices[first.platform_id].notes[0]["todo"] is True  # on Moneybird's task list


def test_a_refused_to_do_still_leaves_the_note_with_the_key(sim, provider, late_pair):
    debtor, first, _ = late_pair
    sim.faults.server_error("/api/v2/*/sales_invoices/*/notes.json", status=422, method="POST")  # e.g. no assignee

    receipt = provider.send_reminder(reminder(debtor, first, delivery="post", key="run-7-letter"))

    notes = sim.administration.invoices[first.platform_id].notes
    assert len(notes) == 1 and notes[0]["todo"] is False and "run-7-letter" in notes[0]["note"]
    assert "could not be added" not in receipt.detail and len(sim.reminders) == 1


def test_an_invoice_paid_since_the_plan_refuses_the_reminder_and_sends_nothing(sim, provider, late_pair):
    debtor, first, second = late_pair
    sim.pay(second.platform_id)

    with pytest.raises(ReminderRefused) as refused:
        provider.send_reminder(reminder(debtor, first, second))

    assert second.number in refused.value.reason and "paid" in refused.value.reason
    assert not refused.value.cannot_carry  # no other channel either: nothing is owed
    assert sim.reminders == [] and sim.administration.invoices[first.platform_id].notes == []


def test_an_invoice_paused_in_moneybird_is_not_reminded_behind_the_users_back(sim, provider, late_pair):
    debtor, first, second = late_pair
    sim.administration.invoices[second.platform_id].paused = True  # the bookkeeper held its reminders in Moneybird

    with pytest.raises(ReminderRefused, match=f"{second.number} is paused in Moneybird") as refused:
        provider.send_reminder(reminder(debtor, first, second))

    assert not refused.value.cannot_carry  # not for our own mail server either: the user said to hold it
    assert sim.reminders == [] and sim.mail == []
    assert provider.send_reminder(reminder(debtor, first)).recipients  # the other invoice is reminded on its own


def test_an_invoice_not_yet_overdue_is_not_reminded(sim, provider, books):
    open_invoice = sim.invoices_in("open")[0]
    books.apply(provider.sync(books.state()))

    with pytest.raises(ReminderRefused, match="reminds only invoices that are late") as refused:
        provider.send_reminder(reminder(books.debtors[open_invoice.contact_id], books.invoices[open_invoice.id]))
    assert refused.value.cannot_carry  # the step is fine, Moneybird's mailing cannot carry it: our mail server may
    assert sim.reminders == []


def test_a_debtor_without_email_is_refused_for_email_delivery(sim, provider, books):
    contact = sim.new_contact(firstname="Sanne", lastname="Smit")
    invoice = sim.new_invoice(contact.id, state="late", invoice_date=sim.today - timedelta(days=40))
    books.apply(provider.sync(books.state()))

    with pytest.raises(ReminderRefused, match="no e-mail address"):
        provider.send_reminder(reminder(books.debtors[contact.id], books.invoices[invoice.id]))
    assert sim.reminders == []


def test_moneybird_refusing_the_reminder_becomes_a_refusal_not_a_crash(sim, provider, late_pair):
    debtor, first, _ = late_pair
    sim.faults.server_error(SEND, status=422)

    with pytest.raises(ReminderRefused, match="Moneybird refused the reminder") as refused:
        provider.send_reminder(reminder(debtor, first))
    assert str(refused.value).count("acme-moneybird:") == 1 and first.number in refused.value.reason
    assert sim.administration.invoices[first.platform_id].notes == []


def test_an_outage_on_send_is_never_retried_blindly(sim, provider, late_pair):
    debtor, first, _ = late_pair
    sim.faults.server_error(SEND, status=503)

    with pytest.raises(PlatformError) as failure:
        provider.send_reminder(reminder(debtor, first))

    assert sim.call_count(SEND) == 1  # the outbox reconciles through find_note instead of sending again
    assert failure.value.retryable


def test_a_send_whose_answer_was_lost_is_recognised_and_recorded_not_repeated(sim, provider, late_pair):
    debtor, first, second = late_pair
    sim.faults.timeout(SEND, after_processing=True)  # Moneybird sent it, the answer never arrived

    receipt = provider.send_reminder(reminder(debtor, first, second, key="lost-answer-key"))

    assert len(sim.reminders) == 1 and sim.call_count(SEND) == 1
    assert provider.find_note(first, "lost-answer-key") is not None
    assert receipt.recipients == ("administratie@letterzetter.example",)


def test_a_send_that_timed_out_before_moneybird_acted_stays_an_error(sim, provider, late_pair):
    debtor, first, _ = late_pair
    sim.faults.timeout(SEND)

    with pytest.raises(PlatformError):
        provider.send_reminder(reminder(debtor, first))
    assert sim.reminders == [] and sim.administration.invoices[first.platform_id].notes == []


def test_a_note_on_its_own_carries_the_key(sim, provider, late_pair):
    _, first, _ = late_pair

    receipt = provider.add_note(first, "Called: promised to pay Friday.", idempotency_key="call-note-0001")

    note = sim.administration.invoices[first.platform_id].notes[-1]
    assert note["note"] == "Called: promised to pay Friday. dunning-key:call-note-0001"
    assert note["todo"] is False
    assert receipt.platform_reference == note["id"]
    assert provider.find_note(first, "call-note-0001") is not None


def test_pdf_is_fetched_from_the_signed_url_without_the_bearer_token(sim, provider, late_pair):
    _, first, _ = late_pair

    pdf = provider.fetch_pdf(first)

    assert pdf.startswith(b"%PDF-") and first.number.encode() in pdf
    assert len(sim.storage_requests) == 1
    assert sim.storage_requests[0]["authorization"] is None


def test_warnings_name_workflows_that_send_reminders_automatically(sim, provider):
    assert provider.warnings() == []

    sim.set_automatic_reminders(True)
    warnings = provider.warnings()

    assert len(warnings) == 2  # the two invoice workflows; the estimate workflow does not remind
    assert any("'Standaard'" in w for w in warnings) and any("'Zakelijk'" in w for w in warnings)
    assert all("Instellingen → Workflows" in w for w in warnings)


def test_workflows_listed_without_steps_are_reported_as_unchecked(sim, provider):
    for workflow in sim.administration.workflows:
        workflow.pop("steps")  # as in the OpenAPI description of 2025, before steps were listed

    warnings = provider.warnings()

    assert len(warnings) == 1 and "could not check" in warnings[0]
    assert "Standaard" in warnings[0] and "Zakelijk" in warnings[0]


def test_a_pdf_link_that_died_before_use_is_asked_for_once_more(sim, provider, late_pair):
    _, first, _ = late_pair
    sim.faults.server_error("/*/download", status=403)  # the signed URL expired on the storage host

    pdf = provider.fetch_pdf(first)

    assert pdf.startswith(b"%PDF-")
    assert sim.call_count("/api/v2/*/download_pdf.json") == 2


def test_invoices_without_workflow_style_or_identity_are_completed_from_the_administrations_defaults(
    sim, provider, late_pair
):
    debtor, first, second = late_pair
    held = sim.administration.invoices[first.platform_id]
    sim.corrupt(first.platform_id, workflow_id=None, document_style_id=None, identity_id=None)

    provider.send_reminder(reminder(debtor, first, second))

    # the defaults are the ids the invoices really carry, so both still go out as one reminder
    assert len(sim.reminders) == 1 and len(sim.reminders[0]["sales_invoice_ids"]) == 2
    assert (sim.reminders[0]["workflow_id"], sim.reminders[0]["document_style_id"],
            sim.reminders[0]["identity_id"]) == (held.workflow_id, held.document_style_id, held.identity_id)
    assert sim.call_count("/api/v2/*/workflows.json") == 1
    assert sim.call_count("/api/v2/*/document_styles.json") == 1
    assert sim.call_count("/api/v2/*/identities/default.json") == 0  # the style names its identity


def test_a_complete_invoice_costs_no_lookups_of_defaults(sim, provider, late_pair):
    debtor, first, second = late_pair

    provider.send_reminder(reminder(debtor, first, second))

    assert sim.call_count("/api/v2/*/workflows.json") == sim.call_count("/api/v2/*/document_styles.json") == 0


def test_without_any_identity_the_default_identity_is_used_when_the_settings_scope_was_granted(
    sim, tokens, connect, late_pair
):
    debtor, first, _ = late_pair
    sim.corrupt(first.platform_id, identity_id=None)
    for style in sim.administration.document_styles:
        style.pop("identity_id")
    tokens.save("acme-moneybird", Token.from_response(
        sim.oauth.grant_tokens("dunning-app", scope="sales_invoices settings"), now=sim.clock.now()))
    provider = connect(options={"settings_scope": True})

    provider.send_reminder(reminder(debtor, first))

    assert sim.reminders[0]["identity_id"] == sim.administration.identity["id"]
    assert sim.call_count("/api/v2/*/identities/default.json") == 1


def test_without_any_identity_or_the_settings_scope_the_reminder_is_refused_with_the_way_out(
    sim, provider, late_pair
):
    debtor, first, _ = late_pair
    sim.corrupt(first.platform_id, identity_id=None)
    for style in sim.administration.document_styles:
        style.pop("identity_id")

    with pytest.raises(ReminderRefused, match="settings_scope = true") as refused:
        provider.send_reminder(reminder(debtor, first))

    assert first.number in refused.value.reason and "identity" in refused.value.reason
    assert sim.reminders == [] and sim.administration.invoices[first.platform_id].notes == []


def test_an_invoice_removed_in_moneybird_refuses_the_reminder_and_sends_nothing(sim, provider, late_pair):
    debtor, first, second = late_pair
    sim.delete_invoice(second.platform_id)

    with pytest.raises(ReminderRefused, match=f"{second.number} no longer exists"):
        provider.send_reminder(reminder(debtor, first, second))
    assert sim.reminders == []


def test_an_invoice_the_recheck_cannot_read_keeps_its_stored_state_and_is_not_taken_for_closed(
        sim, provider, late_pair):
    debtor, first, second = late_pair
    sim.corrupt(second.platform_id, total_unpaid="abc")
    sim.delete_invoice(first.platform_id)

    fresh = provider.recheck([first, second])

    assert fresh[first.platform_id].invoice is None  # not returned: gone from the platform
    assert second.platform_id not in fresh  # returned but unreadable: not checked (base: "missing: not checked")


def test_manual_delivery_sends_no_address_and_leaves_no_to_do(sim, provider, late_pair):
    debtor, first, _ = late_pair

    receipt = provider.send_reminder(reminder(debtor, first, delivery="manual"))

    assert sim.reminders[0]["delivery_method"] == "Manual" and sim.mail == []
    assert receipt.recipients == () and "manual delivery" in receipt.detail
    assert sim.administration.invoices[first.platform_id].notes[0]["todo"] is False


def test_the_reminder_goes_to_the_contacts_invoice_addresses_as_moneybird_holds_them_now(sim, provider, late_pair):
    debtor, first, second = late_pair
    both = "boekhouding@letterzetter.example; ceo@letterzetter.example"
    sim.change_contact(debtor.platform_id, send_invoices_to_email=both)

    receipt = provider.send_reminder(reminder(debtor, first, second))

    assert sim.reminders[0]["email_address"] == both
    assert receipt.recipients == ("boekhouding@letterzetter.example", "ceo@letterzetter.example")


def test_a_server_that_takes_one_address_only_gets_the_first_and_the_reminder_goes_out_once(
    sim, provider, late_pair, monkeypatch
):
    debtor, first, _ = late_pair
    sim.change_contact(debtor.platform_id, send_invoices_to_email="a@letterzetter.example, b@letterzetter.example")
    check = MoneybirdSimulator._check_reminder

    def one_address(self, admin, entry):
        if "," in (entry.get("email_address") or ""):
            raise Problem(422, {"error": {"email_address": ["is invalid"]},
                                "details": {"email_address": [{"error": "invalid"}]}})
        return check(self, admin, entry)

    monkeypatch.setattr(MoneybirdSimulator, "_check_reminder", one_address)

    receipt = provider.send_reminder(reminder(debtor, first))

    assert sim.call_count(SEND) == 2 and len(sim.reminders) == 1
    assert sim.reminders[0]["email_address"] == "a@letterzetter.example"
    assert receipt.recipients == ("a@letterzetter.example",)


def test_an_invoice_without_workflow_takes_its_contacts_invoice_workflow_before_the_default(sim, provider, books):
    contact = sim.new_contact(company_name="Studio Pixel", email="hi@pixel.example")
    business = sim.administration.workflows[1]["id"]  # not the default workflow
    invoice = sim.new_invoice(contact.id, state="late", invoice_date=sim.today - timedelta(days=40),
                              workflow_id=business)
    embedded = sim.contact_json(sim.administration, contact) | {"invoice_workflow_id": business}
    sim.corrupt(invoice.id, workflow_id=None, contact=embedded)
    books.apply(provider.sync(books.state()))

    provider.send_reminder(reminder(books.debtors[contact.id], books.invoices[invoice.id]))

    assert sim.reminders[0]["workflow_id"] == business
    assert sim.call_count("/api/v2/*/workflows.json") == 0
