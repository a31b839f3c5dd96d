"""End to end against the simulator: full and incremental sync with call counts, closing, faults, rate limits."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs

import pytest

from connector.models import Debtor, Invoice
from providers.base import SyncPage, SyncState
from providers.exact import ExactProvider
from providers.exact.simulator import ExactSimulator
from providers.simkit import VirtualClock

from .conftest import DIVISION, connect


class Books:
    """What a store would hold after each sync: enough to drive the next one."""

    def __init__(self) -> None:
        self.invoices: dict[str, Invoice] = {}
        self.debtors: dict[str, Debtor] = {}
        self.cursor: str | None = None
        self.pages: list[SyncPage] = []

    def state(self, *, full: bool = False) -> SyncState:
        return SyncState(cursor=None if full else self.cursor, full=full,
                         open_invoices={i.platform_id: i.version for i in self.invoices.values() if i.is_open},
                         debtors={d.platform_id: d.version for d in self.debtors.values()})

    def sync(self, provider: ExactProvider, *, full: bool = False) -> int:
        """One sync, written page by page; returns the API calls it cost."""
        before = provider.api.calls
        for page in provider.sync(self.state(full=full)):
            self.pages.append(page)
            self.debtors |= {d.platform_id: d for d in page.debtors}
            self.invoices |= {i.platform_id: i for i in page.invoices}
            for closed in page.closed_invoice_ids:
                self.invoices[closed] = self.invoices[closed].model_copy(update={"is_open": False})
            if page.cursor is not None:
                self.cursor = page.cursor
        return provider.api.calls - before

    def open(self) -> dict[str, Invoice]:
        return {k: v for k, v in self.invoices.items() if v.is_open}


def expected_open(sim: ExactSimulator) -> dict[str, Decimal]:
    """The simulator's own truth: invoice id → what is still open on it."""
    owed: dict[str, Decimal] = {}
    for t in sim.divisions[DIVISION].terms.values():
        if t.Status != 50 and t.TransactionType in (20, 21) and t.LineType == 20:
            owed[t.TransactionEntryID] = owed.get(t.TransactionEntryID, Decimal(0)) + abs(t.AmountFC)
    return owed


@pytest.fixture
def provider(sim: ExactSimulator) -> ExactProvider:
    return connect(sim)


def test_first_sync_reads_every_open_invoice_with_its_debtor(sim: ExactSimulator, provider: ExactProvider) -> None:
    books = Books()
    calls = books.sync(provider)
    truth = expected_open(sim)
    assert {k: v.outstanding for k, v in books.open().items()} == truth
    assert {i.debtor_id for i in books.open().values()} <= set(books.debtors)
    # one page of payment terms, one of accounts, one batch of main contacts for accounts without e-mail
    assert calls == 3
    assert all("$select" in parse_qs(c.query) for c in sim.calls if c.path.startswith("/api/v1/1"))


def test_a_first_sync_delivers_invoices_in_the_order_of_the_feed(sim: ExactSimulator, provider: ExactProvider) -> None:
    """Pages are reproducible: the same books give the same pages in every process (not in a set's hash order)."""
    books = Books()
    books.sync(provider)
    feed = sorted(sim.divisions[DIVISION].terms.values(), key=lambda t: t.Timestamp)
    first_seen = dict.fromkeys(t.TransactionEntryID for t in feed if t.TransactionEntryID in books.invoices)
    assert list(books.invoices) == list(first_seen)


