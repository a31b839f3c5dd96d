"""The planner, rule by rule: every schedule row, catch-up, prerequisites, holds, gap, lawful costs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from connector.escalation.debtor import plan_invoice
from connector.escalation.history import read_history
from connector.capabilities import Capabilities
from connector.escalation.policy import Channel, Policy, Step
from connector.models import DebtorKind, EventKind

from .conftest import DUE, debtor, event, invoice, sent, task

POLICY = Policy()


def day(offset: int) -> date:
    return DUE + timedelta(days=offset)


def step_on(offset: int, history: list, **kwargs) -> str | None:
    action = plan_invoice(
        kwargs.pop("inv", invoice()), kwargs.pop("deb", debtor()), history, kwargs.pop("policy", POLICY), day(offset),
        **kwargs,
    )
    return action.step if action else None


FULL = {
    "pre_due": -5,
    "reminder_1": 1,
    "reminder_2": 6,
    "final_reminder": 11,
    "call": 16,
    "written_reminder": 30,
    "notice_of_default": 45,
}


def _history_before(step: str) -> list:
    """Every earlier step taken on its schedule day."""
    names = list(FULL)
    return [
        task(name, day(FULL[name])) if name == "call" else sent(name, day(FULL[name]))
        for name in names[: names.index(step)] if step in names
    ] if step in names else [
        task(name, day(off)) if name == "call" else sent(name, day(off)) for name, off in FULL.items()
    ]


@pytest.mark.parametrize(
    ("step", "offset"),
    [*FULL.items(), ("handoff", 60)],
)
def test_each_schedule_row_falls_due_on_its_day_and_not_the_day_before(step: str, offset: int) -> None:
    history = _history_before(step)
    assert step_on(offset - 1, history) is None
    assert step_on(offset, history) == step


def test_the_call_step_is_a_call_task_and_the_handoff_goes_to_the_agency() -> None:
    call = plan_invoice(invoice(), debtor(), _history_before("call"), POLICY, day(16))
    assert call is not None and call.channel is Channel.CALL_TASK
    handoff = plan_invoice(invoice(), debtor(), _history_before("handoff"), POLICY, day(60))
    assert handoff is not None and handoff.channel is Channel.AGENCY


def test_pre_due_is_skipped_for_invoices_created_less_than_five_days_before_the_due_date() -> None:
    late = invoice(issue_date=day(-3))
    assert step_on(-3, [], inv=late) is None
    assert step_on(-1, [], inv=late) is None
    assert step_on(1, [], inv=late) == "reminder_1"
    assert step_on(0, []) is None  # pre_due is over on the due date itself


def test_steps_after_reminder_1_count_from_the_day_it_was_actually_sent() -> None:
    history = [sent("reminder_1", day(4))]
    assert step_on(8, history) is None
    action = plan_invoice(invoice(), debtor(), history, POLICY, day(9))
    assert action is not None and action.step == "reminder_2"
    assert action.reason == "reminder_2: 5 days after reminder_1 on 2026-03-06, EUR 1,210.00 outstanding"


def test_later_steps_keep_their_normal_distance_from_the_step_actually_taken() -> None:
    history = [sent("written_reminder", day(50))]  # first seen at D+50
    assert step_on(64, history) is None  # notice normally 15 days after the written reminder
    assert step_on(65, history) == "notice_of_default"


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(3, "reminder_1"), (20, "reminder_1"), (31, "written_reminder"), (50, "written_reminder"), (400, "written_reminder")],
)
def test_catch_up_takes_the_single_most_advanced_step_whose_dates_and_prerequisites_are_met(
    offset: int, expected: str
) -> None:
    action = plan_invoice(invoice(), debtor(), [], POLICY, day(offset))
    assert action is not None and action.step == expected
    if expected == "written_reminder":
        assert "catching up" in action.reason


def test_catch_up_never_jumps_to_the_notice_or_handoff_without_their_prerequisites() -> None:
    assert step_on(46, [sent("pre_due", day(-5))]) == "written_reminder"  # pre_due is not a reminder
    assert step_on(200, [sent("reminder_1", day(1))]) == "notice_of_default"  # one reminder is enough
    assert step_on(200, [sent("written_reminder", day(150))]) == "notice_of_default"
    # notice sent, pay-by date not yet passed: no handoff even long after D+60
    assert step_on(100, [sent("written_reminder", day(50)), sent("notice_of_default", day(90))]) is None
    assert step_on(105, [sent("written_reminder", day(50)), sent("notice_of_default", day(90))]) == "handoff"


def test_never_twice_never_backwards_nothing_after_handoff() -> None:
    assert step_on(1, [sent("reminder_1", day(1))]) is None
    assert step_on(35, [sent("written_reminder", day(30))]) is None
    assert step_on(300, [*_history_before("handoff"), sent("handoff", day(60))]) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"is_open": False, "status": "PAID"},
        {"outstanding": D(0), "amount_paid": D("1210.00")},
        {"is_credit_note": True, "total": D(-100), "outstanding": D(-100)},
        {"is_credit_note": True},
    ],
)
def test_paid_credited_and_credit_notes_get_nothing(changes: dict) -> None:
    assert plan_invoice(invoice(**changes), debtor(), [], POLICY, day(20)) is None


def test_partial_payment_continues_on_the_outstanding_amount() -> None:
    action = plan_invoice(
        invoice(amount_paid=D("710.00"), outstanding=D("500.00")), debtor(), [sent("reminder_1", day(1))], POLICY, day(6)
    )
    assert action is not None and action.step == "reminder_2"
    assert action.outstanding == D("500.00") and "EUR 500.00 outstanding" in action.reason


def test_a_reopened_invoice_resumes_where_it_was() -> None:
    history = [
        sent("reminder_1", day(1)),
        sent("reminder_2", day(6)),
        event(EventKind.CLOSED, day(7)),
        event(EventKind.REOPENED, day(9)),
    ]
    assert step_on(11, history) == "final_reminder"


def test_min_gap_between_two_mails_to_the_same_debtor() -> None:
    history = [sent("reminder_1", day(1))]
    assert step_on(6, history, last_mail_to_debtor=day(4)) is None
    assert step_on(7, history, last_mail_to_debtor=day(4)) == "reminder_2"
    # a call task is not a mail
    assert step_on(16, _history_before("call"), last_mail_to_debtor=day(15)) == "call"


def test_a_dispute_pauses_until_released_then_resumes_at_the_step_it_stood_at() -> None:
    history = [sent("reminder_1", day(1)), event(EventKind.HOLD_SET, day(3), hold="dispute")]
    assert step_on(30, history) is None
    released = [*history, event(EventKind.HOLD_RELEASED, day(30), hold="dispute")]
    # paused D+3..D+29 (27 days): reminder_2 moves from D+6 to D+33, no burst of missed steps
    assert step_on(32, released) is None
    assert step_on(33, released) == "reminder_2"


def test_a_promise_pauses_until_its_date_plus_grace_then_resumes() -> None:
    history = [sent("reminder_1", day(1)), event(EventKind.HOLD_SET, day(2), hold="promise", until=day(20).isoformat())]
    assert step_on(23, history) is None  # grace 3 days
    # paused D+2..D+23 (22 days): reminder_2 from D+6 to D+28
    assert step_on(27, history) is None
    assert step_on(28, history) == "reminder_2"


def test_the_platforms_promised_payment_date_is_a_hold_that_resumes_at_the_step_it_stood_at() -> None:
    promised = invoice(promised_payment_date=day(10))
    history = [sent("reminder_1", day(1))]
    assert step_on(13, history, inv=promised) is None  # held until the date plus 3 days' grace
    # paused D+2..D+13 (12 days), like `hold --promise`: reminder_2 from D+6 to D+18, never a jump to the call
    assert [step_on(offset, history, inv=promised) for offset in (14, 17)] == [None, None]
    assert step_on(18, history, inv=promised) == "reminder_2"
    history.append(sent("reminder_2", day(18)))
    assert step_on(23, history, inv=promised) == "final_reminder"  # its normal distance from the step taken


def test_the_platforms_promise_recorded_by_sync_holds_as_the_field_did_and_ends_apart_from_a_promise_by_hand() -> None:
    platform = {"hold": "promise", "source": "platform"}
    recorded = [sent("reminder_1", day(1)), event(EventKind.HOLD_SET, day(5), **platform, until=day(10).isoformat())]
    field = invoice(promised_payment_date=day(10))
    # the same pause as the invoice field gives (from where escalation stood, D+2..D+13), with or without the field
    for inv in (field, invoice()):
        assert [step_on(offset, recorded, inv=inv) for offset in (13, 17, 18)] == [None, None, "reminder_2"]
    # the platform clearing its date ends only its own promise: one made by hand still holds
    by_hand = event(EventKind.HOLD_SET, day(6), hold="promise", until=day(30).isoformat())
    cleared = event(EventKind.HOLD_RELEASED, day(8), **platform)
    assert step_on(20, [*recorded, by_hand, cleared]) is None
    # a release by hand ends every hold, the platform's too
    released = event(EventKind.HOLD_RELEASED, day(8))
    assert step_on(20, [*recorded, released], inv=field) == "final_reminder"


def test_a_platform_promise_known_before_the_due_date_holds_only_until_it_lapses() -> None:
    promised = invoice(promised_payment_date=day(-2))
    assert step_on(-5, [], inv=promised) is None  # no pre-due reminder while the promise stands
    first = next(offset for offset in range(-5, 60) if step_on(offset, [], inv=promised) is not None)
    # held through D+1 (grace): reminder_1 follows at its day shifted by the 2 held days after the due date
    assert first == 3 and step_on(3, [], inv=promised) == "reminder_1"


def test_a_kept_arrangement_pauses_and_a_missed_instalment_resumes() -> None:
    arrangement = event(
        EventKind.ARRANGEMENT_SET,
        day(10),
        down_payment={"due": day(10).isoformat(), "amount": "210.00"},
        instalments=[{"due": day(40).isoformat(), "amount": "500.00"}, {"due": day(70).isoformat(), "amount": "500.00"}],
        outstanding="1210.00",
    )
    history = [sent("reminder_1", day(1)), arrangement]
    paid_down = invoice(amount_paid=D("210.00"), outstanding=D("1000.00"))
    assert step_on(30, history, inv=paid_down) is None
    # second instalment missed: due D+40, grace 3 → broken from D+44
    assert step_on(43, history, inv=paid_down) is None
    assert step_on(44, history, inv=paid_down) is not None
    paid_both = invoice(amount_paid=D("710.00"), outstanding=D("500.00"))
    assert step_on(60, history, inv=paid_both) is None
    # nothing paid at all: the down payment is missed after its grace
    assert step_on(14, history) is not None


def test_manual_exclusion_and_debtor_overrides() -> None:
    excluded = [event(EventKind.HOLD_SET, day(0), hold="excluded")]
    assert step_on(5, excluded) is None
    policy = Policy.model_validate({"debtors": [{"connection": "acme", "debtor": "deb-1", "excluded": True}]})
    assert step_on(5, [], policy=policy) is None
    called = Policy.model_validate({"debtors": [{"connection": "acme", "debtor": "deb-1", "channel": "call_task"}]})
    action = plan_invoice(invoice(), debtor(), [], called, day(1))
    assert action is not None and action.channel is Channel.CALL_TASK


def test_step_min_outstanding_and_debtor_kind_filters() -> None:
    policy = Policy.model_validate({"steps": {"reminder_1": {"min_outstanding": "2000"}}})
    assert step_on(1, [], policy=policy) is None
    consumers_only = Policy.model_validate({"steps": {"pre_due": {"applies_to": ["consumer"]}}})
    assert step_on(-5, [], policy=consumers_only) is None
    assert step_on(-5, [], policy=consumers_only, deb=debtor(DebtorKind.CONSUMER)) == "pre_due"


def test_invoices_without_history_alike_but_for_what_a_rule_checks_get_their_own_step() -> None:
    # invoices without history are decided once per (policy, dates, kind): the amount and the policy still count
    policy = Policy.model_validate({"steps": {"reminder_1": {"min_outstanding": "1000"}}})
    small = invoice(platform_id="inv-2", total=D("500.00"), outstanding=D("500.00"))
    assert step_on(1, [], policy=policy) == "reminder_1"
    assert step_on(1, [], policy=policy, inv=small) is None
    assert step_on(1, [], inv=small) == "reminder_1"
    consumers_only = Policy.model_validate({"steps": {"pre_due": {"applies_to": ["consumer"]}}})
    assert step_on(-5, [], policy=consumers_only, deb=debtor(DebtorKind.CONSUMER)) == "pre_due"
    assert step_on(-5, [], policy=consumers_only) is None
    assert step_on(-5, [], policy=POLICY) == "pre_due"
    assert step_on(-5, [], policy=POLICY, inv=invoice(issue_date=day(-3))) is None


def test_invoices_alike_but_for_their_history_get_their_own_step() -> None:
    # the steps due are remembered per (policy, dates, kind, steps taken, days on hold): the history still counts
    on_time = [sent("reminder_1", day(1))]
    late = [sent("reminder_1", day(4))]
    assert step_on(8, on_time) == "reminder_2"
    assert step_on(8, late) is None  # reminder_2 counts from the day reminder_1 went out
    assert step_on(9, late) == "reminder_2"
    paused = [*on_time, event(EventKind.HOLD_SET, day(2), hold="dispute"), event(EventKind.HOLD_RELEASED, day(5))]
    assert step_on(8, paused) is None  # three days on hold shift it
    assert step_on(9, paused) == "reminder_2"


def test_business_notice_states_costs_interest_and_pay_by() -> None:
    action = plan_invoice(invoice(), debtor(), _history_before("notice_of_default"), POLICY, day(45))
    assert action is not None
    assert action.costs == D("181.50")  # 15 % of 1,210: above the EUR 40 floor
    assert action.pay_by == day(59)
    assert action.interest is not None and action.interest > 0


def test_consumer_14_day_letter_states_the_exact_cost_and_charges_nothing_yet() -> None:
    consumer = debtor(DebtorKind.CONSUMER)
    action = plan_invoice(invoice(), consumer, _history_before("notice_of_default"), POLICY, day(45))
    assert action is not None and action.step == "notice_of_default"
    assert action.costs is None and action.interest is None
    assert action.costs_if_unpaid == D("181.50")
    # sent Thursday 2026-04-16: received Saturday 18th; 14 days from the 19th: term ends 2026-05-02
    assert action.presumed_receipt == date(2026, 4, 18)
    assert action.pay_by == date(2026, 5, 2)


def test_consumer_handoff_waits_for_the_14_day_term_and_only_then_charges_costs() -> None:
    consumer = debtor(DebtorKind.CONSUMER)
    history = [*_history_before("notice_of_default"), sent("notice_of_default", day(45))]  # sent 2026-04-16
    assert plan_invoice(invoice(), consumer, history, POLICY, date(2026, 5, 2)) is None  # D+61, term not passed
    action = plan_invoice(invoice(), consumer, history, POLICY, date(2026, 5, 3))
    assert action is not None and action.step == "handoff"
    assert action.costs == D("181.50")


def test_the_notice_becomes_a_letter_where_the_platform_cannot_carry_our_text() -> None:
    xero_like = Capabilities(native_reminder=True, custom_message=False, consolidated_reminders=False)
    action = plan_invoice(invoice(), debtor(), _history_before("notice_of_default"), POLICY, day(45), xero_like)
    assert action is not None and action.channel is Channel.LETTER


def test_costs_with_vat_when_the_creditor_cannot_deduct_it() -> None:
    policy = Policy.model_validate({"creditor_can_deduct_vat": False})
    action = plan_invoice(invoice(), debtor(), _history_before("notice_of_default"), policy, day(45))
    assert action is not None and action.costs == D("219.62")


def test_a_disabled_anchor_step_lets_the_steps_counted_from_it_use_their_schedule_day() -> None:
    policy = Policy.model_validate({"steps": {"reminder_1": {"enabled": False}}})
    assert step_on(1, [], policy=policy) is None
    assert step_on(6, [], policy=policy) == "reminder_2"


def test_arrangement_payments_can_come_from_payment_seen_events() -> None:
    instalments = [{"due": day(20).isoformat(), "amount": "600.00"}, {"due": day(50).isoformat(), "amount": "10.00"}]
    arrangement = event(EventKind.ARRANGEMENT_SET, day(10), instalments=instalments)
    paid = event(EventKind.PAYMENT_SEEN, day(19), amount="600.00", outstanding="610.00")
    half = invoice(amount_paid=D("600.00"), outstanding=D("610.00"))
    assert step_on(40, [sent("reminder_1", day(1)), arrangement, paid], inv=half) is None
    assert step_on(40, [sent("reminder_1", day(1)), arrangement], inv=half) is not None


def test_an_unconfirmed_rate_shows_up_as_a_warning_on_the_action_that_uses_it() -> None:
    late = invoice(due_date=date(2026, 8, 3), issue_date=date(2026, 7, 3))  # interest from 2026-08-04
    history = [sent("written_reminder", date(2026, 9, 2))]
    action = plan_invoice(late, debtor(), history, POLICY, date(2026, 9, 17))
    assert action is not None and action.step == "notice_of_default" and action.interest
    assert any("not yet confirmed" in w and "from 2026-07-01" in w for w in action.warnings)


def test_a_stale_rate_table_shows_up_as_a_warning_on_the_action() -> None:
    late = invoice(due_date=date(2027, 1, 4), issue_date=date(2026, 12, 1))
    history = [sent("written_reminder", date(2027, 2, 3))]
    action = plan_invoice(late, debtor(), history, POLICY, date(2027, 2, 18))
    assert action is not None and action.step == "notice_of_default"
    assert any("sure only up to 2026-12-31" in w for w in action.warnings)


def test_statutory_costs_are_not_stated_for_other_currencies() -> None:
    usd = invoice(currency="USD")
    action = plan_invoice(usd, debtor(), _history_before("notice_of_default"), POLICY, day(45))
    assert action is not None and action.costs is None and action.interest is None
    assert action.warnings == ("statutory costs and interest are in EUR only",)


def test_an_action_carries_what_a_reminder_needs_without_reading_the_store() -> None:
    who = debtor(DebtorKind.BUSINESS)
    bill = invoice()
    action = plan_invoice(bill, who, [sent("reminder_1", day(1))], POLICY, day(45))
    assert action is not None and action.step is Step.NOTICE_OF_DEFAULT
    assert action.debtor == who and action.invoices[0].invoice == bill
    assert action.template == "notice_of_default" and action.pay_by is not None and action.interest is not None
    assert action.as_json()["step"] == "notice_of_default" and action.as_json()["debtor"] == who.platform_id


def test_a_notice_of_default_that_is_only_a_task_is_not_sent_so_no_handoff_and_no_consumer_costs() -> None:
    # domain.md: the handoff only after the notice of default was *sent*; a consumer owes costs only once the
    # 14-day letter's term has passed. A mail the platform refused, or a letter not yet posted, is a task, not sent.
    consumer = debtor(DebtorKind.CONSUMER)
    history = [sent("reminder_1", day(1)), sent("reminder_2", day(6)), sent("final_reminder", day(11)),
               task("call", day(16)), sent("written_reminder", day(30)), task("notice_of_default", day(45))]
    assert all(step_on(offset, history, deb=consumer) is None for offset in (62, 70, 90))
    # sent by hand later (`task done --sent-on`): the term runs from that day, then the handoff, with its costs
    done = [*history, sent("notice_of_default", day(50))]
    handoff = plan_invoice(invoice(), consumer, done, POLICY, day(75))
    assert handoff is not None and handoff.step == "handoff" and handoff.costs is not None and handoff.costs > 0
    assert step_on(60, done, deb=consumer) is None  # day(50)'s term has not passed by D+60


def test_refused_reminders_still_lead_to_the_notice_of_default_as_the_next_task_but_not_to_a_handoff() -> None:
    # a debtor without an e-mail address: every reminder became a task; escalation does not stop silently (the
    # notice comes as the next task, a letter to post), but nothing goes to the agency until a notice was sent
    refused = [task("reminder_1", day(1)), task("reminder_2", day(6)), task("final_reminder", day(11)),
               task("call", day(16)), task("written_reminder", day(30))]
    assert step_on(45, refused) == "notice_of_default"
    assert step_on(75, [*refused, task("notice_of_default", day(45))]) is None


def test_the_last_instalment_of_an_arrangement_has_its_grace_too() -> None:
    # an instalment counts as missed only after the grace days (3): also the last one, before the rest is claimed
    arrangement = event(EventKind.ARRANGEMENT_SET, day(5), outstanding="1210.00", instalments=[
        {"due": day(10).isoformat(), "amount": "710.00"}, {"due": day(40).isoformat(), "amount": "500.00"}])
    history = [sent("reminder_1", day(1)), arrangement]
    first_paid = invoice(amount_paid=D("710.00"), outstanding=D("500.00"))
    assert [step_on(offset, history, inv=first_paid) for offset in (41, 42, 43, 44)] == [None] * 4
    # missed: escalation resumes after the grace where it stood, shifted by the days held (D+5..D+43)
    assert step_on(45, history, inv=first_paid) == "reminder_2"
    held = read_history(first_paid, history, POLICY, day(42))
    assert held.hold == f"payment arrangement kept, awaiting the instalment of {day(40)}"
