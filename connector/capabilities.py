"""What a platform can do natively: a value the core owns, so the planner and delivery adapt to a platform without
importing its adapter (adapters declare theirs; `providers.base` re-exports these names for them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

DeliveryMethod = Literal["email", "post", "manual"]


class Capabilities(BaseModel):
    """What an adapter can do natively; the planner and delivery adapt to it instead of pretending."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    native_reminder: bool
    """The platform itself can mail a reminder (Exact only partly: refusals become tasks)."""
    custom_message: bool
    """Our rendered text reaches the debtor (Xero: no, it sends its own invoice e-mail)."""
    consolidated_reminders: bool
    """One reminder may cover several invoices of one debtor (Moneybird)."""
    delivery_methods: tuple[DeliveryMethod, ...] = ("email",)
    notes: bool = True
    pdf: bool = True


CONSERVATIVE = Capabilities(native_reminder=False, custom_message=False, consolidated_reminders=False)
"""For a connection whose adapter cannot be loaded: no consolidation and no own text (a notice becomes a letter)."""
