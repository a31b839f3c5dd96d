"""Open credit notes count against the receivables in the report (aging, largest debtors, DSO), however their
platform signs them: Exact stores a positive outstanding with `is_credit_note`, Moneybird a negative one."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from connector.escalation.policy import Policy
from connector.models import Invoice
from connector.report import build_report
from connector.report.figures import collect, days_sales_outstanding
from connector.store import Store
from providers.base import SyncPage
from tests.conftest import make_debtor, make_invoice

AS_OF = date(2026, 12, 4)


def _seed(store: Store, clock) -> None:
    clock.now = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
    store.ensure_connection("acme", "fake", "T1")
    issued = date(2026, 11, 1)
    store.write_sync_page("acme", SyncPage(
        debtors=(make_debtor("D1", name="Bakkerij Van Dam B.V."), make_debtor("D2", name="Jansen Schoonmaak")),
        invoices=(
            make_invoice("I1", debtor_id="D1", issue_date=issued, due_date=date(2026, 11, 20),
                         total=Decimal("1210.00"), outstanding=Decimal("1210.00")),
            # Exact's way: a positive amount, flagged as a credit note
            make_invoice("C1", debtor_id="D1", issue_date=issued, due_date=date(2026, 11, 25), is_credit_note=True,
                         total=Decimal("121.00"), outstanding=Decimal("121.00")),
            make_invoice("I2", debtor_id="D2", issue_date=issued, due_date=date(2026, 12, 20),
                         total=Decimal("605.00"), outstanding=Decimal("605.00")),
            # Moneybird's way: a credit invoice with a negative total_unpaid
            make_invoice("C2", debtor_id="D2", issue_date=issued, due_date=date(2026, 12, 10), is_credit_note=True,
                         total=Decimal("-60.50"), outstanding=Decimal("-60.50")),
            make_invoice("I3", debtor_id="D2", issue_date=issued, due_date=date(2026, 12, 1),
                         total=Decimal("1000.00"), outstanding=Decimal("1000.00")),
        ),
    ))
    clock.now = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # I3 is paid
    store.write_sync_page("acme", SyncPage(invoices=(
        make_invoice("I3", debtor_id="D2", issue_date=issued, due_date=date(2026, 12, 1), total=Decimal("1000.00"),
                     outstanding=Decimal("0.00"), amount_paid=Decimal("1000.00"), status="paid", is_open=False),)))
    clock.now = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)


def test_open_credit_notes_are_negative_in_the_aging_the_largest_debtors_and_dso(store_url, clock):
    with Store.open(store_url, clock=clock) as store:
        _seed(store, clock)
        (section,) = collect(store.iter_invoice_records(), store.debtors(), Policy(), AS_OF)
        demo_figure = days_sales_outstanding(store.iter_invoice_records(), AS_OF)

    aging = section.aging
    assert aging.amounts["d1_30"] == Decimal("1089.00")  # I1 1,210 less C1 121 (due 9 days ago)
    assert aging.amounts["not_due"] == Decimal("544.50")  # I2 605 less C2 60.50
    assert aging.total == Decimal("1633.50") and aging.count == 4
    assert (aging.credit_notes, aging.credited) == (2, Decimal("-181.50"))
    assert [(d.name, d.outstanding, d.invoices) for d in section.top_debtors] == [
        ("Bakkerij Van Dam B.V.", Decimal("1089.00"), 1), ("Jansen Schoonmaak", Decimal("544.50"), 1)]
    # net sales 1,210 + 605 + 1,000 - 121 - 60.50; receivables what the aging shows
    assert section.dso is not None
    assert (section.dso.receivables, section.dso.sales) == (Decimal("1633.50"), Decimal("2633.50"))
    assert section.dso.dso == Decimal("55.8")
    assert demo_figure == {("acme", "EUR"): section.dso}


def test_the_page_says_how_much_credit_the_aging_holds(store_url, clock, tmp_path):
    out = tmp_path / "report.html"
    with Store.open(store_url, clock=clock) as store:
        _seed(store, clock)
        build_report(store, Policy(), AS_OF, out, store_url=store_url, made_at=clock.now, lang="nl")
    html = out.read_text(encoding="utf-8")

    assert 'data-figure="aging-total" data-value="1633.50"' in html
    assert 'data-figure="credit-notes" data-value="-181.50"' in html
    assert "2 nog niet verrekende creditnota&#39;s, samen €\xa0-181,50" in html


def test_a_credit_note_settled_later_counts_while_it_was_open(store_url, clock):
    issued = date(2026, 11, 1)

    def credit_note(outstanding: str) -> Invoice:
        return make_invoice("C3", issue_date=issued, due_date=date(2026, 11, 15), is_credit_note=True,
                            total=Decimal("50.00"), outstanding=Decimal(outstanding),
                            amount_paid=Decimal("50.00") - Decimal(outstanding), is_open=outstanding != "0.00")

    with Store.open(store_url, clock=clock) as store:
        clock.now = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
        store.ensure_connection("acme", "fake", "T1")
        store.write_sync_page("acme", SyncPage(debtors=(make_debtor("D1"),), invoices=(
            make_invoice("I1", issue_date=issued, due_date=date(2026, 11, 30)), credit_note("50.00"))))
        clock.now = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # the bookkeeper settles it on the platform
        store.write_sync_page("acme", SyncPage(invoices=(credit_note("0.00"),)))
        (section,) = collect(store.iter_invoice_records(), store.debtors(), Policy(), date(2026, 11, 15))

    assert section.aging.total == Decimal("1160.00") and section.aging.credit_notes == 1
    assert section.dso is not None and (section.dso.receivables, section.dso.sales) == (Decimal("1160.00"),
                                                                                        Decimal("1160.00"))
