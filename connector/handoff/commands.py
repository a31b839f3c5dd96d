"""What `dunning export` and `dunning cases` call: the export wired to the config, the store, the platforms' PDFs
and the upload, and the list of cases with their state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.config import ConfigError
from connector.handoff.export import ExportResult, FetchPdf, export_cases
from connector.handoff.formats import AgencyFormat, FormatError, load_format, shipped_formats
from connector.handoff.upload import configured_upload
from connector.models import Invoice
from connector.progress import Progress
from connector.store import Store
from providers.base import Provider
from providers.errors import DunningError

if TYPE_CHECKING:
    from connector.app import App


def agency_format(app: App, agency: str | None) -> AgencyFormat:
    """`--agency NAME`, else `[handoff] agency`; a missing or wrong one is a configuration error (exit 2)."""
    config = app.config
    name = agency or config.handoff.agency
    if not name:
        raise ConfigError([f"handoff.agency: no agency format is configured; set [handoff] agency (shipped: "
                           f"{', '.join(shipped_formats())}) or pass --agency NAME"])
    try:
        return load_format(name, base_dir=config.base_dir)
    except FormatError as exc:
        raise ConfigError([f"{'--agency' if agency else 'handoff.agency'}: {exc}"]) from None


@contextmanager
def platform_pdfs(app: App) -> Iterator[Callable[[str], FetchPdf | None]]:
    """Per connection its adapter's `fetch_pdf`, connected on first use and closed at the end. A connection that
    cannot be reached gives a fetcher that fails with the reason, so its cases are held back saying why."""
    providers: dict[str, Provider | DunningError] = {}

    def fetcher(connection: str) -> FetchPdf | None:
        if connection not in providers:
            try:
                providers[connection] = app.connect(app.tokens())(app.config.settings(connection))
            except (DunningError, ConfigError) as exc:
                providers[connection] = DunningError(str(exc))
        found = providers[connection]
        if isinstance(found, DunningError):
            error = found

            def refuse(invoice: Invoice) -> bytes:
                raise error
            return refuse
        return found.fetch_pdf

    try:
        yield fetcher
    finally:
        for provider in providers.values():
            if isinstance(provider, Provider):
                provider.close()


def export(
    app: App,
    as_of: date,
    *,
    agency: str | None = None,
    out: Path | None = None,
    as_zip: bool = False,
    again: str | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """One `dunning export` run (see `export_cases`)."""
    config = app.config
    chosen = agency_format(app, agency)
    handoff = config.handoff
    upload = configured_upload(handoff.upload, handoff.upload_key, handoff.upload_known_hosts, base_dir=config.base_dir)
    out_dir = out if out is not None else config.handoff_dir
    with app.store() as store, platform_pdfs(app) as pdfs:
        return export_cases(store, config, chosen, as_of, out_dir=out_dir, as_zip=as_zip, again=again,
                            fetch_pdf=pdfs if chosen.documents else None, upload=upload, progress=progress,
                            now=app.now)


def case_rows(store: Store, connection: str | None = None) -> list[dict[str, Any]]:
    """`dunning cases`: every case with its state (exported, held back, uploaded) and what it holds."""
    rows = []
    for case in store.handoff_cases(connection):
        payload = case.payload
        rows.append({
            "case": case.reference,
            "connection": case.connection,
            "debtor": case.debtor_id,
            "debtor_name": payload.get("debtor_name"),
            "invoices": list(payload.get("invoices", ())),
            "invoice_numbers": list(payload.get("invoice_numbers", ())),
            "status": case.status,
            "handed_off": case.handed_off,
            "exported_at": case.exported_at.isoformat() if case.exported_at else None,
            "folder": payload.get("folder"),
            "agency": payload.get("agency"),
            "currency": payload.get("currency"),
            "total": (payload.get("totals") or {}).get("total"),
            "missing": list(payload.get("missing", ())),
            "upload_error": payload.get("upload_error"),
            "exports": len(payload.get("exports", ())),
        })
    return rows
