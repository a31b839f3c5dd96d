"""`dunning report`: a self-contained HTML report of the receivables and the escalation, from the store.

`figures.py` computes (per connection and currency), `charts.py` draws, `render.py` writes the page with the
templates in `templates/`. `build_report` is the one function the CLI calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy.engine import make_url

import connector
from connector.capabilities import Capabilities
from connector.delivery.tasks import open_tasks
from connector.escalation.policy import Policy
from connector.models import Debtor
from connector.report.figures import collect
from connector.report.render import CaseRow, Page, SyncRow, TaskRow, render, write
from connector.report.texts import Lang
from connector.store import Store

__all__ = ["build_report", "default_file_name", "store_label"]


def store_label(url: str) -> str:
    """How the page names the store: the SQLite file's name, or the PostgreSQL database without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database or "memory").name
    return parsed.set(password=None, query={}).render_as_string(hide_password=True)


def default_file_name(url: str, as_of: date) -> str:
    """`dunning-report-<store>-<date>.html`: the store and the date in the name, as on the page."""
    stem = Path(store_label(url)).stem if make_url(url).get_backend_name() == "sqlite" else make_url(url).database
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in (stem or "store"))
    return f"dunning-report-{safe}-{as_of.isoformat()}.html"


def _debtor_name(debtors: Mapping[tuple[str, str], Debtor], connection: str, debtor_id: str | None) -> str:
    """A task names its debtor by platform id: the page shows the name a bookkeeper knows (the id if unknown)."""
    debtor = debtors.get((connection, debtor_id or ""))
    return debtor.name if debtor is not None else debtor_id or ""


def build_report(
    store: Store,
    policy: Policy,
    as_of: date,
    out: Path,
    *,
    store_url: str,
    made_at: datetime,
    connection: str | None = None,
    lang: Lang = "nl",
    capabilities: Mapping[str, Capabilities] | None = None,
) -> Page:
    """Compute, render and write the report to `out` (atomically); returns what it showed."""
    debtors = store.debtors(connection)
    sections = collect(store.iter_invoice_records(connection), debtors, policy, as_of, capabilities=capabilities)
    page = Page(
        store=store_label(store_url),
        as_of=as_of,
        made_at=made_at,
        version=connector.__version__,
        lang=lang,
        sections=sections,
        tasks=[
            TaskRow(task.connection, task.kind, _debtor_name(debtors, task.connection, task.debtor),
                    ", ".join(task.invoice_numbers or task.invoices), task.step, task.reason,
                    date.fromisoformat(task.created_on) if task.created_on else None)
            for task in open_tasks(store, connection=connection)
        ],
        cases=[
            CaseRow(case.connection, case.reference, str(case.payload.get("debtor_name") or case.debtor_id),
                    case.status, case.exported_at.date() if case.exported_at else None,
                    str(case.payload.get("currency") or ""),
                    {key: Decimal(str(value)) for key, value in (case.payload.get("totals") or {}).items()})
            for case in store.handoff_cases(connection)
            if case.handed_off
        ],
        synced=[
            SyncRow(name, state.last_sync_at, state.last_sync_at is None or state.last_sync_at.date() < as_of)
            for name, state in store.connection_status().items()
            if connection is None or name == connection
        ],
    )
    write(out, render(page))
    return page
