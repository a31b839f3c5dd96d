"""`dunning export`: the cases at the handoff step, in the agency's format, handed off once.

One run: find the debtors whose invoices the planner sends to the agency today (or the one case `--again` names),
build each dossier, hold back the cases missing what the format requires (with the list of what is missing), write
the rest into one new export folder (atomically), upload it where the agency takes uploads, and only then record
the handoff: each case exported (or uploaded), a `handoff` event on each invoice (the planner sends nothing more)
and a note on each invoice queued in the outbox for the platform. A failed upload leaves the folder and records
nothing, so the next run offers the same cases again.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any

from connector.config import Config, ConfigError, Creditor
from connector.escalation import plan_rows
from connector.handoff.dossier import Case, Document, Evidence, InvoiceHistory, build_case, letter_path
from connector.handoff.folder import DOCUMENTS, ExportFolder, free_name, staged_export
from connector.handoff.formats import AgencyFormat
from connector.handoff.writers import missing_fields, write_data_file
from connector.models import Debtor, Event, EventKind, Invoice
from connector.progress import NoProgress, Progress
from connector.store import Store
from connector.store.handoff import HandoffCase
from providers.errors import AuthorizationExpired, DunningError, RateLimited, UsageError

log = logging.getLogger(__name__)

FetchPdf = Callable[[Invoice], bytes]
"""The invoice's PDF from its platform (`Provider.fetch_pdf` of the invoice's connection)."""
Upload = Callable[[Path], str]
"""Deliver the finished export (folder or zip) to the agency; returns where it went. Raises on failure."""

NOTE_KIND = "note"
MANIFEST_FORMAT = "dunning-export/1"


class CaseNotFound(UsageError):
    """`--again` named a case the store does not have: a usage error (exit 2), nothing was exported."""


@dataclass
class CaseOutcome:
    """What the run did with one case (`export --json`, cli.md)."""

    case: str
    connection: str
    debtor: str
    debtor_name: str
    invoices: tuple[str, ...]
    invoice_numbers: tuple[str, ...]
    status: str
    """exported | held_back"""
    folder: str | None = None
    missing: list[str] = field(default_factory=list)
    uploaded: bool = False
    currency: str | None = None
    claim: Mapping[str, Decimal] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "case": self.case,
            "connection": self.connection,
            "debtor": self.debtor,
            "debtor_name": self.debtor_name,
            "invoices": list(self.invoices),
            "invoice_numbers": list(self.invoice_numbers),
            "status": self.status,
            "folder": self.folder,
            "uploaded": self.uploaded,
        }
        if self.status == "held_back":
            found["missing"] = list(self.missing)
        else:
            found["currency"] = self.currency
            found |= {key: str(self.claim[key]) for key in ("principal", "interest", "costs", "total")}
        if self.warnings:
            found["warnings"] = list(self.warnings)
        return found


@dataclass
class ExportResult:
    outcomes: list[CaseOutcome] = field(default_factory=list)
    path: Path | None = None
    """The export folder (or zip); None when no case was exported."""
    uploaded_to: str | None = None
    upload_error: str | None = None

    @property
    def ok(self) -> bool:
        """Every case exported (and uploaded where an upload is configured): exit 0."""
        return self.upload_error is None and all(o.status != "held_back" for o in self.outcomes)


@dataclass
class _Candidate:
    record: HandoffCase
    debtor: Debtor
    histories: list[InvoiceHistory]


def export_cases(
    store: Store,
    config: Config,
    agency: AgencyFormat,
    as_of: date,
    *,
    out_dir: Path,
    as_zip: bool = False,
    again: str | None = None,
    fetch_pdf: Callable[[str], FetchPdf | None] | None = None,
    upload: Upload | None = None,
    progress: Progress | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ExportResult:
    """Export the cases due on `as_of` (or the case `again` names) into a new folder in `out_dir`.

    `fetch_pdf(connection)` gives that connection's PDF fetcher (None: no PDFs). Raises `ConfigError` when the
    config lacks the creditor, `CaseNotFound` for an unknown `again`; a case's own problems hold it back instead.
    """
    progress = progress or NoProgress()
    creditor = config.creditor
    if creditor is None:
        raise ConfigError(["creditor: the agency export needs your company's details; add a [creditor] table "
                           "(name, address, KvK, VAT number, IBAN)"])
    candidates = [_again(store, again)] if again else list(_due(store, config, as_of))
    result = ExportResult()
    if not candidates:
        return result
    stem = free_name(out_dir, f"{as_of.isoformat()}-{agency.name}")
    exported: list[tuple[_Candidate, Case]] = []
    held: list[tuple[_Candidate, CaseOutcome]] = []
    evidence = outbox_evidence(store, [history for candidate in candidates for history in candidate.histories])
    try:
        with staged_export(out_dir, stem, as_zip=as_zip) as (folder, final):
            for done, candidate in enumerate(candidates, start=1):
                case, missing = _build(config, creditor, agency, candidate, as_of, folder, fetch_pdf, evidence)
                if missing:
                    held.append((candidate, _outcome(case, "held_back", missing=missing)))
                else:
                    exported.append((candidate, case))
                progress.advanced(candidate.record.connection, done=done, total=len(candidates))
            if not exported:
                raise _NothingToExport
            write_data_file(folder.path, [case for _c, case in exported], agency, as_of)
            folder.write_manifest(_manifest(agency, as_of, now(), [case for _c, case in exported]))
    except _NothingToExport:
        final = []
    result.path = final[0] if final else None
    if result.path is not None and upload is not None:
        try:
            result.uploaded_to = upload(result.path)
        except DunningError as exc:
            result.upload_error = str(exc)
            log.error("%s; the export stays in %s and its cases are offered again by the next export", exc,
                      result.path)
    uploaded = result.uploaded_to is not None
    folder_text = str(result.path) if result.path else None
    outcomes = [_outcome(case, "exported", folder=folder_text, uploaded=uploaded) for _c, case in exported]
    _record(store, agency, as_of, exported, outcomes, held, delivered=upload is None or uploaded, uploaded=uploaded,
            upload_error=result.upload_error)
    result.outcomes = [o for _c, o in held] + outcomes
    result.outcomes.sort(key=lambda o: o.case)
    return result


class _NothingToExport(Exception):
    """Every case was held back: no folder is left behind."""


# --- which cases ----------------------------------------------------------------------------------------------------


def _due(store: Store, config: Config, as_of: date) -> Iterator[_Candidate]:
    """The debtors whose invoices reach the handoff step on `as_of`, each with those invoices' histories."""
    wanted: list[tuple[Debtor, list[InvoiceHistory]]] = []
    for connection in config.connections:
        rows = store.iter_open_invoices(connection.name)
        for _key, group in groupby(rows, key=lambda row: (row[0].connection, row[0].debtor_id)):
            debtor_rows = list(group)
            # one case per debtor and run; a debtor owing in a second currency gets that case from the next run
            action = next((a for a in plan_rows(debtor_rows, config.policy, as_of) if a.step == "handoff"), None)
            if action is None:
                continue
            ids = set(action.invoice_ids)
            histories = [InvoiceHistory(i, tuple(e)) for i, _d, e in debtor_rows if i.platform_id in ids]
            wanted.append((debtor_rows[0][1], histories))
    if not wanted:
        return
    records = store.handoff_cases_open([(d.connection, d.platform_id) for d, _h in wanted])
    for debtor, histories in wanted:
        yield _Candidate(records[(debtor.connection, debtor.platform_id)], debtor, histories)


