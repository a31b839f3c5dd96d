"""The [policy] table: defaults, partial overrides, and errors that carry their key path."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from connector.escalation.policy import STEP_ORDER, Channel, Policy


def _paths(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(data)
    return [".".join(map(str, error["loc"])) for error in caught.value.errors()]


def test_the_default_schedule_is_the_dutch_one() -> None:
    steps = Policy().steps
    offsets = {name: steps.offset(name) for name in STEP_ORDER}
    assert offsets == {
        "pre_due": -5, "reminder_1": 1, "reminder_2": 6, "final_reminder": 11, "call": 16,
        "written_reminder": 30, "notice_of_default": 45, "handoff": 60,
    }
    assert steps.call.channel is Channel.CALL_TASK
    assert steps.notice_of_default.pay_by_days == 14
    assert Policy().min_gap_days == 3


def test_a_partial_step_table_changes_only_what_it_names() -> None:
    policy = Policy.model_validate({"steps": {"reminder_2": {"days": 7}}, "collection_vat_rate": 0.21})
    assert policy.steps.reminder_2.days == 7
    assert policy.steps.reminder_2.after == "reminder_1"
    assert policy.steps.reminder_2.template == "reminder_2"
    assert policy.collection_vat_rate == Decimal("0.21")


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"steps": {"reminder_1": {"days": 16}}}, "steps.reminder_1"),
        ({"steps": {"reminder_2": {"chanel": "call_task"}}}, "steps.reminder_2.chanel"),
        ({"steps": {"call": {"channel": "fax"}}}, "steps.call.channel"),
        ({"min_gap_days": -1}, "min_gap_days"),
        ({"consumer_term_days": 10}, "consumer_term_days"),
        ({"collection_vat_rate": "21"}, "collection_vat_rate"),
        ({"connections": {"shop": {"steps": {"reminder_1": {"days": 20}}}}}, "connections.shop.steps.reminder_1"),
        ({"connections": {"shop": {"min_gap_days": "often"}}}, "connections.shop.min_gap_days"),
        ({"debtors": [{"connection": "shop", "debtor": "1", "steps": ["remind"]}]}, "debtors.0.steps"),
    ],
)
def test_validation_errors_name_the_key_path(data: dict, path: str) -> None:
    assert path in _paths(data)


def test_connection_overrides_merge_over_the_policy() -> None:
    policy = Policy.model_validate({"min_gap_days": 4, "connections": {"shop": {"steps": {"reminder_1": {"days": 3}}}}})
    shop = policy.for_connection("shop")
    assert shop.steps.reminder_1.days == 3 and shop.min_gap_days == 4
    assert policy.for_connection("other") is policy


def test_debtor_overrides_are_found_by_connection_and_id() -> None:
    policy = Policy.model_validate(
        {"debtors": [{"connection": "shop", "debtor": "42", "channel": "call_task", "excluded": False}]}
    )
    assert policy.for_debtor("shop", "42").channel is Channel.CALL_TASK
    assert policy.for_debtor("shop", "43") is None
