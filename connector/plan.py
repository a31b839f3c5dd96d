"""Planning from the store: streams the open invoices through the escalation rules (`connector.escalation`).

The store yields invoices ordered by debtor, so only one debtor's invoices are held at a time (constant memory);
everything deciding lives in the pure escalation package, this module only reads the store and the plugins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta

from connector import plugins
from connector.capabilities import CONSERVATIVE, Capabilities
from connector.escalation.action import Action
from connector.escalation.debtor import plan_rows
from connector.escalation.policy import Policy
from connector.store import Store
from providers.errors import DunningError

log = logging.getLogger(__name__)


def plan(
    store: Store,
    policy: Policy,
    as_of: date,
    *,
    connection: str | None = None,
    capabilities: Mapping[str, Capabilities] | None = None,
) -> Iterator[Action]:
    """Every action due on `as_of`, debtor by debtor (`capabilities` per connection name; unknown: none)."""
    widest_gap = max([policy.min_gap_days] + [policy.for_connection(name).min_gap_days for name in policy.connections])
    recent = store.recent_mails(as_of - timedelta(days=widest_gap), connection)
    yield from plan_rows(
        store.iter_open_invoices(connection), policy, as_of, capabilities=capabilities, recent_mails=recent
    )


def connection_capabilities(connections: Iterable[tuple[str, str]]) -> dict[str, Capabilities]:
    """Capabilities per connection name from its provider plugin, given (connection name, provider name) pairs.

    A provider that cannot be loaded gets the most conservative capabilities (no consolidation, no own text, so the
    notice of default becomes a letter) and a warning, instead of a guess.
    """
    found: dict[str, Capabilities] = {}
    for name, provider in connections:
        try:
            found[name] = plugins.provider_class(provider).capabilities
        except DunningError as exc:
            log.warning("%s: %s; planning with the most conservative capabilities", name, exc)
            found[name] = CONSERVATIVE
    return found