def _again(store: Store, reference: str) -> _Candidate:
    """A case exported before, rebuilt from its invoices as the store has them now."""
    record = store.handoff_case(reference)
    if record is None:
        raise CaseNotFound(f"case {reference}: not in the store; `dunning cases` lists the cases")
    debtor = store.debtor(record.connection, record.debtor_id)
    histories = []
    for platform_id in record.invoice_ids:
        invoice = store.invoice(record.connection, platform_id)
        if invoice is not None:
            histories.append(InvoiceHistory(invoice, store.events(record.connection, platform_id)))
    if debtor is None or not histories:
        raise CaseNotFound(f"case {reference}: its debtor or invoices are no longer in the store")
    return _Candidate(record, debtor, histories)


# --- one case ---------------------------------------------------------------------------------------------------------


def _build(
    config: Config,
    creditor: Creditor,
    agency: AgencyFormat,
    candidate: _Candidate,
    as_of: date,
    folder: ExportFolder,
    fetch_pdf: Callable[[str], FetchPdf | None] | None,
    evidence: Evidence,
) -> tuple[Case, list[str]]:
    """The case with its documents copied into the folder, and what it misses (then its documents are removed)."""
    reference = candidate.record.reference
    documents: list[Document] = []
    missing: list[str] = []
    warnings: list[str] = []
    if agency.documents:
        fetcher = fetch_pdf(candidate.debtor.connection) if fetch_pdf else None
        documents, missing, warnings = _documents(config, folder, reference, candidate.histories, evidence, fetcher)
    case = build_case(reference, creditor, candidate.debtor, candidate.histories, config.policy, as_of,
                      documents=documents, evidence=evidence, warnings=warnings)
    missing = missing_fields(case, agency) + missing
    if missing and documents:
        shutil.rmtree(folder.path / DOCUMENTS / reference, ignore_errors=True)
    return case, missing


