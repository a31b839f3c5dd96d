"""Idempotency keys: one per (connection, debtor, invoices, step), never per day.

A re-plan on another day produces the same key for the same step, so the outbox finds the row it already has and
the step cannot go out twice. The key is short and plain (`dc-<step>-<hash>`) so it fits Xero's Idempotency-Key
(≤ 128 characters) and, with its text, a Xero History record (≤ 250 characters).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def delivery_key(kind: str, connection: str, debtor_id: str, invoice_ids: Iterable[str], step: str) -> str:
    """The outbox key of one write: the same inputs always give the same key (invoice order does not matter)."""
    parts = [kind, connection, debtor_id, *sorted(invoice_ids), step]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"dc-{step.replace('_', '')[:16]}-{digest}"
