"""Escalation: the policy, the pure planner, the statutory costs and interest, and the reminder texts.

The public surface other parts and users call:
- `Policy` (the `[policy]` config table), `plan_invoice` (the next action for one invoice, or None) and
  `plan_rows` (the actions for a stream of invoices ordered by debtor), each action an `Action` at a `Step`;
- `collection_costs`, `business_compensation` and `statutory_interest` (Dutch law, exact to the cent);
- `render` (the text of an action in the debtor's language).
"""

from connector.escalation.action import Action
from connector.escalation.legal import business_compensation, collection_costs, statutory_interest
from connector.escalation.debtor import plan_invoice, plan_rows
from connector.escalation.policy import Channel, Policy, Step
from connector.escalation.texts import Message, render

__all__ = [
    "Action",
    "Channel",
    "Message",
    "Policy",
    "Step",
    "business_compensation",
    "collection_costs",
    "plan_invoice",
    "plan_rows",
    "render",
    "statutory_interest",
]