def outbox_evidence(store: Store, histories: Sequence[InvoiceHistory]) -> dict[str, dict[str, Any]]:
    """What the outbox kept about each notice of default / 14-day letter (the history carries only its key): its
    text, the costs it stated, when the platform sent it and its letter file. One read for all the cases."""
    keys = [str(event.data["key"]) for history in histories for event in history.events
            if event.kind is EventKind.REMINDER_SENT and event.step == "notice_of_default" and event.data.get("key")]
    found: dict[str, dict[str, Any]] = {}
    for key, (payload, receipt) in store.outbox_payloads(keys).items():
        action = payload.get("action") or {}
        text = "\n".join(str(part) for part in (payload.get("subject"), payload.get("body")) if part)
        mail = receipt.get("mail") if isinstance(receipt.get("mail"), Mapping) else {}
        found[key] = {
            "text": text or None,
            "stated_costs": action.get("costs_if_unpaid"),
            "stated_principal": action.get("outstanding"),
            "stated_invoices": action.get("invoices"),
            "sent_at": mail.get("sent_at") or receipt.get("sent_on"),  # a posted letter: the day it was sent
            "letter": receipt.get("letter") or payload.get("letter"),
        }
    return found


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("._") or "document"


def _documents(
    config: Config,
    folder: ExportFolder,
    reference: str,
    histories: Sequence[InvoiceHistory],
    evidence: Evidence,
    fetcher: FetchPdf | None,
) -> tuple[list[Document], list[str], list[str]]:
    """The invoice PDFs from the platform and our letters into documents/<case>/; (documents, missing, warnings)."""
    documents: list[Document] = []
    missing: list[str] = []
    warnings: list[str] = []
    base = f"{DOCUMENTS}/{reference}"
    if fetcher is not None:
        for history in histories:
            invoice = history.invoice
            try:
                content = fetcher(invoice)
            except (AuthorizationExpired, RateLimited):
                raise
            except DunningError as exc:
                missing.append(f"the PDF of invoice {invoice.label} (the platform answered: {exc})")
                continue
            name = f"{base}/invoice-{_safe(invoice.label)}.pdf"
            folder.write(name, content)
            documents.append(Document("invoice", name, invoice.label))
    seen: set[str] = set()
    for history in histories:
        for event in history.events:
            recorded = letter_path(event, evidence)
            if not recorded or recorded in seen:
                continue
            seen.add(recorded)
            source = Path(recorded) if Path(recorded).is_absolute() else config.base_dir / recorded
            try:
                content = source.read_bytes()
            except OSError:
                warnings.append(f"our letter {source.name} of {event.on} is recorded but its file is not found")
                continue
            name = f"{base}/letter-{event.on.isoformat()}-{_safe(source.name)}"
            if not name.endswith(".pdf"):
                name += ".pdf"
            folder.write(name, content)
            documents.append(Document("letter", name, history.invoice.label))
    return documents, missing, warnings


# --- recording ----------------------------------------------------------------------------------------------------


def _outcome(case: Case, status: str, *, folder: str | None = None,
             missing: Sequence[str] = (), uploaded: bool = False) -> CaseOutcome:
    claim = case.claim
    return CaseOutcome(
        case=case.reference,
        connection=case.connection,
        debtor=case.debtor_id,
        debtor_name=case.debtor_name,
        invoices=case.invoice_ids,
        invoice_numbers=case.invoice_numbers,
        status=status,
        folder=folder,
        missing=list(missing),
        uploaded=uploaded,
        currency=case.currency,
        claim={key: claim[key] for key in ("principal", "interest", "costs", "total")},
        warnings=list(case.record["warnings"]),
    )