def test_a_gbp_invoice_keeps_its_own_currency_and_amount(sim: ExactSimulator, provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    gbp = [i for i in books.open().values() if i.currency == "GBP"]
    assert len(gbp) == 1 and gbp[0].outstanding == Decimal("250.00")


def test_an_unchanged_second_sync_costs_two_calls(sim: ExactSimulator, provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    before = dict(books.invoices)
    assert books.sync(provider) == 2
    assert books.invoices == before and books.pages[-1].invoices == () and books.pages[-1].debtors == ()


def test_payments_close_or_reduce_invoices_incrementally(sim: ExactSimulator, provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    # sales invoices that owe more than the part payment (a credit note or a small invoice would close on it)
    paid, partly = sorted(k for k, v in books.open().items() if not v.is_credit_note and v.outstanding > 100)[:2]
    sim.pay(DIVISION, paid)
    sim.pay(DIVISION, partly, Decimal("100.00"))
    was = books.invoices[partly].outstanding
    calls = books.sync(provider)
    assert not books.invoices[paid].is_open  # its terms read settled and gone from the open terms: closed
    assert books.invoices[partly].outstanding == was - Decimal("100.00")
    assert books.invoices[partly].amount_paid >= Decimal("100.00")
    assert calls == 3  # two change feeds + one bulk re-read of the touched invoices
    assert {k: v.outstanding for k, v in books.open().items()} == expected_open(sim)


def test_an_unmatched_receipt_lowers_what_is_owed(sim: ExactSimulator, provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    invoice_id = next(iter(books.open()))
    was = books.invoices[invoice_id].outstanding
    sim.unmatched_payment(DIVISION, invoice_id, "50.00")
    books.sync(provider)
    assert books.invoices[invoice_id].outstanding == was - Decimal("50.00")


def test_a_new_invoice_of_a_new_customer_arrives_with_the_customer(sim: ExactSimulator,
                                                                     provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    account = sim.add_account(DIVISION, "Nieuwe Klant B.V.", Email="info@nieuw.nl", ChamberOfCommerce="12345678")
    invoice = sim.new_invoice(DIVISION, account.ID, "121.00")
    books.sync(provider)
    assert books.invoices[invoice.InvoiceID].outstanding == Decimal("121.00")
    assert books.debtors[account.ID].emails == ("info@nieuw.nl",)


def test_a_new_invoice_of_a_known_account_fetches_it_by_id(sim: ExactSimulator, provider: ExactProvider) -> None:
    account = sim.add_account(DIVISION, "Zonder Facturen B.V.", Email="a@b.nl")  # no open invoice at first
    books = Books()
    books.sync(provider)
    assert account.ID not in books.debtors
    invoice = sim.new_invoice(DIVISION, account.ID, "10.00")
    sim.clock.advance(1)
    books.sync(provider)
    assert books.invoices[invoice.InvoiceID].debtor_id in books.debtors
    assert sim.call_count("*/crm/Accounts") == 1


def test_a_changed_account_updates_its_debtor(sim: ExactSimulator, provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    debtor_id = next(iter(books.open().values())).debtor_id
    sim.change_account(DIVISION, debtor_id, Email="nieuw@klant.nl")
    books.sync(provider)
    assert books.debtors[debtor_id].emails == ("nieuw@klant.nl",)


def test_full_sync_reads_the_open_set_in_bulk_and_closes_leavers(sim: ExactSimulator,
                                                                 provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    cursor = books.cursor
    gone = next(iter(books.open()))
    sim.pay(DIVISION, gone)
    books.sync(provider, full=True)
    assert not books.invoices[gone].is_open
    assert books.cursor == cursor  # the change feed position survives a full re-read
    # the open set in one call, and the invoice it no longer lists read by number: the evidence it was paid
    assert sim.call_count("*/bulk/Cashflow/Receivables") == 2
    assert {k: v.outstanding for k, v in books.open().items()} == expected_open(sim)


def test_supplier_payments_never_become_invoices(sim: ExactSimulator, provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    supplier = next(t for t in sim.divisions[DIVISION].terms.values() if t.LineType == 22)
    assert supplier.TransactionEntryID not in books.invoices


def test_an_outage_mid_sync_is_retried_and_nothing_is_lost_or_doubled(sim: ExactSimulator,
                                                                      provider: ExactProvider) -> None:
    sim.faults.server_error("*/sync/CRM/Accounts", status=503)
    sim.faults.timeout("*/crm/Contacts")
    books = Books()
    books.sync(provider)
    assert {k: v.outstanding for k, v in books.open().items()} == expected_open(sim)
    ids = [i.platform_id for page in books.pages for i in page.invoices]
    assert len(ids) == len(set(ids))


def test_a_malformed_record_is_reported_and_read_again_next_time(sim: ExactSimulator,
                                                                 provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    victim = next(iter(books.open()))
    sim.pay(DIVISION, victim, Decimal("1.00"))
    sim.faults.malformed("*/sync/Cashflow/PaymentTerms")
    books.sync(provider)
    assert any("unreadable" in p for page in books.pages for p in page.problems)
    assert books.sync(provider) >= 3  # the cursor did not pass the bad row: it is read again
    assert {k: v.outstanding for k, v in books.open().items()} == expected_open(sim)


def test_a_malformed_record_in_a_full_read_closes_nothing(sim: ExactSimulator, provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    sim.faults.malformed("*/bulk/Cashflow/Receivables")
    first = len(books.pages)
    books.sync(provider, full=True)
    pages = books.pages[first:]
    assert all(page.closed_invoice_ids == () and all(i.is_open for i in page.invoices) for page in pages)
    assert "no invoice was closed" in " ".join(p for page in pages for p in page.problems)


def test_a_429_waits_for_the_announced_reset_on_the_virtual_clock(sim: ExactSimulator, clock: VirtualClock,
                                                                  provider: ExactProvider) -> None:
    clock.advance(30 - clock.time() % 60)  # half-way through a minute
    sim.faults.rate_limited("*/sync/Cashflow/PaymentTerms")
    start = clock.time()
    Books().sync(provider)
    assert clock.time() == pytest.approx(start + 30, abs=0.01)  # the minute's reset, not a guess
    assert sim.call_count("*/sync/Cashflow/PaymentTerms") == 2


def test_the_minute_limit_is_never_exceeded(sim: ExactSimulator, clock: VirtualClock) -> None:
    provider = connect(sim)
    books = Books()
    books.sync(provider)
    for _ in range(70):
        books.sync(provider)
    api = [c for c in sim.calls if c.path.startswith("/api/v1/")]
    per_minute: dict[int, int] = {}
    for call in api:
        per_minute[int(call.at // 60)] = per_minute.get(int(call.at // 60), 0) + 1
    assert max(per_minute.values()) <= 60 and len(api) == 3 + 140
    assert clock.time() - api[0].at >= 120  # 143 calls need at least three minute windows


def test_the_country_host_of_the_connection_is_used(sim: ExactSimulator) -> None:
    provider = connect(sim, api_url="https://start.exactonline.be")
    Books().sync(provider)
    assert set(sim.hosts) == {"start.exactonline.be"}


def test_list_tenants_falls_back_to_hrm_divisions(sim: ExactSimulator) -> None:
    sim.system_divisions_allowed = False
    tenants = connect(sim, tenant=None).list_tenants()
    assert [t.id for t in tenants] == [str(DIVISION), str(DIVISION + 1)]
    assert sim.call_count("*/hrm/Divisions") == 1


def test_a_minute_spent_by_another_app_is_waited_out_not_hammered(sim: ExactSimulator, clock: VirtualClock,
                                                                  provider: ExactProvider) -> None:
    clock.advance(45 - clock.time() % 60)
    for _ in range(60):  # someone else used this division's minute
        sim.limits.hit(str(DIVISION))
    start = clock.time()
    books = Books()
    books.sync(provider)
    assert books.open() and clock.time() == pytest.approx(start + 15, abs=0.01)
    assert sim.call_count("*/sync/Cashflow/PaymentTerms") == 2  # one refused call, then the real one


def test_an_entry_without_invoice_number_is_never_closed_on_a_guess(sim: ExactSimulator,
                                                                    provider: ExactProvider) -> None:
    account = next(iter(sim.divisions[DIVISION].accounts))
    entry = sim.new_invoice(DIVISION, account, "500.00")  # e.g. an opening balance entry: no number
    for term in sim.divisions[DIVISION].terms_of[entry.InvoiceID]:
        term.InvoiceNumber = None
    books = Books()
    books.sync(provider)
    assert books.invoices[entry.InvoiceID].number is None and books.invoices[entry.InvoiceID].is_open
    sim.pay(DIVISION, entry.InvoiceID, Decimal("100.00"))
    books.sync(provider)
    assert books.invoices[entry.InvoiceID].is_open  # seen again at the next --full read, not closed on a guess
    books.sync(provider, full=True)
    assert books.invoices[entry.InvoiceID].outstanding == Decimal("400.00")


def _filters(sim: ExactSimulator, path: str) -> list[list[str]]:
    return [parse_qs(c.query).get("$filter", []) for c in sim.calls if c.path.endswith(path)]


def test_the_feeds_follow_next_links_from_timestamp_1_and_resume_after_the_highest_timestamp(clock: VirtualClock) -> None:
    sim = ExactSimulator.seeded(clock=clock, division=DIVISION, accounts=30, invoices=1100)
    provider = connect(sim)
    books = Books()
    books.sync(provider)
    terms = [c for c in sim.calls if c.path.endswith("/sync/Cashflow/PaymentTerms")]
    assert len(terms) == 2 and "$skiptoken" in parse_qs(terms[1].query)  # the second page came from __next
    assert _filters(sim, "/sync/Cashflow/PaymentTerms")[0] == ["Timestamp gt 1"]
    assert _filters(sim, "/sync/CRM/Accounts") == [["Timestamp gt 1"]]
    assert {k: v.outstanding for k, v in books.open().items()} == expected_open(sim)
    highest = max(t.Timestamp for t in sim.divisions[DIVISION].terms.values())
    highest_account = max(a.Timestamp for a in sim.divisions[DIVISION].accounts.values())
    assert books.sync(provider) == 2
    assert _filters(sim, "/sync/Cashflow/PaymentTerms")[-1] == [f"Timestamp gt {highest}L"]
    assert _filters(sim, "/sync/CRM/Accounts")[-1] == [f"Timestamp gt {highest_account}L"]


def test_every_url_stays_within_exacts_6000_characters(clock: VirtualClock) -> None:
    sim = ExactSimulator.seeded(clock=clock, division=DIVISION, accounts=0, invoices=0)
    sim.add_division(DIVISION, "Bakkerij")
    for n in range(150):  # 150 customers without an e-mail of their own: contacts are read in id batches
        account = sim.add_account(DIVISION, f"Klant {n}")
        sim.add_contact(DIVISION, account.ID, f"Contact {n}", email=f"c{n}@klant.nl")
        sim.new_invoice(DIVISION, account.ID, "10.00")
    provider = connect(sim)
    books = Books()
    books.sync(provider)
    for account in list(sim.divisions[DIVISION].accounts)[:120]:  # payments on 120 invoices: re-read by number
        for term in sim.divisions[DIVISION].terms.values():
            if term.Account == account and term.Status != 50:
                sim.pay(DIVISION, term.TransactionEntryID, Decimal("1.00"))
                break
    books.sync(provider)
    assert sim.call_count("*/crm/Contacts") >= 4 and sim.call_count("*/bulk/Cashflow/Receivables") >= 2
    longest = max(len(f"https://start.exactonline.nl{c.path}?{c.query}") for c in sim.calls)
    assert longest <= 6000
    assert all(d.emails for d in books.debtors.values())
    assert {k: v.outstanding for k, v in books.open().items()} == expected_open(sim)


def test_an_account_whose_email_field_holds_no_address_falls_back_to_its_contact(sim: ExactSimulator,
                                                                                  provider: ExactProvider) -> None:
    books = Books()
    books.sync(provider)
    debtor_id = next(i.debtor_id for i in books.open().values() if books.debtors[i.debtor_id].emails)
    sim.add_contact(DIVISION, debtor_id, "Petra Jansen", email="petra@klant.nl")
    sim.change_account(DIVISION, debtor_id, Email="n.v.t.")
    books.sync(provider)
    assert books.debtors[debtor_id].emails == ("petra@klant.nl",)


def test_a_lone_negative_sales_invoice_in_a_later_sync_is_the_customers_credit_not_a_debt(
        sim: ExactSimulator, provider: ExactProvider) -> None:
    # providers.md: the sign of a debt is learnt ("check the sign on first use"): from the first sync's whole feed,
    # kept with the cursor, so a later answer holding only a credit booked as a negative sales invoice cannot
    # turn it into a debt to dun
    books = Books()
    books.sync(provider)
    account = sim.add_account(DIVISION, "Retour Klant B.V.", Email="info@retour.nl")
    credit = sim.new_invoice(DIVISION, account.ID, "-60.50")
    sim.clock.advance(1)
    books.sync(provider)
    found = books.invoices[credit.InvoiceID]
    assert found.is_credit_note and not found.is_collectable and found.outstanding == Decimal("60.50")
    debt = sim.new_invoice(DIVISION, account.ID, "121.00")  # and a real invoice alone in the next answer still is one
    sim.clock.advance(1)
    books.sync(provider)
    assert books.invoices[debt.InvoiceID].is_collectable and not books.invoices[debt.InvoiceID].is_credit_note


def test_the_cursor_keeps_the_learnt_sign_and_reads_a_cursor_from_before_it_was_kept() -> None:
    from providers.exact.provider import Cursor

    assert Cursor.load(Cursor(5, 7, -1).dump()) == Cursor(5, 7, -1)
    assert Cursor.load('{"payment_terms": "5", "accounts": "7"}') == Cursor(5, 7, None)  # each answer tells then
    assert Cursor.load('{"payment_terms": "5", "accounts": null, "owed_sign": 3}') == Cursor(5, None, None)
