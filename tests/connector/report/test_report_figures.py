"""The report's figures on a small book whose answers are known by hand."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from connector.escalation.legal import business_compensation, statutory_interest
from connector.escalation.policy import Policy
from connector.report import build_report
from connector.report.figures import collect
from connector.store import Store
from tests.connector.report.book import AS_OF, BIGGEST, seed


def _sections(store_url, clock):
    store = Store.open(store_url, clock=clock)
    seed(store, clock)
    return store, {(s.connection, s.currency): s for s in collect(
        store.iter_invoice_records(), store.debtors(), Policy(), AS_OF)}


def test_aging_top_debtors_effects_and_holds(store_url, clock):
    store, sections = _sections(store_url, clock)
    store.close()
    acme = sections[("acme", "EUR")]

    assert acme.aging.amounts == {"not_due": Decimal("1210.00"), "d1_30": Decimal("605.00"),
                                  "d31_60": Decimal("2420.00"), "d61_90": Decimal("300.00"),
                                  "d90_plus": Decimal("13899.00")}  # I1 12,100 + I7 999 + I8 800
    assert acme.aging.count == 7 and sections[("beta", "GBP")].aging.total == Decimal("750.00")
    top = acme.top_debtors[0]
    assert (top.name, top.outstanding, top.invoices, top.current_step) == (BIGGEST, Decimal("15519.00"), 3,
                                                                           "reminder_2")
    assert top.due_today is not None and top.oldest_days_overdue == (AS_OF - date(2026, 5, 31)).days
    effects = {e.step: e for e in acme.effects}
    # I6 was paid five days after its first reminder, I1 never was
    assert effects["reminder_1"].sent == 2 and effects["reminder_1"].share(7) == Decimal("0.5")
    assert effects["reminder_2"].share(30) == 0
    assert [(h.invoice, h.arrangement) for h in acme.held] == [("2026-I7", False), ("2026-I8", True)]


def test_claimable_today_is_the_legal_modules_interest_and_costs_on_what_is_not_set_aside(store_url, clock):
    store, sections = _sections(store_url, clock)
    store.close()
    acme = sections[("acme", "EUR")]

    # overdue and not set aside: D1's I1 and I2 (I7 is disputed), D2's I3 (I8 is under an arrangement); the
    # consumer D3's I5 is handed off. Costs on each debtor's principal together (the policy's default)
    business = {"I1": ("12100.00", date(2026, 5, 31)), "I2": ("2420.00", date(2026, 10, 31)),
                "I3": ("605.00", date(2026, 11, 20))}
    interest = sum((statutory_interest(Decimal(p), due + timedelta(days=1), AS_OF, commercial=True)
                    for p, due in business.values()), Decimal(0))
    costs = business_compensation(Decimal("14520.00")) + business_compensation(Decimal("605.00"))
    assert acme.claimable is not None
    assert (acme.claimable.interest, acme.claimable.costs, acme.claimable.debtors) == (interest, costs, 2)
    assert sections[("beta", "GBP")].claimable is None


def test_the_page_lists_tasks_cases_and_the_store(store_url, clock, tmp_path):
    store, _sections_ = _sections(store_url, clock)
    out = tmp_path / "report.html"
    with store:
        page = build_report(store, Policy(), AS_OF, out, store_url=store_url, made_at=clock.now, lang="en")
    html = out.read_text(encoding="utf-8")

    # the task names its debtor by platform id: the page shows the debtor's name, and the day as dates are shown
    assert [(t.kind, t.debtor, t.invoices) for t in page.tasks] == [("call", "Jansen Schoonmaak", "2026-I3")]
    assert [(c.reference, c.totals["total"]) for c in page.cases] == [("C000001", Decimal("354.52"))]
    assert "ring about 2026-I3" in html and "C000001" in html and "€354.52" in html
    assert "<td>4 Dec 2026</td>" in html and "2026-12-04</td>" not in html
    assert page.store in html and "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "").replace('xmlns:xlink="http://www.w3.org/1999/xlink"', "")


def test_a_report_as_of_a_past_day_counts_what_was_open_then(store_url, clock):
    store = Store.open(store_url, clock=clock)
    seed(store, clock)
    with store:
        sections = {(s.connection, s.currency): s for s in collect(
            store.iter_invoice_records(), store.debtors(), Policy(), date(2026, 6, 22))}

    acme = sections[("acme", "EUR")]
    # on 22 June only I1 (due 31 May) and I6 (due 15 June, paid on the 25th) existed, both unpaid
    assert acme.aging.amounts["d1_30"] == Decimal("12600.00") and acme.aging.count == 2
    assert ("beta", "GBP") not in sections  # its invoice was issued later
