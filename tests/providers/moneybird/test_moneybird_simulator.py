"""The simulator behaves like Moneybird where the adapter could get it wrong (filters, paging, errors, limits)."""

from __future__ import annotations

import urllib.parse
from datetime import timedelta

import httpx
import pytest

from providers.moneybird.simulator import MoneybirdSimulator


@pytest.fixture
def api(sim, tokens):
    token = tokens.load("acme-moneybird").access_token.get_secret_value()
    client = httpx.Client(transport=sim.transport(), base_url=f"https://moneybird.com/api/v2/{sim.administration_id}/",
                          headers={"Authorization": f"Bearer {token}"})
    yield client
    client.close()


def test_without_a_filter_only_this_years_invoices_are_listed(sim, api):
    listed = {r["id"] for r in api.get("sales_invoices/synchronization.json").json()}

    this_year = {i.id for i in sim.administration.invoices.values() if i.invoice_date.year == sim.today.year}
    assert listed == this_year and len(this_year) < len(sim.administration.invoices)


def test_state_values_are_ored_and_unknown_filter_keys_ignored(sim, api):
    listed = api.get("sales_invoices/synchronization.json", params={"filter": "state:late|reminded,colour:blue"})

    assert {r["id"] for r in listed.json()} == {i.id for i in sim.invoices_in("late", "reminded")}


def test_an_unknown_state_is_a_400_with_moneybird_body(api):
    response = api.get("sales_invoices.json", params={"filter": "state:overdue"})

    assert response.status_code == 400
    assert response.json() == {"error": "Status is not included in the list", "symbolic": {"filter": "invalid"}}


def test_per_page_above_100_is_refused(api):
    response = api.get("sales_invoices.json", params={"filter": "state:all", "per_page": 101})

    assert response.status_code == 400 and response.json() == {"error": "per_page does not have a valid value"}


def test_listing_pages_link_next_and_prev_and_end_with_an_empty_page(sim, api):
    first = api.get("sales_invoices.json", params={"filter": "state:all", "per_page": 100})
    next_url = first.links["next"]["url"]
    second = api.get(next_url)

    assert len(first.json()) == 100 and "prev" not in first.links
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(next_url).query)["page"] == ["2"]
    assert second.links["prev"]["url"]
    past_end = api.get("sales_invoices.json", params={"filter": "state:all", "per_page": 100, "page": 99})
    assert past_end.status_code == 200 and past_end.json() == []


def test_the_synchronization_post_silently_drops_ids_past_100(sim, api):
    ids = [i.id for i in sim.administration.invoices.values()][:130]

    response = api.post("sales_invoices/synchronization.json", json={"ids": ids})

    assert response.status_code == 200 and [r["id"] for r in response.json()] == ids[:100]


def test_archived_contacts_are_left_out_unless_asked_for(sim, api):
    archived = sim.new_contact(company_name="Gesloten B.V.", archived=True)

    plain = {r["id"] for r in api.get("contacts/synchronization.json").json()}
    every = {r["id"] for r in api.get("contacts/synchronization.json", params={"include_archived": "true"}).json()}

    assert archived.id not in plain and archived.id in every


def test_every_change_gets_a_new_version_even_within_one_second(sim):
    invoice = sim.invoices_in("late")[0]
    seen = [invoice.version]
    for _ in range(3):
        sim.change(invoice.id, reference="again")
        seen.append(invoice.version)

    assert seen == sorted(set(seen))


def test_pause_twice_and_resume_unpaused_are_errors(sim, api):
    invoice = sim.invoices_in("late")[0]

    paused = api.post(f"sales_invoices/{invoice.id}/pause.json", json={})
    again = api.post(f"sales_invoices/{invoice.id}/pause.json", json={})
    resumed = api.post(f"sales_invoices/{invoice.id}/resume.json", json={})
    unpaused = api.post(f"sales_invoices/{invoice.id}/resume.json", json={})

    assert paused.status_code == 201 and paused.json()["paused"] and paused.json()["next_reminder"] == "2099-01-01"
    assert again.status_code == 422 and "already paused" in again.json()["error"]
    assert resumed.status_code == 201 and not resumed.json()["paused"]
    assert unpaused.status_code == 422 and "isn't paused" in unpaused.json()["error"]


