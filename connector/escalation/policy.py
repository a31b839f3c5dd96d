"""The escalation policy: the `[policy]` table of the config, with the default Dutch schedule.

Every number the planner uses lives here, so a bookkeeper changes behaviour in the config, never in code. Partial
tables are merged over the defaults (`[policy.steps.reminder_2] days = 7` changes only that number), and every
validation error carries its key path (`steps.reminder_1.days`; the config loader prefixes `policy.`).

The default schedule follows the collection guides the product is built on (see
`shared/reference/domain.md`): remind before the due date, then a day after, again after 5 and 10 days, phone
after 15, a written reminder at D+30, the notice of default at D+45 and the handoff to an agency at D+60.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from connector.models import DebtorKind, Money

class Step(StrEnum):
    """The escalation steps, in escalation order; a step never follows a later one."""

    PRE_DUE = "pre_due"
    REMINDER_1 = "reminder_1"
    REMINDER_2 = "reminder_2"
    FINAL_REMINDER = "final_reminder"
    CALL = "call"
    WRITTEN_REMINDER = "written_reminder"
    NOTICE_OF_DEFAULT = "notice_of_default"
    HANDOFF = "handoff"


STEP_ORDER: tuple[str, ...] = tuple(step.value for step in Step)
"""The step names in escalation order (plain text: histories and the config name steps by these)."""

REMINDER_STEPS = frozenset({"reminder_1", "reminder_2", "final_reminder", "written_reminder"})
"""Steps that count as "a reminder was sent" (the notice of default rests on at least one)."""

MAX_REMINDER_1_DAYS = 15
"""The guides: contact the debtor at the latest 15 days after the due date."""

STATUTORY_CONSUMER_TERM_DAYS = 14
"""Art. 6:96 lid 6 BW: the 14-day letter gives at least fourteen days after receipt."""


class Channel(StrEnum):
    """How a step reaches the debtor."""

    PLATFORM_MAIL = "platform_mail"
    """Sent through the platform's own mailing and recorded on the invoice there."""
    CALL_TASK = "call_task"
    """A task on the call list with the debtor's dossier; nobody is mailed."""
    LETTER = "letter"
    """A written letter (post where the platform can send one, else a task to print and post)."""
    AGENCY = "agency"
    """The case goes to the collection agency export."""


def _not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _rate(value: Decimal) -> Decimal:
    if not Decimal(0) <= value < Decimal(1):
        raise ValueError("a rate is a fraction between 0 and 1, e.g. 0.21 for 21 %")
    return value


def _toml_number(value: Any) -> Any:
    """A TOML float such as 0.21 becomes the decimal literal the user typed (its shortest repr), never binary."""
    return Decimal(repr(value)) if isinstance(value, float) else value


NonNegativeMoney = Annotated[Money, BeforeValidator(_toml_number), AfterValidator(_not_negative)]
Rate = Annotated[Money, BeforeValidator(_toml_number), AfterValidator(_rate)]
Days = Annotated[int, Field(ge=0, le=3650)]


def _problem(loc: tuple[Any, ...], message: str, value: Any = None) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("policy_override", message.removeprefix("Value error, ")), loc=loc, input=value
    )


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StepRule(_Strict):
    """When one step falls due and how it goes out."""

    enabled: bool = True
    after: str = "due"
    """What the `days` count from: `due` (the due date) or an earlier step's actual date."""
    days: int = Field(ge=-60, le=3650)
    """Days after the anchor (negative before the due date: `pre_due` is -5)."""
    channel: Channel = Channel.PLATFORM_MAIL
    template: str
    """The text template's name (`templates/<template>.<language>.j2`)."""
    applies_to: frozenset[DebtorKind] = frozenset({DebtorKind.BUSINESS, DebtorKind.CONSUMER})
    min_outstanding: NonNegativeMoney = Decimal(0)
    """Below this outstanding amount the step is skipped (e.g. no agency for a few euros)."""
    pay_by_days: Days = 14
    """Only for `notice_of_default`: the pay-by term for business debtors (consumers get the statutory term)."""


def _step(days: int, *, after: str = "due", channel: Channel = Channel.PLATFORM_MAIL, **extra: Any) -> dict[str, Any]:
    return {"days": days, "after": after, "channel": channel.value, **extra}


DEFAULT_STEPS: dict[str, dict[str, Any]] = {
    "pre_due": _step(-5, template="pre_due"),
    "reminder_1": _step(1, template="reminder_1"),
    "reminder_2": _step(5, after="reminder_1", template="reminder_2"),
    "final_reminder": _step(10, after="reminder_1", template="final_reminder"),
    "call": _step(15, after="reminder_1", channel=Channel.CALL_TASK, template="call"),
    "written_reminder": _step(30, template="written_reminder"),
    "notice_of_default": _step(45, template="notice_of_default", pay_by_days=14),
    "handoff": _step(60, channel=Channel.AGENCY, template="handoff"),
}


