"""From a planned action to the outbox row that carries it: kind, deterministic key, payload with the rendered text.

The text is rendered once, when the row is queued, and kept in the row: a run that continues after a crash sends
exactly the words the first run would have sent. A template that lacks a value makes the row a visible failure
naming the invoice, never a blank in a sent mail.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connector.delivery.keys import delivery_key
from connector.escalation import Action, Channel, Policy, render
from connector.escalation.texts import TemplateDataMissing, format_amount

KIND_OF_CHANNEL = {Channel.PLATFORM_MAIL: "reminder", Channel.CALL_TASK: "task", Channel.LETTER: "letter"}
"""Which outbox row a channel becomes; the agency channel is the handoff export's, not delivery's."""


def outbox_row(action: Action, policy: Policy, *, creditor: str | None) -> tuple[str, str, dict[str, Any]] | None:
    """(kind, key, payload) for an action; None for a channel delivery does not carry (the agency handoff).

    Without a `[creditor]` a platform reminder goes out with the platform's own text (our templates sign with the
    creditor's name); letters and call scripts then fail visibly, naming what to fill in.
    """
    kind = KIND_OF_CHANNEL.get(action.channel)
    if kind is None:
        return None
    step = str(action.step)
    key = delivery_key(kind, action.connection, action.debtor_id, action.invoice_ids, step)
    payload: dict[str, Any] = {
        "action": action.as_json(),
        "step": step,
        "channel": action.channel.value,
        "debtor": action.debtor_id,
        "invoices": list(action.invoice_ids),
        "invoice_numbers": list(action.invoice_numbers),
        "as_of": action.as_of.isoformat(),
    }
    if not creditor and kind == "reminder":
        payload["own_text"] = False  # the platform's own reminder text
    elif not creditor:
        payload["render_error"] = (f"invoice {', '.join(action.invoice_numbers)}: the {step} text needs your company "
                                   "name; fill in [creditor] name in the config")
    else:
        try:
            message = render(action, policy, creditor=creditor)
            payload |= {"subject": message.subject, "body": message.body, "language": message.language}
        except TemplateDataMissing as exc:
            payload["render_error"] = str(exc)
    if action.channel is Channel.CALL_TASK:
        payload["dossier"] = list(action.dossier)
    if action.channel is Channel.LETTER:
        payload["lines"] = _letter_lines(action)
    return kind, key, payload


def _letter_lines(action: Action) -> list[tuple[str, str]]:
    def money(amount: Decimal) -> str:
        return format_amount(amount, action.currency, action.language)

    lines = [(f"invoice {line.number} (due {line.due_date.isoformat()})", money(line.outstanding))
             for line in action.invoices]
    if action.costs:
        lines.append(("collection costs", money(action.costs)))
    if action.costs_if_unpaid:
        lines.append(("collection costs if the term passes unpaid", money(action.costs_if_unpaid)))
    if action.interest:
        lines.append(("statutory interest to date", money(action.interest)))
    total = action.outstanding + (action.costs or 0) + (action.interest or 0)
    lines.append(("total", money(total)))
    return lines
