"""Reminder texts: every step in nl and en, the compliant 14-day wording, strict about missing data."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from connector.escalation.action import Action, format_money
from connector.escalation.debtor import plan_invoice
from connector.escalation.legal import statutory_interest
from connector.escalation.policy import STEP_ORDER, Policy
from connector.escalation.texts import TemplateDataMissing, render
from connector.models import DebtorKind

from .conftest import DUE, debtor, invoice, sent, task

POLICY = Policy()
OFFSETS = {"pre_due": -5, "reminder_1": 1, "reminder_2": 6, "final_reminder": 11, "call": 16,
           "written_reminder": 30, "notice_of_default": 45, "handoff": 60}


def action_for(step: str, kind: DebtorKind = DebtorKind.BUSINESS, language: str = "nl") -> Action:
    history = [
        task(name, DUE + timedelta(days=off)) if name == "call" else sent(name, DUE + timedelta(days=off))
        for name, off in OFFSETS.items() if STEP_ORDER.index(name) < STEP_ORDER.index(step)
    ]
    today = DUE + timedelta(days=OFFSETS[step] + (3 if step == "handoff" else 0))
    inv = invoice(payment_url="https://pay.example/inv-1")
    action = plan_invoice(inv, debtor(kind, language=language), history, POLICY, today)
    assert action is not None and action.step == step
    return action


@pytest.mark.parametrize("language", ["nl", "en"])
@pytest.mark.parametrize("step", STEP_ORDER)
def test_every_step_renders_in_nl_and_en_with_the_facts(step: str, language: str) -> None:
    action = action_for(step, language=language)
    message = render(action, POLICY, creditor="Bakkerij Jansen B.V.")
    text = message.subject + "\n" + message.body
    assert message.language == language and message.subject
    assert "2026-001" in text
    assert ("1.210,00" if language == "nl" else "1,210.00") in text
    assert ("02-03-2026" if language == "nl" else "2 March 2026") in text
    assert "https://pay.example/inv-1" in text
    if OFFSETS[step] > 0:
        assert str(OFFSETS[step] + (3 if step == "handoff" else 0)) in text  # days overdue
    assert "None" not in text


@pytest.mark.parametrize("step", ["pre_due", "reminder_1", "reminder_2", "final_reminder", "written_reminder"])
def test_no_threats_before_the_notice_of_default(step: str) -> None:
    for language, words in (("nl", ("incasso", "kosten", "rente")), ("en", ("collection", "costs", "interest"))):
        body = render(action_for(step, language=language), POLICY, creditor="X").body.lower()
        assert not any(word in body for word in words), (step, language)


def test_the_consumer_14_day_letter_uses_the_compliant_wording_and_the_exact_amount() -> None:
    nl = render(action_for("notice_of_default", DebtorKind.CONSUMER, "nl"), POLICY, creditor="X").body
    assert "binnen veertien dagen na de dag waarop deze brief bij u is bezorgd" in nl
    assert "€ 181,50" in nl
    en = render(action_for("notice_of_default", DebtorKind.CONSUMER, "en"), POLICY, creditor="X").body
    assert "within fourteen days after the day on which you receive this letter" in en
    assert "EUR 181.50" in en
    for body in (nl, en):
        assert "14 dagen na vandaag" not in body and "of sending" not in body


def test_the_consumer_14_day_letter_names_the_statutory_interest_too() -> None:
    # domain.md: the notice says what follows without payment, costs *and interest* for the debtor
    assert "wettelijke rente" in render(action_for("notice_of_default", DebtorKind.CONSUMER, "nl"), POLICY,
                                        creditor="X").body
    assert "statutory interest" in render(action_for("notice_of_default", DebtorKind.CONSUMER, "en"), POLICY,
                                          creditor="X").body


@pytest.mark.parametrize("kind", [DebtorKind.BUSINESS, DebtorKind.CONSUMER])
@pytest.mark.parametrize("step", ["notice_of_default", "handoff"])
def test_costs_with_vat_say_so_and_costs_without_do_not(step: str, kind: DebtorKind) -> None:
    # art. 2 lid 3 Besluit vergoeding voor buitengerechtelijke incassokosten: VAT only where the creditor says so
    with_vat = Policy.model_validate({"creditor_can_deduct_vat": False})
    for language, words in (("nl", "(inclusief 21% btw)"), ("en", "(including 21% VAT)")):
        action = action_for(step, kind, language)
        assert words not in render(action, POLICY, creditor="X").body
        assert words in render(action, with_vat, creditor="X").body
    ten = Policy.model_validate({"creditor_can_deduct_vat": False, "collection_vat_rate": "0.10"})
    assert "(inclusief 10% btw)" in render(action_for(step, kind, "nl"), ten, creditor="X").body  # not 1E+1


def test_the_business_notice_states_the_pay_by_date_costs_and_interest() -> None:
    action = action_for("notice_of_default")
    body = render(action, POLICY, creditor="X").body
    assert action.pay_by is not None and action.pay_by.strftime("%d-%m-%Y") in body
    assert "€ 181,50" in body and "handelsrente" in body


def test_missing_data_is_an_error_naming_the_field_never_a_blank() -> None:
    with pytest.raises(TemplateDataMissing, match="'creditor' is undefined"):
        render(action_for("reminder_1"), POLICY, creditor="")
    without_pay_by = replace(action_for("notice_of_default"), pay_by=None)
    with pytest.raises(TemplateDataMissing, match="'pay_by' is undefined"):
        render(without_pay_by, POLICY, creditor="X")


def test_language_falls_back_to_the_policy_default_and_french_is_available_for_reminders() -> None:
    assert render(action_for("reminder_2", language="fr"), POLICY, creditor="X").language == "fr"
    assert render(action_for("notice_of_default", language="fr"), POLICY, creditor="X").language == "nl"
    assert render(action_for("reminder_1", language="de"), POLICY, creditor="X").language == "nl"


@pytest.mark.parametrize("amount", ["0.00", "-0.00", "5.00", "-5.00", "12.34", "999.99", "-99.99", "1000.00",
                                    "1234.56", "100.0", "100", "0.001", "0E-7", "1.5E+3", "1234567.891"])
def test_money_reads_the_same_on_the_short_path_for_amounts_under_a_thousand(amount: str) -> None:
    assert format_money(Decimal(amount), "EUR") == f"EUR {Decimal(amount):,.2f}"


def test_a_consumer_in_belgium_is_stated_the_belgian_cap_never_the_higher_dutch_scale() -> None:
    # domain.md, Belgium: a consumer's damages are capped (EUR 65 + 5 % above 500): on 1,210.00 that is 100.50,
    # where the Dutch scale would be 181.50; a lump sum, so no VAT is added even where the policy adds it
    from connector.escalation.legal_be import BELGIAN_CONSUMER_NOTE

    history = [sent(name, DUE + timedelta(days=off)) for name, off in OFFSETS.items()
               if name not in ("pre_due", "call", "notice_of_default", "handoff")]
    belgian = debtor(DebtorKind.CONSUMER, language="nl", address={"lines": ("Meir 1",), "postal_code": "2000",
                                                                  "city": "Antwerpen", "country": "BE"})
    with_vat = Policy.model_validate({"creditor_can_deduct_vat": False})
    action = plan_invoice(invoice(), belgian, history, with_vat, DUE + timedelta(days=45))
    assert action is not None and action.step == "notice_of_default"
    assert action.costs_if_unpaid == Decimal("100.50") and BELGIAN_CONSUMER_NOTE in action.warnings
    body = render(action, with_vat, creditor="X").body
    assert "€ 100,50" in body and "btw" not in body and "181,50" not in body
    # the agency's case later claims no more than that
    handed = plan_invoice(invoice(), belgian, [*history, sent("notice_of_default", DUE + timedelta(days=45))],
                          with_vat, DUE + timedelta(days=70))
    assert handed is not None and handed.step == "handoff" and handed.costs == Decimal("100.50")


def test_a_creditor_in_belgium_states_the_fixed_eur_40_per_invoice_not_the_dutch_scale() -> None:
    # domain.md, Belgium: law of 2 August 2002: EUR 40 fixed compensation (plus reasonable other costs, not added)
    from connector.escalation.legal_be import BELGIAN_CREDITOR_NOTE

    belgian = Policy.model_validate({"business_law": "BE"})
    history = [sent(name, DUE + timedelta(days=off)) if name != "call" else task(name, DUE + timedelta(days=off))
               for name, off in OFFSETS.items() if name not in ("pre_due", "notice_of_default", "handoff")]
    action = plan_invoice(invoice(), debtor(), history, belgian, DUE + timedelta(days=45))
    assert action is not None and action.step == "notice_of_default"
    assert action.costs == Decimal("40.00") and BELGIAN_CREDITOR_NOTE in action.warnings
    assert plan_invoice(invoice(), debtor(), history, POLICY, DUE + timedelta(days=45)).costs == Decimal("181.50")
    body = render(action, belgian, creditor="X").body
    assert "€ 40,00" in body and "forfaitaire schadevergoeding" in body
    assert "interest wegens betalingsachterstand" in body and "handelsrente" not in body
    # the Belgian late-payment rate from the day after the due date (law of 2 August 2002, art. 5), not the Dutch one
    belgian_rate = statutory_interest(Decimal("1210.00"), DUE + timedelta(days=1), DUE + timedelta(days=45),
                                      commercial=True, law="BE")
    assert action.interest == belgian_rate != statutory_interest(
        Decimal("1210.00"), DUE + timedelta(days=1), DUE + timedelta(days=45), commercial=True)
    english = render(replace(action, language="en"), belgian, creditor="X").body
    assert "late-payment interest (law of 2 August 2002" in english and "statutory commercial" not in english
