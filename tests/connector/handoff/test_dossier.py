"""The dossier's law, pure: interest follows the money day by day, rounded once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connector.escalation.legal import statutory_interest
from connector.handoff.dossier import interest_following_payments


def test_a_part_payment_lowers_the_principal_from_the_day_after_its_payment_date() -> None:
    # domain.md: 1,000 overdue, 400 paid on day 20 -> interest on 1,000 for days 1-20 and on 600 after.
    # 2026 commercial rate 10.15 %: 1,000 x 20/365 = 5.56164 + 600 x 40/365 = 6.67397 -> 12.2356 -> 12.24
    start, paid_on, end = date(2026, 1, 2), date(2026, 1, 21), date(2026, 3, 2)
    found = interest_following_payments(Decimal("600.00"), [(paid_on, Decimal("400.00"))], start, end, commercial=True)
    assert found == Decimal("12.24")  # rounded once: rounding each part first would give 10.01 + 2.22 = 12.23
    assert found < statutory_interest(Decimal("1000.00"), start, end, commercial=True)  # 16.68 without the payment


def test_payments_before_default_and_after_the_end_do_not_count() -> None:
    start, end = date(2026, 1, 2), date(2026, 3, 2)
    plain = interest_following_payments(Decimal("600.00"), [], start, end, commercial=False)
    assert plain == statutory_interest(Decimal("600.00"), start, end, commercial=False)
    assert interest_following_payments(Decimal("600.00"), [(date(2025, 12, 20), Decimal("400.00"))], start, end,
                                       commercial=False) == plain
    assert interest_following_payments(Decimal("600.00"), [], end, start, commercial=False) == 0


def test_a_14_day_letter_about_two_invoices_caps_the_costs_of_cases_that_claim_them_apart() -> None:
    # one letter about 1,500 + 1,500 stated the scale on 3,000 (425 before VAT): claimed in two cases, the scale on
    # each part (225 + 225) would be more than the letter said; each case gets the letter's amount pro rata
    from connector.config import Creditor
    from connector.escalation.legal import collection_costs
    from connector.escalation.policy import Policy
    from connector.handoff.dossier import InvoiceHistory, build_case

    from ...conftest import make_debtor, make_invoice
    from .conftest import sent

    policy = Policy()
    vat = policy.collection_vat
    stated = collection_costs(Decimal("3000.00"), vat_rate=vat)
    assert collection_costs(Decimal("3000.00"), vat_rate=Decimal(0)) == Decimal("425.00")
    body = ("U kunt dit bedrag nog zonder extra kosten betalen binnen veertien dagen na de dag waarop deze brief bij u "
            f"is bezorgd. Daarna bedragen de incassokosten € {stated:,.2f}.".replace(",", "#").replace(".", ",")
            .replace("#", "."))
    evidence = {"k1": {"text": body, "stated_costs": str(stated), "stated_principal": "3000.00",
                       "stated_invoices": ["A", "B"]}}
    debtor = make_debtor("C1", kind="consumer", name="J. Jansen")
    histories = [
        InvoiceHistory(make_invoice(key, debtor_id="C1", total=Decimal("1500.00"), outstanding=Decimal("1500.00"),
                                    issue_date=date(2026, 6, 1), due_date=date(2026, 7, 1)),
                       (sent(date(2026, 8, 20), "notice_of_default", "k1"),))
        for key in ("A", "B")
    ]
    creditor = Creditor(name="Acme Installaties B.V.")

    def costs(of: list[InvoiceHistory]) -> Decimal:
        case = build_case("C1", creditor, debtor, of, policy, date(2026, 9, 30), evidence=evidence)
        return case.claim["costs"]

    together = costs(histories)
    apart = [costs([history]) for history in histories]

    assert together == stated  # the whole letter in one case: what it stated
    assert apart == [(stated / 2).quantize(Decimal("0.01"), rounding="ROUND_DOWN")] * 2
    assert sum(apart) <= stated < 2 * collection_costs(Decimal("1500.00"), vat_rate=vat)


def test_a_consumer_in_belgium_is_claimed_the_belgian_cap_even_where_the_letter_stated_more() -> None:
    # a letter sent before the Belgian cap was applied stated the Dutch scale (181.50 on 1,210.00); the case claims
    # no more than book XIX allows (65 + 5 % above 500 = 100.50) and says on what basis
    from connector.config import Creditor
    from connector.escalation.policy import Policy
    from connector.handoff.dossier import InvoiceHistory, build_case

    from ...conftest import make_debtor, make_invoice
    from .conftest import LETTER_BODY, sent

    body = LETTER_BODY.replace("€ 120,00", "€ 181,50")
    evidence = {"k1": {"text": body, "stated_costs": "181.50", "stated_principal": "1210.00"}}
    debtor = make_debtor("C1", kind="consumer", name="J. Peeters",
                         address={"lines": ("Meir 1",), "postal_code": "2000", "city": "Antwerpen", "country": "BE"})
    history = InvoiceHistory(make_invoice("A", debtor_id="C1", issue_date=date(2026, 6, 1), due_date=date(2026, 7, 1)),
                             (sent(date(2026, 8, 20), "notice_of_default", "k1"),))

    case = build_case("C1", Creditor(name="Acme"), debtor, [history], Policy(), date(2026, 9, 30), evidence=evidence)

    assert case.claim["costs"] == Decimal("100.50")
    assert "book XIX of the Belgian Code of Economic Law" in case.claim["costs_basis"]


def test_a_part_payment_within_the_term_lowers_the_costs_to_the_scale_never_below_it_by_the_cap() -> None:
    # HR 25-11-2016: paid down within the term, the costs are the scale on what is left (here still the EUR 40
    # minimum); the letter's stated amount bounds them, it does not scale them down for one letter in one case
    from connector.config import Creditor
    from connector.escalation.policy import Policy
    from connector.handoff.dossier import InvoiceHistory, build_case

    from ...conftest import make_debtor, make_invoice
    from .conftest import LETTER_BODY, paid, sent

    evidence = {"k1": {"text": LETTER_BODY.replace("€ 120,00", "€ 40,00"), "stated_costs": "40.00",
                       "stated_principal": "200.00", "stated_invoices": ["A"]}}
    debtor = make_debtor("C1", kind="consumer", name="J. Jansen")
    invoice = make_invoice("A", debtor_id="C1", total=Decimal("200.00"), amount_paid=Decimal("100.00"),
                           outstanding=Decimal("100.00"), issue_date=date(2026, 6, 1), due_date=date(2026, 7, 1))
    history = InvoiceHistory(invoice, (sent(date(2026, 8, 20), "notice_of_default", "k1"),
                                       paid(date(2026, 8, 25), "100.00", "100.00")))

    case = build_case("C1", Creditor(name="Acme"), debtor, [history], Policy(), date(2026, 9, 30), evidence=evidence)

    assert case.claim["costs"] == Decimal("40.00")


def test_a_creditor_in_belgium_claims_eur_40_per_invoice_from_a_business_and_says_on_what_basis() -> None:
    from connector.config import Creditor
    from connector.escalation.policy import Policy
    from connector.handoff.dossier import InvoiceHistory, build_case

    from ...conftest import make_debtor, make_invoice

    debtor = make_debtor("B1", name="Brouwerij Het Anker BV")
    histories = [InvoiceHistory(make_invoice(key, debtor_id="B1", issue_date=date(2026, 6, 1),
                                             due_date=date(2026, 7, 1))) for key in ("A", "B")]
    belgian = Policy.model_validate({"business_law": "BE"})

    case = build_case("C1", Creditor(name="Acme BV", country="BE"), debtor, histories, belgian, date(2026, 9, 30))
    dutch = build_case("C1", Creditor(name="Acme B.V."), debtor, histories, Policy(), date(2026, 9, 30))

    assert case.claim["costs"] == Decimal("80.00") and dutch.claim["costs"] > Decimal("80.00")
    assert case.claim["costs_basis"].startswith("law of 2 August 2002 on late payment, art. 6")
    # the Belgian late-payment rate (10.50 % from 1 July 2026), not the Dutch commercial rate (10.40 %): 91 days on
    # EUR 1,210.00 each: 31.68 against 31.37
    assert (case.claim["interest"], dutch.claim["interest"]) == (Decimal("63.36"), Decimal("62.74"))
    assert case.claim["interest_basis"].startswith("the law of 2 August 2002 on late payment, art. 5")
    assert case.claim["interest_basis"].endswith("not capitalised (Belgian law)")
    assert any("be_late_payment_interest.toml" in w for w in case.record["warnings"])  # 2026 H2 not yet confirmed