def _payload(candidate: _Candidate, outcome: CaseOutcome, agency: AgencyFormat, as_of: date) -> dict[str, Any]:
    earlier = dict(candidate.record.payload)
    exports = list(earlier.get("exports", ()))
    if outcome.status != "held_back":
        exports.append({"folder": outcome.folder, "as_of": as_of.isoformat(), "agency": agency.name,
                        "uploaded": outcome.uploaded})
    return earlier | {
        "debtor_name": outcome.debtor_name,
        "invoices": list(outcome.invoices),
        "invoice_numbers": list(outcome.invoice_numbers),
        "agency": agency.name,
        "as_of": as_of.isoformat(),
        "folder": outcome.folder if outcome.status != "held_back" else earlier.get("folder"),
        "missing": list(outcome.missing),
        "currency": outcome.currency,
        "totals": {key: str(value) for key, value in outcome.claim.items()},
        "exports": exports,
    }


def note_text(case: str, agency: AgencyFormat, as_of: date) -> str:
    """The note on each invoice at the platform: whoever looks there sees that the agency has it."""
    return (f"Dunning Connector: handed to the collection agency ({agency.name}) on {as_of.isoformat()} as case "
            f"{case}; no more reminders are sent.")


def _record(
    store: Store,
    agency: AgencyFormat,
    as_of: date,
    exported: Sequence[tuple[_Candidate, Case]],
    outcomes: Sequence[CaseOutcome],
    held: Sequence[tuple[_Candidate, CaseOutcome]],
    *,
    delivered: bool,
    uploaded: bool,
    upload_error: str | None = None,
) -> None:
    """Held-back cases keep their list; exported ones are handed off (once) when delivered, else stay open."""
    pending = [(c.record.id, "held_back", _payload(c, o, agency, as_of)) for c, o in held]
    handed: list[tuple[int, str, dict[str, Any]]] = []
    events: list[tuple[str, str, Event]] = []
    notes: list[tuple[str, str, dict[str, Any]]] = []
    status = "uploaded" if uploaded else "exported"
    for (candidate, case), outcome in zip(exported, outcomes, strict=True):
        payload = _payload(candidate, outcome, agency, as_of)
        if not delivered:
            pending.append((candidate.record.id, "exported", payload | {"upload_error": upload_error}))
            continue
        payload.pop("upload_error", None)
        if candidate.record.handed_off:  # `--again`: the invoices carry the handoff already
            pending.append((candidate.record.id, status, payload))
            continue
        handed.append((candidate.record.id, status, payload))
        data = {"case": case.reference, "agency": agency.name, "folder": outcome.folder}
        text = note_text(case.reference, agency, as_of)
        for history in candidate.histories:
            invoice = history.invoice
            events.append((case.connection, invoice.platform_id,
                           Event(kind=EventKind.HANDOFF, on=as_of, step="handoff", data=data)))
            notes.append((case.connection, f"handoff:{case.reference}:{invoice.platform_id}",
                          {"invoice": invoice.platform_id, "invoice_number": invoice.label, "debtor": case.debtor_id,
                           "step": "handoff", "case": case.reference, "text": text}))
    if pending:
        store.handoff_cases_update(pending)  # type: ignore[arg-type]
    if handed:
        store.handoff_record(handed, events, notes, note_kind=NOTE_KIND)  # type: ignore[arg-type]


def _manifest(agency: AgencyFormat, as_of: date, created: datetime, cases: Sequence[Case]) -> dict[str, Any]:
    """The manifest's header: the run, each case's totals and the totals per currency (files are added by
    `ExportFolder.write_manifest`)."""
    totals: dict[str, dict[str, Decimal]] = {}
    listed = []
    for case in cases:
        claim = case.claim
        listed.append({
            "case": case.reference, "connection": case.connection, "debtor": case.debtor_id,
            "debtor_name": case.debtor_name, "invoices": list(case.invoice_numbers), "currency": case.currency,
            **{key: str(claim[key]) for key in ("principal", "interest", "costs", "total")},
        })
        sums = totals.setdefault(case.currency, {"cases": Decimal(0), "principal": Decimal(0), "interest": Decimal(0),
                                                 "costs": Decimal(0), "total": Decimal(0)})
        sums["cases"] += 1
        for key in ("principal", "interest", "costs", "total"):
            sums[key] += claim[key]
    return {
        "format": MANIFEST_FORMAT,
        "agency": agency.name,
        "data_file": agency.data_file,
        "as_of": as_of.isoformat(),
        "created_at": created.isoformat(timespec="seconds"),
        "case_count": len(cases),
        "cases": listed,
        "totals": {currency: {key: (int(value) if key == "cases" else str(value)) for key, value in sums.items()}
                   for currency, sums in sorted(totals.items())},
    }