def test_send_reminders_validates_parameters_then_data(sim, api):
    invoice = sim.invoices_in("late")[0]
    entry = {"contact_id": invoice.contact_id, "workflow_id": invoice.workflow_id,
             "document_style_id": invoice.document_style_id, "identity_id": invoice.identity_id,
             "sales_invoice_ids": [invoice.id]}
    paid = sim.invoices_in("paid")[0]

    missing = api.post("sales_invoices/send_reminders.json",
                       json={"sales_invoice_reminders": [{k: v for k, v in entry.items() if k != "identity_id"}]})
    bad_method = api.post("sales_invoices/send_reminders.json",
                          json={"sales_invoice_reminders": [entry | {"delivery_method": "Post"}]})
    wrong_state = api.post("sales_invoices/send_reminders.json", json={"sales_invoice_reminders": [
        entry | {"contact_id": paid.contact_id, "sales_invoice_ids": [paid.id]}]})

    assert missing.status_code == 400 and missing.json()["symbolic"] == {"identity_id": "required"}
    assert bad_method.status_code == 400 and "delivery_method" in bad_method.json()["error"]
    assert wrong_state.status_code == 422 and "sales_invoice_ids" in wrong_state.json()["error"]
    assert sim.reminders == []
    ok = api.post("sales_invoices/send_reminders.json", json={"sales_invoice_reminders": [entry]})
    assert (ok.status_code, ok.json()) == (200, 200) and len(sim.reminders) == 1


def test_the_151st_request_in_five_minutes_gets_moneybirds_429(sim, api):
    for _ in range(150):
        assert api.get("workflows.json").status_code == 200

    refused = api.get("workflows.json")

    assert refused.status_code == 429 and refused.text == "Retry later"
    reset = int(refused.headers["RateLimit-Reset"])
    assert refused.headers["RateLimit-Limit"] == "150" and refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) == reset - int(sim.clock.time())
    sim.clock.advance(reset - sim.clock.time())
    assert api.get("workflows.json").status_code == 200


def test_retry_after_can_be_given_as_an_epoch_timestamp(tokens):
    sim = MoneybirdSimulator(seed=1, invoices=0, contacts=0, retry_after="epoch")
    response = sim.rate_limited_response(30)

    assert int(response.headers["Retry-After"]) == int(sim.clock.time()) + 30


def test_bad_tokens_and_missing_records_answer_in_moneybird_words(sim, api):
    bad = api.get("workflows.json", headers={"Authorization": "Bearer nope"})
    missing = api.get("sales_invoices/1.json")
    no_scope = api.get("identities/default.json")

    assert bad.status_code == 401
    assert bad.json() == {"error": "token is invalid", "symbolic": {"request": "invalid_grant"}}
    assert missing.status_code == 404
    assert missing.json() == {"error": "record not found", "symbolic": {"id": "not_found"}}
    assert no_scope.status_code == 401 and no_scope.json() == {"error": "No access to [:settings]"}


def test_the_signed_pdf_url_is_on_another_host_and_dies_after_30_seconds(sim, api):
    invoice = sim.invoices_in("late")[0]
    first = api.get(f"sales_invoices/{invoice.id}/download_pdf.json")
    later = api.get(f"sales_invoices/{invoice.id}/download_pdf.json")
    storage = httpx.Client(transport=sim.transport())

    assert first.status_code == 302
    assert urllib.parse.urlsplit(first.headers["Location"]).hostname == sim.storage_host
    assert storage.get(first.headers["Location"]).content.startswith(b"%PDF-")
    assert storage.get(later.headers["Location"], headers={"Authorization": "Bearer x"}).status_code == 400
    sim.clock.advance(31)
    assert storage.get(later.headers["Location"]).status_code == 403
    assert [r["authorization"] for r in sim.storage_requests] == [None, "Bearer x", None]


def test_the_token_endpoint_gives_no_expiry_and_a_refresh_gives_a_new_pair(sim):
    answer = sim.oauth.grant_tokens("dunning-app")
    token = httpx.Client(transport=sim.transport()).post("https://moneybird.com/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": answer["refresh_token"],
        "client_id": "dunning-app", "client_secret": "s3cret-app-value"})

    assert "expires_in" not in answer and token.status_code == 200
    assert token.json()["refresh_token"] != answer["refresh_token"]
    assert set(token.json()) == {"access_token", "token_type", "refresh_token", "scope", "created_at"}


def test_seeding_is_deterministic():
    a, b = MoneybirdSimulator(seed=5, invoices=30), MoneybirdSimulator(seed=5, invoices=30)

    assert [(i.id, i.number, i.state, i.total) for i in a.administration.invoices.values()] == [
        (i.id, i.number, i.state, i.total) for i in b.administration.invoices.values()]
    assert any(i.due_date < a.today - timedelta(days=365) for i in a.invoices_in("late", "reminded"))


def test_open_invoices_fall_due_as_the_clock_moves(sim):
    invoice = sim.invoices_in("open")[0]
    version = invoice.version

    sim.clock.advance((invoice.due_date - sim.today).days * 86_400 + 86_400)

    assert invoice.id in {i.id for i in sim.invoices_in("late")}
    assert invoice.version > version
    assert invoice.events[-1]["action"] == "sales_invoice_state_changed_to_late"
