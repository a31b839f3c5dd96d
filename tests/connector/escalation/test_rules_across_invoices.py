"""The rules across invoices, holds and payments (domain.md): first contact within 15 days per invoice, a
platform promise is a hold, interest follows the money, consumer costs fixed at the term's end, an arrangement
covers what it names. Simulated day by day as the job runs, each action recorded as delivery would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from types import SimpleNamespace
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connector.capabilities import Capabilities
from connector.escalation.action import MAIL_CHANNELS, Action
from connector.escalation.calendar import consumer_term_end
from connector.escalation.debtor import _could_have_gone_out, plan_invoice, plan_rows
from connector.escalation.legal import business_compensation, collection_costs, rate_table, statutory_interest
from connector.escalation.policy import Policy
from connector.models import DebtorKind, Event, EventKind, Invoice, Payment

from .conftest import DUE, debtor, event, invoice, sent, task

ONE_AT_A_TIME = Capabilities(native_reminder=True, custom_message=False, consolidated_reminders=False)  # Xero
CONSOLIDATING = Capabilities(native_reminder=True, custom_message=True, consolidated_reminders=True)  # Moneybird


def day(offset: int) -> date:
    return DUE + timedelta(days=offset)


def record(action: Action, histories: dict[str, list[Event]]) -> None:
    """What delivery records on each invoice of an action it carried out."""
    kind = EventKind.HANDOFF if action.step == "handoff" else (
        EventKind.REMINDER_SENT if action.channel in MAIL_CHANNELS else EventKind.TASK_CREATED
    )
    for line in action.invoices:
        histories[line.platform_id].append(Event(kind=kind, on=action.as_of, step=action.step))


def simulate(
    invoices: dict[str, Invoice],
    histories: dict[str, list[Event]],
    days: range,
    *,
    kind: DebtorKind = DebtorKind.BUSINESS,
    policy: Policy = Policy(),
    caps: Capabilities = ONE_AT_A_TIME,
    before_each_day: Callable[[date], None] | None = None,
) -> list[Action]:
    """Plan every day of `days` (offsets from DUE) and record what was done; `before_each_day` changes the book."""
    who = debtor(kind)
    done: list[Action] = []
    for offset in days:
        today = day(offset)
        if before_each_day is not None:
            before_each_day(today)
        rows = [(inv, who, tuple(histories[key])) for key, inv in invoices.items() if inv.is_open]
        mailed = [e.on for events in histories.values() for e in events if e.kind is EventKind.REMINDER_SENT]
        recent = {("acme", who.platform_id): max(mailed)} if mailed else {}
        for action in plan_rows(rows, policy, today, capabilities={"acme": caps}, recent_mails=recent):
            done.append(action)
            record(action, histories)
    return done


def first_contact(histories: dict[str, list[Event]], key: str) -> date | None:
    return min((e.on for e in histories[key] if e.step and e.step != "pre_due"), default=None)


# --- every invoice gets its first contact in time ---------------------------------------------------------------


def test_invoices_due_the_same_day_are_each_mailed_that_day_on_a_platform_that_mails_one_at_a_time() -> None:
    invoices = {f"i{n}": invoice(platform_id=f"i{n}", number=f"F{n}") for n in range(6)}
    histories: dict[str, list[Event]] = {key: [] for key in invoices}

    done = simulate(invoices, histories, range(-10, 20))

    assert all(first_contact(histories, key) == day(1) for key in invoices)  # not one every 3 days
    first_day = [a for a in done if a.as_of == day(1)]
    assert len(first_day) == 6 and all(len(a.invoices) == 1 and a.step == "reminder_1" for a in first_day)
    mail_days = sorted({a.as_of for a in done if a.is_mail})
    assert all((b - a).days >= Policy().min_gap_days for a, b in zip(mail_days, mail_days[1:], strict=False))


def test_a_newer_invoice_gets_its_first_reminder_on_its_day_beside_older_ones_in_progress() -> None:
    # an older invoice in progress mails every few days; the gap never pushes a newer one's first reminder back
    invoices = {"old": invoice(platform_id="old", number="F1"),
                **{f"new{n}": invoice(platform_id=f"new{n}", number=f"F{n + 2}", due_date=day(4 + n)) for n in range(4)}}
    histories: dict[str, list[Event]] = {key: [] for key in invoices}

    simulate(invoices, histories, range(-10, 40), policy=Policy.model_validate({"min_gap_days": 7}))

    for key, inv in invoices.items():
        assert first_contact(histories, key) == inv.due_date + timedelta(days=1), key


def test_the_gap_does_not_push_back_the_first_reminder_of_an_invoice_due_two_days_later() -> None:
    # domain.md: the gap counts between mail days, "never by pushing a newer invoice's first reminder back"
    invoices = {"a": invoice(platform_id="a", number="F1"), "b": invoice(platform_id="b", number="F2", due_date=day(2))}
    histories: dict[str, list[Event]] = {key: [] for key in invoices}

    simulate(invoices, histories, range(-10, 10), policy=Policy.model_validate({"min_gap_days": 3}))

    assert first_contact(histories, "a") == day(1) and first_contact(histories, "b") == day(3)


def test_a_consolidating_platform_covers_the_invoices_due_together_in_one_mail() -> None:
    invoices = {f"i{n}": invoice(platform_id=f"i{n}", number=f"F{n}") for n in range(3)}
    histories: dict[str, list[Event]] = {key: [] for key in invoices}

    done = simulate(invoices, histories, range(0, 2), caps=CONSOLIDATING)

    assert [(a.step, len(a.invoices)) for a in done] == [("reminder_1", 3)]


# --- a mail the minimum gap delays is never skipped by the next step -----------------------------------------------


def _steps_on(offset: int, events: list[Event], gap: int) -> list[str]:
    policy = Policy.model_validate({"min_gap_days": gap})
    rows = [(invoice(), debtor(), events)]
    return [a.step for a in plan_rows(rows, policy, day(offset), capabilities={"acme": ONE_AT_A_TIME})]


def test_a_call_due_on_the_day_the_gap_ends_comes_after_the_final_reminder_the_gap_delayed() -> None:
    # gap 10: reminder_2 went out at D+11, so the final reminder (due D+16) waits for the mail day D+21, the very
    # day the call falls due (10 days after reminder_2): the final reminder goes first, the call counts from it
    history = [sent("reminder_1", day(1)), sent("reminder_2", day(11))]
    assert _steps_on(21, history, gap=10) == ["final_reminder"]
    after = [*history, sent("final_reminder", day(21))]
    assert _steps_on(25, after, gap=10) == []
    assert _steps_on(26, after, gap=10) == ["call"]  # five days after the final reminder, as the schedule has it


def test_a_call_due_before_the_gap_ends_waits_for_the_final_reminder_the_gap_delayed() -> None:
    # gap 12: reminder_2 at D+13, the final reminder due D+18 may go out from D+25; the call's day (D+23) comes
    # first, and it waits rather than skip the final reminder
    history = [sent("reminder_1", day(1)), sent("reminder_2", day(13))]
    assert [_steps_on(offset, history, gap=12) for offset in (23, 24)] == [[], []]
    assert _steps_on(25, history, gap=12) == ["final_reminder"]


@given(gap=st.integers(min_value=0, max_value=20), consolidating=st.booleans(), invoices_due=st.lists(
    st.integers(min_value=0, max_value=12), min_size=1, max_size=3))
@settings(max_examples=40, deadline=None)
def test_every_step_is_taken_in_order_whatever_the_gap(gap, consolidating, invoices_due) -> None:
    invoices = {f"i{n}": invoice(platform_id=f"i{n}", number=f"F{n}", due_date=day(due))
                for n, due in enumerate(invoices_due)}
    histories: dict[str, list[Event]] = {key: [] for key in invoices}

    simulate(invoices, histories, range(-10, 160), policy=Policy.model_validate({"min_gap_days": gap}),
             caps=CONSOLIDATING if consolidating else ONE_AT_A_TIME)

    for key in invoices:
        steps = [e.step for e in histories[key] if e.step and e.step != "pre_due"]
        assert steps == list(ORDER[: len(steps)]) and "call" in steps, (key, steps)


# --- a promise read from the platform is a hold ---------------------------------------------------------------------


def test_a_platform_promise_read_before_the_due_date_shifts_the_schedule_by_the_time_it_held() -> None:
    # promised for D+10 and known from before the due date: held through D+13 (3 days' grace), then the schedule
    # resumes shifted by the 14 days it held (D..D+13) -- not silence until the written reminder
    invoices = {"i0": invoice(platform_id="i0", promised_payment_date=day(10))}
    histories: dict[str, list[Event]] = {"i0": []}

    done = simulate(invoices, histories, range(-10, 40))

    assert [(a.step, (a.as_of - DUE).days) for a in done] == [
        ("reminder_1", 15), ("reminder_2", 20), ("final_reminder", 25), ("call", 30)]


# --- interest follows the money, costs fixed at the term's end ----------------------------------------------------


def test_interest_runs_on_the_principal_as_it_stood_each_day() -> None:
    # 1,000 overdue, 400 paid on day 20: interest on 1,000 for days 1-20 and on 600 after
    part_paid = invoice(total=D("1000.00"), amount_paid=D("400.00"), outstanding=D("600.00"),
                        payments=(Payment(on=day(20), amount=D("400.00")),))
    history = [sent("reminder_1", day(1)), sent("reminder_2", day(6)), sent("final_reminder", day(11)),
               task("call", day(16)), sent("written_reminder", day(30))]

    action = plan_invoice(part_paid, debtor(), history, Policy(), day(45))

    assert action is not None and action.step == "notice_of_default"
    expected = (statutory_interest(D(1000), day(1), day(20), commercial=True)
                + statutory_interest(D(600), day(21), day(45), commercial=True))
    assert action.interest == expected
    assert action.interest > statutory_interest(D(600), day(1), day(45), commercial=True)


def test_a_payment_before_the_due_date_lowers_the_principal_from_the_start() -> None:
    early = invoice(total=D("1000.00"), amount_paid=D("400.00"), outstanding=D("600.00"),
                    payments=(Payment(on=day(-3), amount=D("400.00")),))
    history = [sent("reminder_1", day(1)), sent("written_reminder", day(30))]
    action = plan_invoice(early, debtor(), history, Policy(), day(45))
    assert action is not None and action.interest == statutory_interest(D(600), day(1), day(45), commercial=True)


def test_statutory_interest_lowers_the_principal_from_the_day_after_each_payment() -> None:
    with_payments = statutory_interest(D(1000), day(1), day(90), commercial=True,
                                       payments=[(day(20), D(400)), (day(50), D(100))])
    split = (statutory_interest(D(1000), day(1), day(20), commercial=True)
             + statutory_interest(D(600), day(21), day(50), commercial=True)
             + statutory_interest(D(500), day(51), day(90), commercial=True))
    assert abs(with_payments - split) <= D("0.02")  # the same days and rates, rounded once instead of three times


def _consumer_case(paid_on: date) -> tuple[Action | None, date]:
    notice = day(45)
    term_end = consumer_term_end(notice, Policy())
    history = [sent("reminder_1", day(1)), sent("written_reminder", day(30)), sent("notice_of_default", notice)]
    paid = invoice(total=D("1000.00"), amount_paid=D("500.00"), outstanding=D("500.00"),
                   payments=(Payment(on=paid_on, amount=D("500.00")),))
    today = max(term_end + timedelta(days=10), day(61))
    return plan_invoice(paid, debtor(DebtorKind.CONSUMER), history, Policy(), today), term_end


def test_consumer_costs_are_fixed_on_what_was_unpaid_when_the_14_day_term_ended() -> None:
    _, term_end = _consumer_case(day(0))
    after, _ = _consumer_case(term_end + timedelta(days=3))  # paid after the term: the costs stay
    within, _ = _consumer_case(term_end)  # paid within the term: the costs are lowered

    assert after is not None and after.step == "handoff" and after.costs == collection_costs(D(1000))
    assert within is not None and within.costs == collection_costs(D(500))


# --- an arrangement covers what it names --------------------------------------------------------------------------


def test_an_arrangement_for_part_of_the_debt_holds_while_kept_and_the_rest_is_claimed_after_it() -> None:
    agreed = event(EventKind.ARRANGEMENT_SET, day(3), outstanding="1200.00",
                   instalments=[{"due": day(20).isoformat(), "amount": "400.00"},
                                {"due": day(40).isoformat(), "amount": "400.00"}])
    history = [sent("reminder_1", day(1)), agreed]
    kept_so_far = invoice(total=D("1200.00"), amount_paid=D("400.00"), outstanding=D("800.00"))
    both_paid = invoice(total=D("1200.00"), amount_paid=D("800.00"), outstanding=D("400.00"))

    assert plan_invoice(kept_so_far, debtor(), history, Policy(), day(30)) is None  # held while kept
    assert plan_invoice(both_paid, debtor(), history, Policy(), day(40)) is None  # the last instalment's day
    # kept to the end with 400 still owed: escalation resumes at the step it stood at (paused D+3..D+40)
    resumed = [plan_invoice(both_paid, debtor(), history, Policy(), day(offset)) for offset in range(41, 60)]
    steps = [(offset, a.step) for offset, a in zip(range(41, 60), resumed, strict=True) if a is not None]
    assert steps and steps[0][1] == "reminder_2"


# --- the same rules over random interleavings ---------------------------------------------------------------------

ORDER = ("reminder_1", "reminder_2", "final_reminder", "call", "written_reminder", "notice_of_default", "handoff")
CENT = D("0.01")

happenings = st.lists(
    st.tuples(
        st.sampled_from(["payment", "promise", "platform_promise", "dispute", "arrangement"]),
        st.integers(min_value=0, max_value=5),  # which invoice
        st.integers(min_value=-5, max_value=70),  # on which day (offset from DUE)
        st.integers(min_value=1, max_value=40),  # a length: days held, or days the platform dates a payment earlier
        st.sampled_from([D("0.25"), D("0.5"), D(1)]),  # the share paid or arranged
        st.booleans(),  # an arrangement kept or not
    ),
    max_size=8,
)
invoice_specs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=25),  # due (offset from DUE)
        st.integers(min_value=100, max_value=2_000_000),  # cents
        st.booleans(),  # first seen after its due date (a newly connected book: catching up is allowed)
    ),
    min_size=1,
    max_size=6,
)


def _interest_day_by_day(inv: Invoice, today: date, commercial: bool) -> D:
    """The oracle: each day's principal (what was unpaid at the end of the day before) at the day's rate / 365."""
    table = rate_table()
    periods = table.commercial if commercial else table.consumer
    total = D(0)
    current = inv.due_date + timedelta(days=1)
    while current <= today:
        principal = inv.outstanding + sum((p.amount for p in inv.payments if p.on >= current), D(0))
        rate = next(p.rate for p in reversed(periods) if p.start <= current)
        total += principal * rate / 100 / 365
        current += timedelta(days=1)
    return total.quantize(CENT, rounding=ROUND_HALF_UP)


def _unpaid_at(inv: Invoice, end_of: date) -> D:
    return inv.outstanding + sum((p.amount for p in inv.payments if p.on > end_of), D(0))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(  # a second arrangement after a completed one: the time the first held still shifts the schedule
    specs=[(0, 100, False)], kind=DebtorKind.BUSINESS, gap=0, consolidating=False,
    events=[("payment", 0, 0, 1, D("0.25"), False), ("arrangement", 0, 17, 4, D("0.25"), True),
            ("arrangement", 0, 45, 1, D("0.25"), False)],
)
@example(  # the gap holds the final reminder back into a promise; after it the call is due: the final goes first
    specs=[(7, 100, False)], kind=DebtorKind.BUSINESS, gap=10, consolidating=False,
    events=[("promise", 0, 3, 33, D("0.25"), False), ("promise", 0, 65, 1, D("0.25"), False)],
)
@example(  # the same with an arrangement that ends on another invoice's mail day
    specs=[(17, 100, False), (0, 100, False)], kind=DebtorKind.BUSINESS, gap=4, consolidating=False,
    events=[("arrangement", 0, 33, 2, D("0.25"), True)],
)
@given(specs=invoice_specs, events=happenings, kind=st.sampled_from(list(DebtorKind)),
       gap=st.integers(min_value=0, max_value=10), consolidating=st.booleans())
def test_first_contact_in_time_no_step_skipped_after_a_hold_and_amounts_on_the_daily_principal(
    specs, events, kind, gap, consolidating
) -> None:
    # gaps up to 10 days (the default is 3): a mail the gap delays is never overtaken by the next step
    policy = Policy.model_validate({"min_gap_days": gap})
    invoices: dict[str, Invoice] = {}
    seen_from: dict[str, date] = {}
    for n, (due, cents, late) in enumerate(specs):
        amount = D(cents) / 100
        invoices[f"i{n}"] = invoice(platform_id=f"i{n}", number=f"F{n}", due_date=day(due), total=amount,
                                    outstanding=amount)
        seen_from[f"i{n}"] = day(due + 20) if late else day(-30)
    histories: dict[str, list[Event]] = {key: [] for key in invoices}
    held: set[str] = set()
    """Invoices that were on hold (promise, dispute, arrangement) at some time: their first contact may wait."""
    instalments: dict[date, list[tuple[str, D]]] = {}

    def pay(key: str, amount: D, paid_on: date) -> None:
        inv = invoices[key]
        amount = min(amount.quantize(CENT), inv.outstanding)
        if amount <= 0 or not inv.is_open:
            return
        left = inv.outstanding - amount
        invoices[key] = inv.model_copy(update={
            "outstanding": left, "amount_paid": inv.amount_paid + amount, "is_open": left > 0,
            "payments": (*inv.payments, Payment(on=paid_on, amount=amount)),
        })

    def happen(today: date) -> None:
        for what, which, offset, length, share, kept in events:
            key = f"i{which % len(invoices)}"
            if day(offset) != today or not invoices[key].is_open:
                continue
            inv = invoices[key]
            if what == "payment":  # the platform dates it up to a few days before sync sees it
                pay(key, inv.outstanding * share, today - timedelta(days=length % 4))
            elif what == "promise":
                held.add(key)
                until = today + timedelta(days=length)
                histories[key].append(event(EventKind.HOLD_SET, today, hold="promise", until=until.isoformat()))
            elif what == "platform_promise":
                held.add(key)
                invoices[key] = inv.model_copy(update={"promised_payment_date": today + timedelta(days=length)})
            elif what == "dispute":
                held.add(key)
                histories[key].append(event(EventKind.HOLD_SET, today, hold="dispute"))
                histories[key].append(event(EventKind.HOLD_RELEASED, today + timedelta(days=length), hold="dispute"))
            else:
                held.add(key)
                part = (inv.outstanding * share / 2).quantize(CENT)
                dues = [today + timedelta(days=10), today + timedelta(days=10 + length)]
                histories[key].append(event(EventKind.ARRANGEMENT_SET, today, outstanding=str(inv.outstanding),
                                            instalments=[{"due": d.isoformat(), "amount": str(part)} for d in dues]))
                if kept:
                    for d in dues:
                        instalments.setdefault(d, []).append((key, part))
        for key, amount in instalments.pop(today, []):
            pay(key, amount, today)

    who = debtor(kind)
    caps = CONSOLIDATING if consolidating else ONE_AT_A_TIME
    for offset in range(-10, 150):
        today = day(offset)
        happen(today)
        rows = [(inv, who, tuple(e for e in histories[key] if e.on <= today)) for key, inv in invoices.items()
                if inv.is_open and seen_from[key] <= today]
        mailed = [e.on for events_ in histories.values() for e in events_ if e.kind is EventKind.REMINDER_SENT]
        recent = {("acme", who.platform_id): max(mailed)} if mailed else {}
        for action in plan_rows(rows, policy, today, capabilities={"acme": caps}, recent_mails=recent):
            record(action, histories)
            lines = [invoices[line.platform_id] for line in action.invoices]
            if action.interest is not None:
                commercial = kind is DebtorKind.BUSINESS
                assert action.interest == sum((_interest_day_by_day(i, today, commercial) for i in lines), D(0))
            if action.costs is not None and kind is DebtorKind.CONSUMER:
                notices = [next(e.on for e in histories[i.platform_id] if e.step == "notice_of_default") for i in lines]
                fixed = sum((_unpaid_at(i, consumer_term_end(n, policy)) for i, n in zip(lines, notices, strict=True)),
                            D(0))
                assert action.costs == collection_costs(fixed)
            elif action.costs is not None:
                assert action.costs == business_compensation(sum((i.outstanding for i in lines), D(0)))

    for key, inv in invoices.items():
        steps = [e.step for e in histories[key] if e.step and e.step != "pre_due"]
        if seen_from[key] > inv.due_date:
            continue  # first seen late: catching up to the most advanced step is allowed
        # no step is ever skipped, also not after a hold (the steps taken are the schedule's first steps)
        assert steps == list(ORDER[: len(steps)]), (key, steps)
        paid_off = next((p.on for p in inv.payments if not inv.is_open and p is inv.payments[-1]), None)
        in_time = inv.due_date + timedelta(days=15)
        if key in held or (paid_off is not None and paid_off <= in_time):
            continue
        first = first_contact(histories, key)
        assert first is not None and first <= in_time, (key, first)


def _could_go_by_the_day(due_on: date, today: date, mail_days: list[date], gap: int,
                         paused: list[tuple[date, date]]) -> bool:
    """The definition, day by day: some day from `due_on` before `today`, not on hold, was a mail day for the debtor
    or at least `gap` days after its last mail."""
    day_ = due_on
    while day_ < today:
        before = [m for m in mail_days if m <= day_]
        on_hold = any(first <= day_ <= last for first, last in paused)
        if not on_hold and (not before or before[-1] == day_ or (day_ - before[-1]).days >= gap):
            return True
        day_ += timedelta(days=1)
    return False


@settings(max_examples=400, deadline=None)
@given(
    wait=st.integers(0, 30), gap=st.integers(0, 20), mails=st.sets(st.integers(-25, 30), max_size=6),
    holds=st.one_of(st.just([]), st.lists(st.tuples(st.integers(-10, 30), st.integers(0, 10)), max_size=2)),
)
@example(wait=6, gap=10, mails={-2, 3}, holds=[])  # mailed before it fell due, and again before the gap ended
def test_whether_a_held_back_mail_could_have_gone_out_matches_the_day_by_day_rule(wait, gap, mails, holds) -> None:
    # the planner answers it at once where nothing was on hold (no walk over the days): same answer as the rule
    due_on = day(40)  # days around it: mails and holds before and after it fell due
    mail_days = sorted(due_on + timedelta(days=m) for m in mails)
    paused = [(due_on + timedelta(days=start), due_on + timedelta(days=start + length)) for start, length in holds]
    today = due_on + timedelta(days=wait)
    decided = SimpleNamespace(policy=SimpleNamespace(min_gap_days=gap), history=SimpleNamespace(paused=paused),
                              today=today)
    assert _could_have_gone_out(decided, due_on, mail_days) == _could_go_by_the_day(  # type: ignore[arg-type]
        due_on, today, mail_days, gap, paused)


# --- open credit is told, never silently ignored -----------------------------------------------------------------


def test_an_open_credit_note_of_the_debtor_is_warned_on_every_action_and_listed_in_the_call_dossier() -> None:
    who = debtor()
    credit = invoice(platform_id="C9", number="CN-9", total=D("-200.00"), outstanding=D("-200.00"),
                     is_credit_note=True)
    due = invoice(platform_id="i1", number="F1")
    called = invoice(platform_id="i2", number="F2", due_date=DUE - timedelta(days=15))
    rows = [(due, who, ()), (called, who, (sent("reminder_1", DUE - timedelta(days=14)),)), (credit, who, ())]

    actions = list(plan_rows(rows, Policy(), DUE + timedelta(days=1)))

    assert {a.step.value for a in actions} == {"reminder_1", "call"}
    for action in actions:
        assert any("open credit of EUR 200.00 (CN-9) not allocated" in w for w in action.warnings), action.warnings
    [call] = [a for a in actions if a.step.value == "call"]
    assert any(line.startswith("credit note CN-9: EUR 200.00 open") for line in call.dossier)
    # without the credit note: no such warning
    assert not any(a.warnings for a in plan_rows(rows[:2], Policy(), DUE + timedelta(days=1)))
