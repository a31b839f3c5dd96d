"""Contract: every entity set, $select and $filter field the adapter sends exists in Exact's field list.

The field list (data/exact-online-entities.json) mirrors Exact's REST reference; sync/Cashflow/PaymentTerms has no
entry of its own there, so its fields are cashflow/Receivables' plus `Timestamp` and `LineType` (providers.md).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from providers.base import ReminderRequest, SyncState
from providers.exact import mapping
from providers.exact.simulator import ExactSimulator

from .conftest import DIVISION, connect

SPEC = json.loads((Path(__file__).parent / "data" / "exact-online-entities.json").read_text())["entities"]
FIELDS_BY_PATH = {entity["path"]: {p["name"] for p in entity["properties"]} for entity in SPEC.values()}
FIELDS_BY_PATH["bulk/Cashflow/Receivables"] = FIELDS_BY_PATH["cashflow/Receivables"]
FIELDS_BY_PATH["sync/Cashflow/PaymentTerms"] = FIELDS_BY_PATH["cashflow/Receivables"] | set(mapping.SYNC_ONLY_FIELDS)
_FILTER_FIELD = re.compile(r"([A-Za-z]+) (?:eq|ne|gt|ge|lt|le) ")


@pytest.mark.parametrize("query", mapping.QUERIES, ids=lambda q: q.path)
def test_declared_queries_use_only_documented_fields(query: mapping.Query) -> None:
    known = FIELDS_BY_PATH[query.path]
    assert set(query.select) <= known, set(query.select) - known
    assert set(query.filter_fields) <= known, set(query.filter_fields) - known
    if query.path not in ("bulk/Cashflow/Receivables", "sync/Cashflow/PaymentTerms"):
        assert SPEC[query.entity]["path"] == query.path


@pytest.mark.parametrize("path", sorted(mapping.POST_BODIES))
def test_post_bodies_use_only_documented_fields(path: str) -> None:
    entity, fields = mapping.POST_BODIES[path]
    assert SPEC[entity]["path"] == path and set(fields) <= FIELDS_BY_PATH[path]


def test_every_field_actually_sent_in_a_whole_session_is_documented() -> None:
    sim = ExactSimulator.seeded(division=DIVISION)
    provider = connect(sim)
    provider.list_tenants()
    pages = list(provider.sync(SyncState()))
    invoices = [i for p in pages for i in p.invoices if i.is_collectable and i.currency == "EUR"]
    debtors = {d.platform_id: d for p in pages for d in p.debtors}
    sim.pay(DIVISION, invoices[0].platform_id, Decimal("5.00"))
    list(provider.sync(SyncState(cursor=pages[-1].cursor)))
    list(provider.sync(SyncState(full=True)))
    target = next(i for i in invoices if debtors[i.debtor_id].emails)
    provider.send_reminder(ReminderRequest(step="reminder_1", debtor=debtors[target.debtor_id], invoices=(target,),
                                           message="Graag betalen.", idempotency_key="contract-0001"))
    provider.find_note(target, "contract-0001")
    provider.fetch_pdf(target)

    checked = set()
    for call in sim.calls:
        match = re.match(r"^/api/v1/(?:\d+/)?(.+)$", call.path)
        if match is None:
            continue
        path = "current/Me" if call.path.endswith("current/Me") else match.group(1)
        args = parse_qs(call.query)
        sent = set(args.get("$select", [""])[0].split(",")) - {""}
        for text in args.get("$filter", []):
            sent |= set(_FILTER_FIELD.findall(text))
        assert sent <= FIELDS_BY_PATH[path], (path, sent - FIELDS_BY_PATH[path])
        checked.add(path)
    assert {"sync/Cashflow/PaymentTerms", "bulk/Cashflow/Receivables", "sync/CRM/Accounts", "crm/Contacts",
            "salesinvoice/SalesInvoices", "activities/CommunicationNotes", "documents/Documents",
            "documents/DocumentAttachments", "system/Divisions", "current/Me"} <= checked
