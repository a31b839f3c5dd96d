"""Reminder texts: one Jinja2 template per step and language (`templates/<step>.<language>.j2`).

The first line of a rendered template is the subject, the rest the body. Rendering is strict: a value the template
needs that the action does not have (a None is treated as absent) is an error naming the field, never a blank in a
sent mail. The language is the debtor's where a template exists in it, else the policy's default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    UndefinedError,
    pass_context,
)

from connector.escalation.action import Action
from connector.escalation.legal_be import BELGIUM
from connector.escalation.policy import Policy
from connector.models import DebtorKind

_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


class TemplateDataMissing(ValueError):
    """A template needs a value the action does not carry."""


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    body: str
    language: str
    template: str


def format_amount(amount: Decimal, currency: str, language: str) -> str:
    """€ 1.210,00 (nl), EUR 1,210.00 (en), 1 210,00 EUR (fr)."""
    whole, cents = f"{amount:,.2f}".split(".")
    if language == "nl":
        number = f"{whole.replace(',', '.')},{cents}"
        return f"€ {number}" if currency == "EUR" else f"{currency} {number}"
    if language == "fr":
        return f"{whole.replace(',', ' ')},{cents} {currency}"
    return f"{currency} {whole}.{cents}"


def _money(language: str) -> Callable[..., str]:
    @pass_context
    def money(ctx: Any, amount: Decimal) -> str:
        return format_amount(amount, ctx["currency"], language)

    return money


def _day(language: str) -> Callable[[date], str]:
    def day(value: date) -> str:
        if language == "en":
            return f"{value.day} {_MONTHS_EN[value.month - 1]} {value.year}"
        if language == "fr":
            return value.strftime("%d/%m/%Y")
        return value.strftime("%d-%m-%Y")

    return day


def _environment(language: str) -> Environment:
    env = Environment(
        loader=PackageLoader("connector.escalation", "templates"),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=False,
    )
    env.filters["money"] = _money(language)
    env.filters["day"] = _day(language)
    return env


_ENVIRONMENTS: dict[str, Environment] = {}


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """Drop None values, so a template that uses one fails loudly instead of printing 'None' or a blank."""
    return {key: value for key, value in values.items() if value is not None}


def context(
    action: Action,
    *,
    creditor: str,
    phone: str | None = None,
    history: tuple[str, ...] = (),
    vat: Decimal = Decimal(0),
    belgian_law: bool = False,
) -> dict[str, Any]:
    """What a template may use; `vat` is the rate included in the costs (art. 2 lid 3 Besluit vergoeding voor
    buitengerechtelijke incassokosten: VAT may be claimed only where the letter says so); `belgian_law`: a business
    debtor of a creditor under Belgian law (the fixed compensation and the late-payment interest of the law of
    2 August 2002, not the Dutch costs and statutory commercial interest)."""
    invoices = [
        _present(
            {
                "number": line.number,
                "due_date": line.due_date,
                "issue_date": line.issue_date,
                "total": line.total,
                "outstanding": line.outstanding,
                "days_overdue": line.days_overdue,
                "payment_url": line.payment_url,
            }
        )
        for line in action.invoices
    ]
    return _present(
        {
            "creditor": creditor or None,
            "debtor_name": action.debtor_name,
            "consumer": action.debtor_kind is DebtorKind.CONSUMER,
            "invoices": invoices,
            "numbers": ", ".join(action.invoice_numbers),
            "outstanding": action.outstanding,
            "currency": action.currency,
            "days_overdue": max(line.days_overdue for line in action.invoices),
            "costs": action.costs,
            "costs_if_unpaid": action.costs_if_unpaid,
            "interest": action.interest,
            # the VAT percentage the stated costs include (e.g. 21), only where there are costs to state
            "vat": format((vat * 100).normalize(), "f") if vat and (action.costs or action.costs_if_unpaid) else "",
            "pay_by": action.pay_by,
            "presumed_receipt": action.presumed_receipt,
            "phone": phone,
            "history": list(history or action.dossier),
            "belgian_law": belgian_law and action.debtor_kind is DebtorKind.BUSINESS,
        }
    )


def render(
    action: Action,
    policy: Policy,
    *,
    creditor: str,
    template: str | None = None,
    phone: str | None = None,
    history: tuple[str, ...] = (),
) -> Message:
    """The subject and body for `action` in the debtor's language (falling back to the policy's default)."""
    name = template or action.template
    for language in dict.fromkeys((action.language, policy.default_language)):
        env = _ENVIRONMENTS.setdefault(language, _environment(language))
        try:
            tmpl = env.get_template(f"{name}.{language}.j2")
        except TemplateNotFound:
            continue
        values = context(action, creditor=creditor, phone=phone, history=history, vat=_costs_vat(action, policy),
                         belgian_law=policy.for_connection(action.connection).business_law == BELGIUM)
        try:
            text = tmpl.render(values)
        except UndefinedError as exc:
            raise TemplateDataMissing(
                f"template {name}.{language}.j2 for invoice {', '.join(action.invoice_numbers)}: "
                f"{exc.message} (the value is missing, so the text is not sent)"
            ) from None
        subject, _, body = text.partition("\n")
        return Message(subject=subject.strip(), body=body.strip() + "\n", language=language, template=name)
    raise TemplateDataMissing(
        f"no template {name!r} in {action.language!r} or {policy.default_language!r} "
        "(connector/escalation/templates/<name>.<language>.j2)"
    )


def _costs_vat(action: Action, policy: Policy) -> Decimal:
    """The VAT rate the stated costs include: none in the Belgian cap for a consumer in Belgium (a lump sum)."""
    if action.debtor_kind is DebtorKind.CONSUMER and action.debtor.address.country == BELGIUM:
        return Decimal(0)
    return policy.for_connection(action.connection).collection_vat
