"""Agreements confirmed in writing: an arrangement or a promise recorded by the bookkeeper is queued as an outbox row.

The guides: confirm a payment arrangement in writing, with the sanction if it is not kept, and have the debtor sign
it; confirm what a call agreed. The next `dunning send` delivers it (our mail server where configured, else a letter
to sign and post, with a task), and its receipt joins the debtor's history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, UndefinedError

from connector.delivery.keys import delivery_key
from connector.escalation.texts import format_amount
from connector.models import Debtor, Invoice
from connector.store import OutboxEntry, Store

What = Literal["arrangement", "promise"]
_LANGUAGES = ("nl", "en")


def _environment(language: str, currency: str) -> Environment:
    env = Environment(loader=PackageLoader("connector.delivery", "templates"), undefined=StrictUndefined,
                      autoescape=False)
    env.filters["money"] = lambda amount: format_amount(Decimal(str(amount)), currency, language)
    env.filters["day"] = lambda value: date.fromisoformat(str(value)).strftime(
        "%d-%m-%Y" if language == "nl" else "%d %B %Y")
    return env


def confirmation_text(what: What, debtor: Debtor, invoice: Invoice, data: Mapping[str, Any], *, on: date,
                      creditor: str, language: str | None) -> tuple[str, str]:
    """(subject, body) in the debtor's language where we have it, else Dutch."""
    chosen = language if language in _LANGUAGES else "nl"
    env = _environment(chosen, invoice.currency)
    try:
        template = env.get_template(f"confirmation_{what}.{chosen}.j2")
    except TemplateNotFound:
        template = env.get_template(f"confirmation_{what}.nl.j2")
    values = {"numbers": invoice.label, "debtor_name": debtor.name, "creditor": creditor,
              "agreed_on": on.isoformat(), "outstanding": str(data.get("outstanding") or invoice.outstanding),
              "instalments": list(data.get("instalments") or ()), "down_payment": data.get("down_payment"),
              "until": data.get("until")}
    try:
        text = template.render({k: v for k, v in values.items() if v is not None})
    except UndefinedError as exc:
        raise ValueError(f"invoice {invoice.label}: the {what} confirmation lacks {exc.message}") from None
    subject, _, body = text.partition("\n")
    return subject.strip(), body.strip() + "\n"


def queue_confirmation(store: Store, invoice: Invoice, what: What, data: Mapping[str, Any], *,
                       on: date) -> OutboxEntry | None:
    """Queue the written confirmation of an arrangement or promise; the next `dunning send` delivers it.

    The key covers the agreement's terms, so recording the same agreement again queues nothing new and a changed
    one gets its own confirmation. The text is written when it is sent (with the creditor's name from the config).
    Returns None when the debtor is unknown to the store (nothing to address).
    """
    debtor = store.debtor(invoice.connection, invoice.debtor_id)
    if debtor is None:
        return None
    terms = {key: value for key, value in data.items() if key != "source"}
    digest = hashlib.sha256(json.dumps(terms, sort_keys=True, default=str).encode()).hexdigest()[:12]
    key = delivery_key("confirmation", invoice.connection, debtor.platform_id, [invoice.platform_id],
                       f"{what}-{digest}")
    payload: dict[str, Any] = {"what": what, "step": "confirmation", "debtor": debtor.platform_id,
                               "invoices": [invoice.platform_id], "invoice_numbers": [invoice.label],
                               "signature": what == "arrangement", "terms": terms, "agreed_on": on.isoformat()}
    entry, _queued = store.outbox_queue(invoice.connection, "confirmation", key, payload)
    return entry


def confirmation_payload(payload: Mapping[str, Any], debtor: Debtor, invoice: Invoice, *,
                         creditor: str) -> dict[str, Any]:
    """The subject, body and letter lines of a queued confirmation (`ValueError` naming what is missing)."""
    if not creditor:
        raise ValueError("the confirmation needs your company name; fill in [creditor] name in the config")
    what = payload.get("what", "promise")
    terms = payload.get("terms") or {}
    subject, body = confirmation_text(what, debtor, invoice, terms, on=date.fromisoformat(payload["agreed_on"]),
                                      creditor=creditor, language=debtor.language)
    return {**payload, "subject": subject, "body": body, "lines": _lines(terms, invoice)}


def _lines(data: Mapping[str, Any], invoice: Invoice) -> list[tuple[str, str]]:
    rows = []
    if data.get("down_payment"):
        rows.append((f"down payment by {data['down_payment']['due']}", f"{invoice.currency} {data['down_payment']['amount']}"))
    rows += [(f"instalment by {row['due']}", f"{invoice.currency} {row['amount']}") for row in data.get("instalments") or ()]
    if data.get("until"):
        rows.append((f"to pay by {data['until']}", f"{invoice.currency} {invoice.outstanding}"))
    return rows
