"""End to end against the simulator: full and incremental sync, call counts, state changes, limits and faults."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from connector.models import DebtorKind
from connector.store import Store
from connector.sync import sync_connection
from providers.errors import AuthorizationExpired, PlatformError
from providers.moneybird.simulator import MoneybirdSimulator
from providers.streams import marker_of

SYNC_GET = "/api/v2/*/sales_invoices/synchronization.json"
CONTACTS = "/api/v2/*/contacts/synchronization.json"


def test_full_sync_reads_every_open_invoice_including_previous_years(sim, provider, books, simulator_open_ids):
    books.apply(provider.sync(books.state()))

    expected = simulator_open_ids()
    assert books.open_ids == expected
    assert any(sim.administration.invoices[i].invoice_date.year < sim.today.year for i in expected), (
        "the seed must hold old open invoices, which Moneybird's default filter (this year) would hide"
    )
    assert {i.debtor_id for i in books.invoices.values()} <= set(books.debtors)
    assert books.problems == []
    # the minimum: two id/version listings, then one POST per 100 open invoices; contacts come embedded
    assert provider.api.calls == 2 + math.ceil(len(expected) / 100)
    assert sim.call_count(SYNC_GET, "POST") == math.ceil(len(expected) / 100)
    assert sim.call_count("/api/v2/*/contacts/synchronization.json", "POST") == 0


def test_the_sync_listing_always_sends_the_open_state_filter(sim, provider, books):
    books.apply(provider.sync(books.state()))

    listing = [c for c in sim.calls if c.method == "GET" and c.path.endswith("sales_invoices/synchronization.json")]
    assert len(listing) == 1
    assert "filter=state%3Aopen%7Cpending_payment%7Clate%7Creminded" in listing[0].query


def test_mapped_invoice_carries_moneybird_amounts_dates_and_debtor(sim, provider, books):
    contact = sim.new_contact(company_name="Bakkerij Brood B.V.", email="info@brood.example",
                              send_invoices_to_email="facturen@brood.example", chamber_of_commerce="12345678",
                              tax_number="NL001234567B01", address1="Hoofdstraat 1", zipcode="1234 AB",
                              city="Utrecht")
    invoice = sim.new_invoice(contact.id, total_excl_tax="100.00", invoice_date=sim.today - timedelta(days=40),
                              state="late")
    sim.partial_payment(invoice.id, "21.00")

    books.apply(provider.sync(books.state()))

    mapped = books.invoices[invoice.id]
    assert (mapped.number, mapped.status, mapped.is_open) == (invoice.number, "late", True)
    assert (mapped.total, mapped.amount_paid, mapped.outstanding) == (Decimal("121.00"), Decimal("21.0"),
                                                                      Decimal("100.0"))
    assert mapped.due_date == sim.today - timedelta(days=26)
    assert marker_of(mapped.version) == str(sim.administration.invoices[invoice.id].version)
    assert mapped.payment_url and mapped.last_modified is not None and mapped.last_modified.tzinfo is not None
    debtor = books.debtors[contact.id]
    assert debtor.kind is DebtorKind.BUSINESS
    assert debtor.emails == ("facturen@brood.example", "info@brood.example")
    assert (debtor.coc_number, debtor.vat_number, debtor.address.city) == ("12345678", "NL001234567B01", "Utrecht")


def test_unchanged_second_sync_costs_one_listing_call_per_resource(sim, provider, books):
    books.apply(provider.sync(books.state()))
    before = provider.api.calls

    pages = list(provider.sync(books.state()))

    assert provider.api.calls - before == 2  # the two synchronization GETs, nothing else
    assert sum(len(p.invoices) + len(p.debtors) + len(p.closed_invoice_ids) for p in pages) == 0


def test_incremental_sync_fetches_only_changed_and_new_invoices(sim, provider, books):
    books.apply(provider.sync(books.state()))
    late = sim.invoices_in("late")
    sim.partial_payment(late[0].id, "10.00")
    sim.change(late[1].id, reference="Disputed: see mail")
    fresh = sim.new_invoice(late[2].contact_id, state="late", invoice_date=sim.today - timedelta(days=30))
    before_posts = sim.call_count(SYNC_GET, "POST")

    pages = list(provider.sync(books.state()))
    books.apply(pages)

    fetched = {i.platform_id for p in pages for i in p.invoices}
    assert fetched == {late[0].id, late[1].id, fresh.id}
    assert sim.call_count(SYNC_GET, "POST") - before_posts == 1
    assert books.invoices[late[0].id].outstanding == late[0].unpaid
    assert books.invoices[late[1].id].reference == "Disputed: see mail"


def test_invoices_that_left_the_open_set_are_closed_on_evidence_only(sim, provider, books):
    books.apply(provider.sync(books.state()))
    paid, written_off, deleted = sim.invoices_in("late")[:3]
    sim.pay(paid.id)
    sim.change(written_off.id, state="uncollectible")
    sim.delete_invoice(deleted.id)
    posts = sim.call_count(SYNC_GET, "POST")

    pages = list(provider.sync(books.state()))
    books.apply(pages)

    # the leavers are asked for by id (one POST for all three, and once more for the one missing from the answer):
    # paid and written off are closed as returned ...
    assert {i.platform_id for p in pages for i in p.invoices if not i.is_open} == {paid.id, written_off.id}
    assert not books.invoices[paid.id].is_open and not books.invoices[written_off.id].is_open
    assert sim.call_count(SYNC_GET, "POST") == posts + 2
    # ... one Moneybird does not return at all is read directly, and its `record not found` closes it as deleted
    assert [i for p in pages for i in p.deleted_invoice_ids] == [deleted.id]
    assert not books.invoices[deleted.id].is_open and not [a for p in pages for a in p.anomalies]
    assert sim.call_count(f"/api/v2/*/sales_invoices/{deleted.id}.json", "GET") == 1


def test_a_contact_changed_on_its_own_is_refetched_in_one_call(sim, provider, books):
    books.apply(provider.sync(books.state()))
    contact_id = next(iter(books.debtors))
    sim.change_contact(contact_id, email="nieuw@example.nl", send_invoices_to_email=None)

    pages = list(provider.sync(books.state()))
    books.apply(pages)

    assert [d.platform_id for p in pages for d in p.debtors] == [contact_id]
    assert books.debtors[contact_id].emails == ("nieuw@example.nl",)
    assert sim.call_count(CONTACTS, "POST") == 1


def test_debtor_kind_follows_the_per_contact_override(sim, connect, books):
    person = sim.new_contact(firstname="Piet", lastname="Zzp", email="piet@zzp.example")
    sim.new_invoice(person.id, state="late", invoice_date=sim.today - timedelta(days=30))
    provider = connect(options={"debtor_kinds": {person.id: "business"}})

    books.apply(provider.sync(books.state()))

    assert books.debtors[person.id].kind is DebtorKind.BUSINESS


def test_malformed_record_is_reported_by_number_and_retried_next_sync(sim, provider, books, simulator_open_ids):
    broken = sim.invoices_in("late")[0]
    sim.corrupt(broken.id, total_unpaid="twelve euros")

    books.apply(provider.sync(books.state()))

    assert broken.id not in books.invoices
    assert len(books.problems) == 1 and broken.number in books.problems[0] and "total_unpaid" in books.problems[0]
    assert books.open_ids == simulator_open_ids() - {broken.id}

    sim.corrupt(broken.id, total_unpaid=str(broken.unpaid))
    books.apply(provider.sync(books.state()))
    assert books.open_ids == simulator_open_ids()


def test_a_record_spoiled_in_transit_is_skipped_and_named(sim, provider, books, simulator_open_ids):
    sim.faults.malformed(SYNC_GET, method="POST")

    books.apply(provider.sync(books.state()))

    assert len(books.problems) == 1 and "sales invoice id" in books.problems[0]
    assert len(books.open_ids) == len(simulator_open_ids()) - 1
    books.apply(provider.sync(books.state()))
    assert books.open_ids == simulator_open_ids()


def test_a_429_mid_sync_waits_for_the_window_and_loses_nothing(sim, provider, books, simulator_open_ids):
    sim.faults.rate_limited(SYNC_GET, method="POST", retry_after=42)
    start = sim.clock.time()

    pages = list(provider.sync(books.state()))
    books.apply(pages)

    ids = [i.platform_id for p in pages for i in p.invoices]
    assert len(ids) == len(set(ids))  # nothing twice
    assert books.open_ids == simulator_open_ids()
    assert sim.clock.time() - start >= 42


def test_another_app_using_the_shared_budget_makes_the_sync_wait_not_fail(sim, provider, books, simulator_open_ids):
    grant = next(iter(sim.oauth.grants.values()))
    for _ in range(149):  # another app of this user spent almost the whole 5-minute window
        sim.rate.hit(grant.id)
    window_resets_at = (sim.clock.time() // 300 + 1) * 300

    books.apply(provider.sync(books.state()))

    assert books.open_ids == simulator_open_ids()
    assert sim.clock.time() >= window_resets_at  # it got a 429 and waited for the next window


def test_outages_on_the_batch_fetch_are_retried(sim, provider, books, simulator_open_ids):
    sim.faults.server_error(SYNC_GET, method="POST", status=503)
    sim.faults.timeout(SYNC_GET, method="POST")

    books.apply(provider.sync(books.state()))

    assert books.open_ids == simulator_open_ids()


def test_a_lasting_outage_stops_the_sync_and_the_next_run_carries_on_without_duplicates(
    sim, provider, books, simulator_open_ids, monkeypatch
):
    # batches asked one by one (not read ahead in parallel), so the outage finds some still to ask
    monkeypatch.setattr(provider.api.profile, "max_in_flight", 1)
    pages = provider.sync(books.state())
    books.apply([next(pages)])  # the first batch got through before the outage
    sim.faults.server_error(SYNC_GET, method="POST", times=30)
    with pytest.raises(PlatformError) as failure:
        books.apply(pages)
    assert failure.value.retryable
    first_run = set(books.invoices)
    sim.faults.clear()

    pages = list(provider.sync(books.state()))
    books.apply(pages)

    second_run = [i.platform_id for p in pages for i in p.invoices]
    assert not first_run & set(second_run)  # what was stored is not fetched again
    assert books.open_ids == simulator_open_ids()


def test_a_server_that_returns_fewer_than_100_records_per_batch_loses_nothing(sim, provider, books,
                                                                              simulator_open_ids, monkeypatch):
    original = MoneybirdSimulator._ids

    def cap_at_60(request):  # an implementation stricter than documented
        return original(request)[:60]

    monkeypatch.setattr(MoneybirdSimulator, "_ids", staticmethod(cap_at_60))

    books.apply(provider.sync(books.state()))

    assert books.open_ids == simulator_open_ids()


def test_full_resync_reads_everything_again(sim, provider, books, simulator_open_ids):
    books.apply(provider.sync(books.state()))

    posts = sim.call_count(SYNC_GET, "POST")
    sim.change(next(iter(simulator_open_ids())), due_date=sim.today + timedelta(days=3))  # one change

    pages = list(provider.sync(books.state(full=True)))

    # every open invoice is read again (100 a call); what is stored is what differs from the store's content
    assert sim.call_count(SYNC_GET, "POST") - posts >= math.ceil(len(simulator_open_ids()) / 100)
    assert {i.platform_id for p in pages for i in p.invoices} == {next(iter(simulator_open_ids()))}


def test_sync_through_the_store_and_the_sync_job(sim, connect, tmp_path, simulator_open_ids):
    provider = connect()
    with Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}") as store:
        store.ensure_connection("acme-moneybird", "moneybird", sim.administration_id)
        first = sync_connection(store, provider, "acme-moneybird")
        late = sim.invoices_in("late")[0]
        sim.pay(late.id)
        second = sync_connection(store, provider, "acme-moneybird")
        stored = store.invoice("acme-moneybird", late.id)
        events = store.events("acme-moneybird", late.id)

    assert first.ok and first.problems == []
    assert first.fetched == first.changed == len(simulator_open_ids()) + 1  # + the one paid since
    # the paid one is asked for by id (the evidence) before it is closed: one call more than an unchanged sync
    assert (second.ok, second.api_calls, second.fetched, second.closed) == (True, 3, 1, 1)
    assert stored is not None and not stored.is_open
    assert any(e.kind == "closed" for e in events)


def test_a_rejected_token_mid_sync_is_refreshed_once_and_the_new_pair_is_kept(sim, provider, tokens, books,
                                                                              simulator_open_ids):
    old = tokens.load("acme-moneybird")
    sim.faults.expired_token(SYNC_GET, method="POST")

    books.apply(provider.sync(books.state()))

    new = tokens.load("acme-moneybird")
    assert books.open_ids == simulator_open_ids()
    assert sim.oauth.refreshes == 1
    assert new.access_token != old.access_token and new.refresh_token != old.refresh_token


def test_withdrawn_consent_asks_for_reconnection(sim, provider, books):
    sim.oauth.revoke()

    with pytest.raises(AuthorizationExpired, match="dunning setup --reconnect acme-moneybird"):
        list(provider.sync(books.state()))


def test_administrations_are_listed_as_tenants(sim, provider):
    holding = sim.add_administration("Holding B.V.")

    tenants = provider.list_tenants()

    assert [(t.id, t.name) for t in tenants] == [(sim.administration_id, "Parkietje B.V."),
                                                 (holding.id, "Holding B.V.")]
    assert tenants[0].detail == "NL, EUR"


def test_a_record_without_its_embedded_contact_gets_the_contact_fetched(sim, provider, books, monkeypatch):
    render = sim.invoice_json

    def without_contact(admin, invoice):  # an implementation that leaves `contact` out of the invoice
        body = render(admin, invoice)
        body.pop("contact")
        return body

    monkeypatch.setattr(sim, "invoice_json", without_contact)

    books.apply(provider.sync(books.state()))

    assert books.problems == []
    assert {i.debtor_id for i in books.invoices.values()} <= set(books.debtors)
    assert sim.call_count(CONTACTS, "POST") >= 1


def test_a_synchronization_listing_split_over_linked_pages_is_read_whole_and_closes_nothing(
    sim, provider, books, simulator_open_ids, monkeypatch
):
    """Documented as unpaged; an implementation that pages it anyway (`Link: rel="next"`) must not make the adapter
    close the open invoices on the pages it did not read."""
    books.apply(provider.sync(books.state()))
    render = MoneybirdSimulator.sales_invoice_versions

    def paged(self, request, admin):
        answer = render(self, request, admin)
        listing = json.loads(answer.get_data())
        page = int(request.args.get("page", "1"))
        answer.set_data(json.dumps(listing[(page - 1) * 50: page * 50]))
        if page * 50 < len(listing):
            query = urlencode({"filter": request.args["filter"], "page": page + 1})
            answer.headers["Link"] = f'<{request.base_url}?{query}>; rel="next"'
        return answer

    monkeypatch.setattr(MoneybirdSimulator, "sales_invoice_versions", paged)
    before = sim.call_count(SYNC_GET, "GET")

    pages = list(provider.sync(books.state()))
    books.apply(pages)

    assert [i for p in pages for i in p.closed_invoice_ids] == []
    assert books.open_ids == simulator_open_ids()
    assert sim.call_count(SYNC_GET, "GET") - before == math.ceil(len(simulator_open_ids()) / 50)


def test_an_archived_contact_with_open_invoices_still_has_its_changes_synced(sim, provider, books):
    contact = sim.new_contact(company_name="Oud Bedrijf B.V.", email="oud@bedrijf.example")
    sim.new_invoice(contact.id, state="late", invoice_date=sim.today - timedelta(days=90))
    books.apply(provider.sync(books.state()))
    sim.change_contact(contact.id, archived=True, email="nieuw@bedrijf.example")

    books.apply(provider.sync(books.state()))

    assert books.debtors[contact.id].emails == ("nieuw@bedrijf.example",)
