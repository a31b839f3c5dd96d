"""End-to-end sync against the Xero simulator: what is fetched, what it costs, what closes, what survives faults."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connector.store import Store
from connector.sync import sync_connection
from providers.base import SyncPage, SyncState, Token
from providers.errors import RateLimited
from providers.simkit import VirtualClock
from providers.tokens import MemoryTokenStore
from providers.xero import XeroProvider
from providers.xero.client import DEFAULT_API_URL
from providers.xero.simulator import XeroSimulator

INVOICES = "/api.xro/2.0/Invoices"
CONTACTS = "/api.xro/2.0/Contacts"


def stored_state(pages: Iterable[SyncPage], before: SyncState | None = None) -> SyncState:
    """What a store would hold after writing these pages (the adapter's own view of a store)."""
    opened = dict(before.open_invoices) if before else {}
    debtors = dict(before.debtors) if before else {}
    cursor = before.cursor if before else None
    for page in pages:
        for debtor in page.debtors:
            debtors[debtor.platform_id] = debtor.version
        for invoice in page.invoices:
            if invoice.is_open:
                opened[invoice.platform_id] = invoice.version
            else:
                opened.pop(invoice.platform_id, None)
        for closed in page.closed_invoice_ids:
            opened.pop(closed, None)
        cursor = page.cursor or cursor
    return SyncState(cursor=cursor, open_invoices=opened, debtors=debtors)


def invoices_of(pages: Iterable[SyncPage]) -> list:
    return [invoice for page in pages for invoice in page.invoices]


def test_full_sync_returns_every_open_sales_invoice_with_its_debtor(sim: XeroSimulator, xero: XeroProvider) -> None:
    pages = list(xero.sync(SyncState()))

    invoices = invoices_of(pages)
    expected = {i.invoice_id for i in sim.org.open_invoices()}
    assert {i.platform_id for i in invoices} == expected
    assert len(invoices) == len(expected)  # nothing twice
    assert all(i.is_open and i.outstanding > 0 for i in invoices)
    debtors = {d.platform_id for page in pages for d in page.debtors}
    assert {i.debtor_id for i in invoices} <= debtors
    assert not any(page.problems for page in pages)
    # one page of invoices, one page of contacts (more than 50 unknown contacts: paging beats ids)
    assert sim.call_count(INVOICES) == 1
    assert sim.call_count(CONTACTS) == 1


def test_full_sync_amounts_follow_xero_including_part_payments_and_credit_notes(
    sim: XeroSimulator, xero: XeroProvider
) -> None:
    target = sim.org.open_invoices()[0]
    sim.org.pay(target.invoice_id, "100.00")
    sim.org.credit(target.invoice_id, "25.50")

    invoice = next(i for i in invoices_of(xero.sync(SyncState())) if i.platform_id == target.invoice_id)

    assert invoice.outstanding == target.total - Decimal("125.50")
    assert invoice.amount_paid == Decimal("125.50")
    assert invoice.total == target.total
    assert invoice.number == target.number
    assert invoice.due_date == target.due


def test_unchanged_second_sync_costs_two_calls_and_changes_nothing(sim: XeroSimulator, xero: XeroProvider) -> None:
    state = stored_state(xero.sync(SyncState()))
    before = xero.api.calls

    pages = list(xero.sync(state))

    assert xero.api.calls - before <= 2
    assert invoices_of(pages) == [] and not any(p.debtors for p in pages)


def test_incremental_sync_fetches_only_the_changes_and_closes_paid_voided_and_deleted(
    sim: XeroSimulator, xero: XeroProvider
) -> None:
    state = stored_state(xero.sync(SyncState()))
    opened = sim.org.open_invoices()
    sim.clock.advance(3600)
    paid, voided, part_paid, promised = opened[0], opened[1], opened[2], opened[3]
    sim.org.pay(paid.invoice_id)
    sim.org.void(voided.invoice_id)
    sim.org.pay(part_paid.invoice_id, "10.00")
    sim.org.change_invoice(promised.invoice_id, expected_payment=promised.due.replace(day=28))
    new = sim.org.add_invoice(opened[4].contact_id, "121.00")
    before = xero.api.calls

    pages = list(xero.sync(state))

    by_id = {i.platform_id: i for i in invoices_of(pages)}
    assert set(by_id) == {paid.invoice_id, voided.invoice_id, part_paid.invoice_id, promised.invoice_id,
                          new.invoice_id}
    assert not by_id[paid.invoice_id].is_open and by_id[paid.invoice_id].status == "PAID"
    assert not by_id[voided.invoice_id].is_open and by_id[voided.invoice_id].status == "VOIDED"
    assert by_id[part_paid.invoice_id].is_open
    assert by_id[part_paid.invoice_id].outstanding == part_paid.total - Decimal("10.00")
    assert by_id[promised.invoice_id].promised_payment_date == promised.due.replace(day=28)
    assert by_id[new.invoice_id].is_open and by_id[new.invoice_id].total == Decimal("121.00")
    assert xero.api.calls - before == 2  # one contacts check, one invoice page; the new invoice's contact is known
    after = stored_state(pages, state)
    assert paid.invoice_id not in after.open_invoices and voided.invoice_id not in after.open_invoices


class Recording(httpx.BaseTransport):
    """The simulator's answers as the adapter received them."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.answers: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.answers.append((request, response))
        return response


def test_an_incremental_sync_asks_only_for_invoices_changed_since_the_newest_change_seen(
    connect_xero, sim: XeroSimulator, tokens
) -> None:
    recording = Recording(sim.transport())
    xero = connect_xero(sim, tokens, transport=recording)
    state = stored_state(xero.sync(SyncState()))
    newest = max(i.updated for i in sim.org.open_invoices()).replace(microsecond=0) - timedelta(seconds=1)
    # the full read saw open invoices only: any sales invoice changed since the newest of them is a change to it
    since_then = {i.invoice_id for i in sim.org.invoices.values() if i.type == "ACCREC" and i.updated >= newest}
    sim.clock.advance(3600)
    changed = sim.org.pay(sim.org.open_invoices()[0].invoice_id, "1.00")
    recording.answers.clear()

    list(xero.sync(state))

    returned = {i["InvoiceID"] for q, r in recording.answers if q.url.path == INVOICES for i in r.json()["Invoices"]}
    assert changed.invoice_id in returned
    assert returned == since_then | {changed.invoice_id}
    assert len(returned) < len(sim.org.open_invoices()) / 10


def test_a_deleted_submitted_invoice_is_closed_when_submitted_ones_are_collected(
    connect_xero, sim: XeroSimulator, tokens
) -> None:
    submitted = sim.org.add_invoice(next(iter(sim.org.contacts)), "50.00", status="SUBMITTED")
    xero = connect_xero(sim, tokens, options={"include_submitted": True})
    state = stored_state(xero.sync(SyncState()))
    assert submitted.invoice_id in state.open_invoices
    sim.clock.advance(60)
    sim.org.delete(submitted.invoice_id)

    pages = list(xero.sync(state))

    assert submitted.invoice_id not in stored_state(pages, state).open_invoices


def test_new_and_changed_contacts_come_with_the_changed_contacts_read_without_refetching_invoices(
    sim: XeroSimulator, xero: XeroProvider
) -> None:
    state = stored_state(xero.sync(SyncState()))
    sim.clock.advance(600)
    newcomer = sim.org.add_contact("Nieuw Bouw B.V.", email="info@nieuwbouw.example", company_number="12345678")
    sim.org.add_invoice(newcomer.contact_id, "242.00")
    known = next(iter(state.debtors))
    sim.org.change_contact(known, email="new-address@example.nl")

    pages = list(xero.sync(state))

    debtors = {d.platform_id: d for page in pages for d in page.debtors}
    assert set(debtors) == {newcomer.contact_id, known}
    assert debtors[known].emails[0] == "new-address@example.nl"
    assert debtors[newcomer.contact_id].kind == "business"
    assert debtors[newcomer.contact_id].coc_number == "12345678"
    assert len(invoices_of(pages)) == 1


def test_an_unchanged_contact_with_its_first_open_invoice_is_read_by_its_id_alone(
    sim: XeroSimulator, xero: XeroProvider
) -> None:
    quiet = sim.org.add_contact("Stil B.V.", email="info@stil.example")
    sim.clock.advance(600)
    state = stored_state(xero.sync(SyncState()))
    assert quiet.contact_id not in state.debtors
    sim.clock.advance(600)
    sim.org.add_invoice(quiet.contact_id, "121.00")
    calls_before = len(sim.calls)

    pages = list(xero.sync(state))

    assert [d.platform_id for p in pages for d in p.debtors] == [quiet.contact_id]
    by_id = [c.query for c in sim.calls[calls_before:] if c.path == CONTACTS and "IDs=" in c.query]
    assert len(by_id) == 1 and parse_qs(by_id[0])["IDs"] == [quiet.contact_id]
    assert len(sim.calls) - calls_before == 3  # changed contacts, changed invoices, the one contact by id


def test_contacts_are_read_by_id_in_batches_of_at_most_50(xero: XeroProvider) -> None:
    sim = XeroSimulator(VirtualClock())
    sim.register_app()
    sim.seed_book(seed=5, open_invoices=1, contacts=120)
    xero = XeroProvider.connect(xero.settings.model_copy(update={"tenant": sim.org.tenant_id}), tokens=(
        tokens := MemoryTokenStore()), transport=sim.transport(), clock=sim.clock.time, sleep=sim.clock.sleep)
    tokens.save(xero.settings.name, Token.from_response(sim.grant(), now=sim.clock.now()))

    batches = list(xero.client.contacts_by_id(sorted(sim.org.contacts)))

    assert [len(b) for b in batches] == [50, 50, 20]  # a longer IDs= list makes the URL too long (404)
    assert sorted(c["ContactID"] for b in batches for c in b) == sorted(sim.org.contacts)
    # the commas as Xero writes them: percent-encoded, 50 GUIDs would take 2,014 characters of URL on api.xero.com
    sent = [f"{DEFAULT_API_URL}{c.path}?{c.query}" for c in sim.calls if c.path == CONTACTS and "IDs=" in c.query]
    assert len(sent) == 3 and "%2C" not in sent[0] and max(map(len, sent)) < 1950
    assert parse_qs(urlsplit(sent[0]).query)["includeArchived"] == ["true"]


def test_a_full_sync_rereads_debtors_so_contact_changes_are_not_lost(sim: XeroSimulator, xero: XeroProvider) -> None:
    state = stored_state(xero.sync(SyncState()))
    sim.clock.advance(600)
    known = sim.org.open_invoices()[0].contact_id
    sim.org.change_contact(known, email="moved@example.nl")

    # `dunning sync --full`: the store hands over no cursor at all
    pages = list(xero.sync(SyncState(open_invoices=state.open_invoices, debtors=state.debtors, full=True)))

    assert [d.emails[0] for p in pages for d in p.debtors] == ["moved@example.nl"]
    assert invoices_of(pages) == []


def test_a_malformed_answer_becomes_a_problem_not_a_crash(sim: XeroSimulator, xero: XeroProvider) -> None:
    sim.faults.malformed(INVOICES)

    pages = list(xero.sync(SyncState()))

    assert len([p for page in pages for p in page.problems]) == 1
    assert len(invoices_of(pages)) == len(sim.org.open_invoices()) - 1


def test_full_sync_closes_stored_invoices_that_left_the_open_set(sim: XeroSimulator, xero: XeroProvider) -> None:
    state = stored_state(xero.sync(SyncState()))
    gone = sim.org.open_invoices()[5]
    sim.org.pay(gone.invoice_id)

    pages = list(xero.sync(SyncState(cursor=state.cursor, open_invoices=state.open_invoices,
                                     debtors=state.debtors, full=True)))

    after = stored_state(pages, state)
    assert gone.invoice_id not in after.open_invoices
    assert set(after.open_invoices) == {i.invoice_id for i in sim.org.open_invoices()}


def test_a_change_during_a_full_sync_never_closes_an_invoice_that_is_still_open(
    connect_xero, sim: XeroSimulator, tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("providers.xero.client.PAGE_SIZE", 25)
    xero = connect_xero(sim, tokens)
    state = stored_state(xero.sync(SyncState()))
    full = SyncState(cursor=state.cursor, open_invoices=state.open_invoices, debtors=state.debtors, full=True)
    pages = []
    for page in xero.sync(full):
        if not pages:  # between page 1 and 2 the bookkeeper edits an invoice of page 1: it moves to the end
            sim.clock.advance(1)
            sim.org.change_invoice(page_one_first(sim, xero), reference="edited")
        pages.append(page)

    after = stored_state(pages, full)
    assert set(after.open_invoices) == {i.invoice_id for i in sim.org.open_invoices()}


def page_one_first(sim: XeroSimulator, xero: XeroProvider) -> str:
    return min(sim.org.open_invoices(), key=lambda i: i.updated).invoice_id


def test_a_bad_record_is_reported_by_name_and_the_rest_is_synced(sim: XeroSimulator, xero: XeroProvider) -> None:
    bad = sim.org.open_invoices()[7]
    sim.org.corrupt_invoice(bad.invoice_id)

    pages = list(xero.sync(SyncState()))

    problems = [p for page in pages for p in page.problems]
    assert len(problems) == 1 and bad.number in problems[0]
    assert len(invoices_of(pages)) == len(sim.org.open_invoices()) - 1


def test_a_429_mid_sync_waits_as_told_and_loses_or_doubles_nothing(
    connect_xero, sim: XeroSimulator, tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("providers.xero.client.PAGE_SIZE", 30)
    xero = connect_xero(sim, tokens)
    started = sim.clock.time()
    sim.faults.rate_limited(INVOICES, retry_after=37, times=2)

    invoices = invoices_of(xero.sync(SyncState()))

    assert sorted(i.platform_id for i in invoices) == sorted(i.invoice_id for i in sim.org.open_invoices())
    assert sim.clock.time() - started >= 2 * 37


def test_an_expired_token_mid_sync_is_refreshed_once_and_the_sync_carries_on(
    connect_xero, sim: XeroSimulator, tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("providers.xero.client.PAGE_SIZE", 30)
    xero = connect_xero(sim, tokens)
    first_refresh = tokens.tokens["acme-xero"].refresh_token
    invoices = []
    for n, page in enumerate(xero.sync(SyncState())):
        invoices += page.invoices
        if n == 1:
            sim.oauth.expire_access_tokens()  # e.g. the sync ran past the 30 minutes

    assert sorted(i.platform_id for i in invoices) == sorted(i.invoice_id for i in sim.org.open_invoices())
    assert sim.oauth.refreshes == 1
    assert tokens.tokens["acme-xero"].refresh_token != first_refresh  # the rotated token was saved


def test_a_passing_outage_is_retried_for_reads(sim: XeroSimulator, xero: XeroProvider) -> None:
    sim.faults.server_error(INVOICES, status=503, times=2)
    sim.faults.timeout(CONTACTS)

    invoices = invoices_of(xero.sync(SyncState()))

    assert len(invoices) == len(sim.org.open_invoices())


def test_the_day_limit_stops_the_connection_with_a_clear_message(connect_xero, clock, tokens) -> None:
    sim = XeroSimulator(clock, day_limit=1)
    sim.register_app()
    sim.seed_book(seed=3, open_invoices=30, contacts=60)
    xero = connect_xero(sim, tokens)

    with pytest.raises(RateLimited) as refused:
        list(xero.sync(SyncState()))

    assert refused.value.for_the_day
    assert "acme-xero" in str(refused.value) and "daily" in str(refused.value)


def test_sync_into_the_store_end_to_end(sim: XeroSimulator, xero: XeroProvider, tmp_path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'dunning.sqlite'}") as store:
        store.ensure_connection("acme-xero", "xero", sim.org.tenant_id)
        first = sync_connection(store, xero, "acme-xero")
        # a full sync may also check Xero's own reminder settings (one call), the sync itself takes two
        settings_checks = sim.call_count("/api.xro/2.0/InvoiceReminders/Settings")
        assert first.ok and first.changed == len(sim.org.open_invoices()) and first.api_calls == 2 + settings_checks
        paid = sim.org.open_invoices()[0]
        sim.clock.advance(120)
        sim.org.pay(paid.invoice_id)

        second = sync_connection(store, xero, "acme-xero")
        third = sync_connection(store, xero, "acme-xero")

        assert second.ok and second.closed == 1 and second.api_calls == 2
        assert third.ok and third.changed == 0 and third.api_calls <= 2
        stored = store.invoice("acme-xero", paid.invoice_id)
        assert stored is not None and not stored.is_open
        open_ids = set(store.sync_state("acme-xero").open_invoices)
        assert open_ids == {i.invoice_id for i in sim.org.open_invoices()}
