"""Properties over random histories: simulate a debtor's invoices over months of irregular runs and check the
invariants on everything the planner and driver produced."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.capabilities import Capabilities
from connector.escalation.action import MAIL_CHANNELS, Action
from connector.escalation.calendar import consumer_term_end
from connector.escalation.debtor import plan_rows
from connector.escalation.policy import STEP_ORDER, Policy
from connector.escalation.pricing import notice_pay_by
from connector.models import DebtorKind, Event, EventKind, Invoice

from .conftest import debtor, invoice

START = date(2026, 1, 5)

invoice_specs = st.lists(
    st.fixed_dictionaries(
        {
            "due": st.integers(min_value=0, max_value=20),
            "term": st.integers(min_value=0, max_value=30),
            "cents": st.integers(min_value=1, max_value=5_000_000),
            "credit": st.booleans(),
            "pay_day": st.none() | st.integers(min_value=0, max_value=200),
            "partial_day": st.none() | st.integers(min_value=0, max_value=200),
        }
    ),
    min_size=1,
    max_size=4,
)
holds = st.lists(
    st.tuples(
        st.sampled_from(["dispute", "promise", "excluded"]),
        st.integers(min_value=0, max_value=150),
        st.integers(min_value=1, max_value=40),
    ),
    max_size=2,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=invoice_specs,
    kind=st.sampled_from(list(DebtorKind)),
    every=st.integers(min_value=1, max_value=3),
    outages=st.lists(st.tuples(st.integers(min_value=0, max_value=200), st.integers(min_value=1, max_value=60)), max_size=2),
    hold_plan=holds,
    consolidating=st.booleans(),
    gap=st.integers(min_value=0, max_value=7),
)
def test_invariants_over_random_histories(specs, kind, every, outages, hold_plan, consolidating, gap) -> None:
    # the job runs every day or every few days, with outages of up to two months (catch-up)
    run_days = {d for d in range(0, 221, every) if not any(start <= d < start + length for start, length in outages)}
    policy = Policy.model_validate({"min_gap_days": gap})
    caps = {"acme": Capabilities(native_reminder=True, custom_message=True, consolidated_reminders=consolidating)}
    who = debtor(kind)
    histories: dict[str, list[Event]] = {}
    invoices: dict[str, Invoice] = {}
    for n, spec in enumerate(specs):
        due = START + timedelta(days=spec["due"])
        amount = Decimal(spec["cents"]) / 100
        invoices[f"i{n}"] = invoice(
            platform_id=f"i{n}", number=f"F{n}", issue_date=due - timedelta(days=spec["term"]), due_date=due,
            total=-amount if spec["credit"] else amount, outstanding=-amount if spec["credit"] else amount,
            is_credit_note=spec["credit"],
        )
        histories[f"i{n}"] = []
        for hold, start, length in hold_plan:
            on = START + timedelta(days=start)
            data = {"hold": hold, "until": (on + timedelta(days=length)).isoformat()}
            histories[f"i{n}"].append(Event(kind=EventKind.HOLD_SET, on=on, data=data))
            if hold != "promise":
                histories[f"i{n}"].append(
                    Event(kind=EventKind.HOLD_RELEASED, on=on + timedelta(days=length), data={"hold": hold})
                )

    produced: list[Action] = []
    for offset in sorted(run_days):
        today = START + timedelta(days=offset)
        for key, spec in zip(list(invoices), specs, strict=True):
            inv = invoices[key]
            if spec["partial_day"] is not None and offset == spec["partial_day"] and inv.outstanding > 1:
                invoices[key] = inv.model_copy(update={"outstanding": inv.outstanding / 2})
            if spec["pay_day"] is not None and offset >= spec["pay_day"]:
                invoices[key] = invoices[key].model_copy(update={"is_open": False})
        rows = [(inv, who, tuple(histories[key])) for key, inv in invoices.items() if inv.is_open]
        # what Store.recent_mails gives the driver: mails about any invoice of the debtor, also closed ones
        mailed = [e.on for events in histories.values() for e in events if e.kind is EventKind.REMINDER_SENT]
        recent = {("acme", who.platform_id): max(mailed)} if mailed else {}
        for action in plan_rows(rows, policy, today, capabilities=caps, recent_mails=recent):
            produced.append(action)
            for line in action.invoices:
                inv = invoices[line.platform_id]
                # nothing for paid, credited or credit-note invoices
                assert inv.is_collectable
                kind_of_event = EventKind.HANDOFF if action.step == "handoff" else (
                    EventKind.REMINDER_SENT if action.channel in MAIL_CHANNELS else EventKind.TASK_CREATED
                )
                histories[line.platform_id].append(Event(kind=kind_of_event, on=today, step=action.step))
            _assert_lawful_costs(action, histories, policy, today)

    for key, events in histories.items():
        steps = [e.step for e in events if e.step]
        # never the same step twice, never backwards
        assert len(steps) == len(set(steps)), (key, steps)
        assert steps == sorted(steps, key=STEP_ORDER.index), (key, steps)
        # the notice only after a reminder, the handoff only after the notice's pay-by date
        taken = {e.step: e.on for e in events if e.step}
        if "notice_of_default" in taken:
            assert {"reminder_1", "reminder_2", "final_reminder", "written_reminder"} & taken.keys()
            assert all(taken[s] < taken["notice_of_default"] for s in taken if s != "handoff" and s != "notice_of_default")
        if "handoff" in taken:
            assert taken["handoff"] > notice_pay_by(taken["notice_of_default"], kind, policy)

    # never two mail days to one debtor closer than the gap, unless an invoice's first reminder (before or after its
    # due date) went out that day (the gap never pushes it back; every mail due on a mail day goes out that day)
    mail_days = sorted({a.as_of for a in produced if a.is_mail})
    for a, b in pairwise(mail_days):
        if (b - a).days < gap:
            assert any(x.step in ("pre_due", "reminder_1") and x.as_of == b for x in produced), (a, b)


def _assert_lawful_costs(action: Action, histories: dict[str, list[Event]], policy: Policy, today: date) -> None:
    """Never a cost before it is lawful."""
    if action.costs is None:
        return
    for line in action.invoices:
        assert today > line.due_date  # businesses: from the day after the due date
        if action.debtor_kind is DebtorKind.CONSUMER:
            notices = [e.on for e in histories[line.platform_id] if e.step == "notice_of_default" and e.on < today]
            assert notices and today > consumer_term_end(notices[0], policy)