def _merge(defaults: dict[str, Any], given: Any) -> Any:
    """Deep-merge a partial TOML table over the defaults (non-dicts are left for pydantic to reject)."""
    if not isinstance(given, dict):
        return given
    merged = dict(defaults)
    for key, value in given.items():
        base = defaults.get(key)
        merged[key] = _merge(base, value) if isinstance(base, dict) else value
    return merged


class Steps(_Strict):
    """The schedule, one rule per step (the order is fixed: `STEP_ORDER`)."""

    pre_due: StepRule
    reminder_1: StepRule
    reminder_2: StepRule
    final_reminder: StepRule
    call: StepRule
    written_reminder: StepRule
    notice_of_default: StepRule
    handoff: StepRule

    @model_validator(mode="before")
    @classmethod
    def _over_defaults(cls, data: Any) -> Any:
        return _merge(DEFAULT_STEPS, data if data is not None else {})

    @field_validator("reminder_1")
    @classmethod
    def _reminder_1_in_time(cls, rule: StepRule) -> StepRule:
        if rule.after != "due":
            raise ValueError("reminder_1 counts from the due date (after = \"due\")")
        if not 0 <= rule.days <= MAX_REMINDER_1_DAYS:
            raise ValueError(f"reminder_1 must go out between 0 and {MAX_REMINDER_1_DAYS} days after the due date")
        return rule

    @field_validator("pre_due")
    @classmethod
    def _pre_due_before(cls, rule: StepRule) -> StepRule:
        if rule.after != "due" or rule.days >= 0:
            raise ValueError("pre_due counts from the due date with negative days (e.g. -5)")
        return rule

    @field_validator("notice_of_default", "handoff", "written_reminder")
    @classmethod
    def _after_default(cls, rule: StepRule) -> StepRule:
        if rule.after == "due" and rule.days <= 0:
            raise ValueError("this step can only come after the due date (days > 0)")
        return rule

    @model_validator(mode="after")
    def _anchors_precede(self) -> Steps:
        for position, name in enumerate(STEP_ORDER):
            anchor = self.rule(name).after
            if anchor != "due" and anchor not in STEP_ORDER[:position]:
                raise ValueError(f"steps.{name}.after: {anchor!r} is neither \"due\" nor an earlier step")
        return self

    _offsets: dict[str, int] = PrivateAttr(default_factory=dict)
    _ordered: tuple[tuple[str, int, StepRule], ...] | None = PrivateAttr(default=None)
    _descending: list[tuple[tuple[str, StepRule, int], ...]] | None = PrivateAttr(default=None)

    def ordered(self) -> tuple[tuple[str, int, StepRule], ...]:
        """(name, position, rule) in escalation order, computed once (the planner's hot loop reads it)."""
        private = self.__pydantic_private__  # direct: pydantic's attribute hook is slow in the planner's hot loop
        if private["_ordered"] is None:
            private["_ordered"] = tuple((name, position, self.rule(name)) for position, name in enumerate(STEP_ORDER))
        return private["_ordered"]

    def descending_from(self, start: int) -> tuple[tuple[str, StepRule, int], ...]:
        """(name, rule, offset) of the steps from position `start` on, the most advanced first (computed once: the
        planner asks it for every invoice)."""
        private = self.__pydantic_private__
        if private["_descending"] is None:
            table = [(name, rule, self.offset(name)) for name, _position, rule in self.ordered()]
            private["_descending"] = [tuple(reversed(table[first:])) for first in range(len(table) + 1)]
        return private["_descending"][start]

    def rule(self, name: str) -> StepRule:
        return getattr(self, name)

    def offset(self, name: str) -> int:
        """The step's nominal day relative to the due date, following its anchors."""
        offsets = self.__pydantic_private__["_offsets"]
        if name not in offsets:
            rule = self.rule(name)
            offsets[name] = rule.days if rule.after == "due" else self.offset(rule.after) + rule.days
        return offsets[name]


class ReceiptPresumption(_Strict):
    """When a sent letter counts as received, for the consumer 14-day term.

    Courts presume receipt on the second day after sending where a Sunday, Monday or public holiday does not count;
    the default follows that, conservatively (holidays from the `holidays` package plus 5 May every year, as the
    Algemene termijnenwet lists it).
    """

    days: int = Field(default=2, ge=0, le=14)
    skip_weekdays: frozenset[Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]] = (
        frozenset({"sunday", "monday"})
    )
    holidays_country: str | None = "NL"
    """Public holidays that do not count (None: none)."""


