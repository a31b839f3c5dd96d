"""Escalation: the policy, the pure planner, the statutory costs and interest, and the reminder texts.

The public surface other parts and users call:
- `Policy` (the `[policy]` config table) and `plan_invoice` (the next action for one invoice, or None);
- `collection_costs`, `business_compensation` and `statutory_interest` (Dutch law, exact to the cent);
- `render` (the text of an action in the debtor's language).
"""

from connector.escalation.legal import business_compensation, collection_costs, statutory_interest
from connector.escalation.planner import Action, plan_invoice
from connector.escalation.policy import Channel, Policy
from connector.escalation.texts import Message, render

__all__ = [
    "Action",
    "Channel",
    "Message",
    "Policy",
    "business_compensation",
    "collection_costs",
    "plan_invoice",
    "render",
    "statutory_interest",
]