class DebtorOverride(_Strict):
    """Special treatment of one debtor (a key account that is only ever called, or one never to be reminded)."""

    connection: str
    debtor: str
    """The debtor's platform id."""
    excluded: bool = False
    channel: Channel | None = None
    """Forces every step's channel, e.g. `call_task` for a debtor who is only ever phoned."""
    steps: frozenset[str] | None = None
    """Only these steps apply to the debtor (None: all)."""
    language: str | None = None

    @field_validator("steps")
    @classmethod
    def _known_steps(cls, steps: frozenset[str] | None) -> frozenset[str] | None:
        unknown = sorted(set(steps or ()) - set(STEP_ORDER))
        if unknown:
            raise ValueError(f"unknown step(s) {', '.join(unknown)}; known: {', '.join(STEP_ORDER)}")
        return steps


class Policy(_Strict):
    """The `[policy]` table."""

    steps: Steps = Field(default_factory=lambda: Steps.model_validate({}))
    min_gap_days: Days = 3
    """At least this many days between two mails to the same debtor."""
    promise_grace_days: Days = 3
    """A promise to pay holds escalation until its date plus these days."""
    arrangement_grace_days: Days = 3
    """An instalment counts as missed only this many days after its due date (bank transfers take a day or two)."""
    receipt: ReceiptPresumption = ReceiptPresumption()
    consumer_term_days: int = Field(default=STATUTORY_CONSUMER_TERM_DAYS, ge=STATUTORY_CONSUMER_TERM_DAYS, le=90)
    """The term of the 14-day letter, counted from the day after presumed receipt (at least the statutory 14)."""
    creditor_can_deduct_vat: bool = True
    """False only when a VAT-charged collection service is used and the creditor cannot deduct that VAT: then VAT
    is added to the collection costs (art. 2 lid 3 Besluit vergoeding buitengerechtelijke incassokosten)."""
    collection_vat_rate: Rate = Decimal("0.21")
    default_language: str = "nl"
    consolidate_principal: bool = True
    """Several invoices claimed in one letter are one principal for the collection costs (a practice, not law)."""
    business_law: Literal["NL", "BE"] = "NL"
    """Whose law sets what a business debtor owes for collection: the creditor's country. A `[creditor]` in Belgium
    sets BE unless this key says otherwise (the law of 2 August 2002: EUR 40 per invoice, not the Dutch scale)."""
    consolidate_reminders: bool = True
    """Several due invoices of one debtor on one day go out as one reminder where the platform allows it."""
    connections: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-connection overrides: any of the keys above, merged over this policy."""
    debtors: tuple[DebtorOverride, ...] = ()
    _resolved: dict[str, Policy] = PrivateAttr(default_factory=dict)
    _by_debtor: dict[tuple[str, str], DebtorOverride] | None = PrivateAttr(default=None)

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 2 or not value.isalpha():
            raise ValueError("an ISO-639-1 language code such as nl, en or fr")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _overrides_valid(cls, data: Any, handler: Any) -> Policy:
        """Validate each connection override at load time, its errors under `connections.<name>.<key>`."""
        policy = handler(data)
        problems: list[InitErrorDetails] = []
        for name, override in policy.connections.items():
            if "connections" in override or "debtors" in override:
                problems.append(_problem(("connections", name), "overrides cannot nest connections or debtors"))
                continue
            try:
                policy.for_connection(name)
            except ValidationError as exc:
                problems += [_problem(("connections", name, *e["loc"]), e["msg"], e["input"]) for e in exc.errors()]
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return policy

    @property
    def collection_vat(self) -> Decimal:
        """The VAT rate added to collection costs (0 when the creditor can deduct it)."""
        return Decimal(0) if self.creditor_can_deduct_vat else self.collection_vat_rate

    def for_connection(self, connection: str) -> Policy:
        """This policy with the connection's overrides merged over it."""
        override = self.connections.get(connection)
        if not override:
            return self
        resolved = self.__pydantic_private__["_resolved"]
        if connection not in resolved:
            base = self.model_dump(mode="json", exclude={"connections", "debtors"})
            merged = _merge(base, override)
            debtors = [d.model_dump(mode="json") for d in self.debtors]
            resolved[connection] = Policy.model_validate({**merged, "debtors": debtors})
        return resolved[connection]

    def for_debtor(self, connection: str, debtor_id: str) -> DebtorOverride | None:
        private = self.__pydantic_private__
        if private["_by_debtor"] is None:
            private["_by_debtor"] = {(o.connection, o.debtor): o for o in self.debtors}
        index = private["_by_debtor"]
        return index.get((connection, debtor_id)) if index else None
