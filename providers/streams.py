"""The shared incremental-sync machine, in the spirit of singer-sdk's streams.

An adapter declares its streams (what it lists, how it pages, its cursor field, page and batch sizes) and a
`Source`: reads that hand over mapped `Batch`es (records already turned into the canonical models by the
platform's `mapping.py`), plus the platform's quirks as hooks (`confirm`: how to ask for ids by id). This machine
owns everything that is the same on every platform, so it is decided once:

- **change detection**: an invoice's stored version is the platform's change marker *and* a digest of its content,
  so a full read stores every change even where the platform does not move its marker (Xero keeps UpdatedDateUTC
  when only a due date changes);
- **closing on evidence only**: an invoice leaves the open set when the platform returns it paid, voided, deleted
  or credited. An id the listing no longer holds is asked for by id first; one the platform does not return at all
  is an anomaly, kept open and named (one odd answer must never close the book);
- **garbage stays out**: amounts the platform cannot mean, invoices without a usable number, huge fields become
  problems naming the invoice; the last good version stays and nothing is closed because of them;
- **pages**: invoices are stored in pages of the stream's size, each with the cursor reached so far, so an
  interrupted sync keeps its work and the next one carries on from there.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

from connector.models import Debtor, Invoice
from providers.base import SyncPage, SyncState
from providers.parallel import in_order

log = logging.getLogger(__name__)
Stamped = TypeVar("Stamped", Invoice, Debtor)

MARK = "#"
"""Separates the platform's change marker from the content digest in a stored version."""
MAX_FIELD = 10_000
"""Characters a text field of an invoice or debtor may hold; longer is not real (a 200,000-character field)."""
_ABSENT = "\x00absent"
IMPLAUSIBLE_SHARE = 0.5
"""When more than this share of the stored open book seems to have left, a sample is asked for by id first."""
SAMPLE = 50
"""Leavers asked for in that sample (one by-id call on every platform)."""


@dataclass(frozen=True)
class Stream:
    """What an adapter lists and how: the declaration the machine and the benches read."""

    name: str
    path: str
    paging: Literal["page-number", "next-link", "version-list", "change-feed", "ids"]
    cursor_field: str | None
    page_size: int
    """Records per stored page (and per platform page where the platform pages)."""
    batch_size: int
    """Ids per by-id call."""


@dataclass(frozen=True)
class Problem:
    """A record skipped as bad platform data, naming it; `invoice_id` keeps that invoice from being closed."""

    text: str
    invoice_id: str | None = None


@dataclass
class Batch:
    """One answer of the platform, mapped."""

    invoices: Sequence[Invoice] = ()
    """Invoices as the platform returned them, open or not (a closed one is the evidence that it left)."""
    debtors: Sequence[Debtor] = ()
    problems: Sequence[Problem] = ()
    returned: Iterable[str] = ()
    """Further invoice ids the platform returned that need nothing stored (another document type, say)."""
    cursor: str | None = None
    """The bookmark once everything up to this batch is stored; None keeps the previous one."""
    leavers: Iterable[str] = ()
    """Ids the platform's open listing no longer holds: asked for by id before anything is closed."""
    settled: Iterable[str] = ()
    """Ids the adapter read as settled without a record to store (Exact: every payment term of the invoice
    matched): the evidence to close them."""
    deleted: Iterable[str] = ()
    """Ids the platform answered as deleted when read directly (Moneybird's 404 `record not found`): the evidence to
    close them, their history saying so."""
    covers_open_set: bool = False
    """This batch ends a read of the whole open set: stored open invoices it did not return are leavers."""


class Known:
    """What the store holds, as an adapter needs it to ask only for what changed."""

    def __init__(self, state: SyncState) -> None:
        self.state = state
        self.full = state.full
        self.cursor = state.cursor

    def is_stored_open(self, invoice_id: str) -> bool:
        return invoice_id in self.state.open_invoices

    def marker(self, invoice_id: str) -> str | None:
        """The platform's change marker the store holds for an open invoice (None: unknown or not stored)."""
        return marker_of(self.state.open_invoices.get(invoice_id))

    def unchanged(self, invoice_id: str, marker: str | None) -> bool:
        """The platform's marker says nothing changed (on a full read, content is compared all the same)."""
        return not self.full and marker is not None and self.marker(invoice_id) == marker

    def debtor_marker(self, debtor_id: str) -> str | None:
        """The platform's change marker the store holds for a debtor (None: unknown, or none given)."""
        return marker_of(self.state.debtors.get(debtor_id))

    def knows_debtor(self, debtor_id: str) -> bool:
        return debtor_id in self.state.debtors


class Source(Protocol):
    """What an adapter gives the machine."""

    streams: tuple[Stream, ...]

    def read(self, known: Known) -> Iterator[Batch]:
        """The platform's answers, mapped, in the order they are to be stored."""

    def confirm(self, invoice_ids: Sequence[str], known: Known) -> Iterator[Batch]:
        """The invoices asked for by id (the evidence hook): what the platform returns for them, in any state."""


def stamped(record: Stamped) -> Stamped:
    """The invoice or debtor with its stored version: the platform's marker and a digest of everything the store
    keeps, so a full read sees a change the platform did not mark."""
    content = record.model_dump_json(exclude={"version"})
    digest = hashlib.blake2b(content.encode(), digest_size=8).hexdigest()
    return record.model_copy(update={"version": f"{record.version or ''}{MARK}{digest}"})


def marker_of(version: str | None) -> str | None:
    """The platform's change marker in a stored version (None: the platform gave none)."""
    return version.split(MARK, 1)[0] or None if version else None


def garbage(invoice: Invoice, *, numbered: bool = True) -> str | None:
    """Why this invoice cannot be what the platform means (None: it can), naming the invoice. `numbered`: the
    platform gives every invoice a number (Exact's opening-balance entries have none, and are real debts)."""
    label = invoice.number or f"id {invoice.platform_id}"
    if numbered and (not invoice.number or not invoice.number.strip()):
        return f"invoice id {invoice.platform_id}: it has no invoice number; skipped"
    if invoice.number and _has_control(invoice.number):
        return f"invoice id {invoice.platform_id}: its number holds control characters; skipped"
    oversized = _oversized(invoice.model_dump(exclude={"version"}))
    if oversized:
        return f"invoice {label[:40]}: its {oversized}; skipped"
    amounts = {"total": invoice.total, "amount paid": invoice.amount_paid, "outstanding": invoice.outstanding}
    for name, amount in amounts.items():
        if amount != amount.quantize(Decimal("0.01")):
            return f"invoice {label}: its {name} {amount} is finer than a cent; skipped"
    if not invoice.is_credit_note and (invoice.outstanding < 0 or invoice.total < 0):
        return f"invoice {label}: a negative amount due ({invoice.outstanding}) on an invoice that is no credit " \
               "note; skipped"
    return None


def debtor_garbage(debtor: Debtor) -> str | None:
    """Why this debtor cannot be stored as the platform sent it (None: it can), naming it."""
    oversized = _oversized(debtor.model_dump(exclude={"version"}))
    return f"debtor {debtor.platform_id}: its {oversized}; its last good version is kept" if oversized else None


def _oversized(fields: dict[str, Any], prefix: str = "") -> str | None:
    """The first text field longer than any real one (`MAX_FIELD`), as "field holds N characters"."""
    for name, value in fields.items():
        if isinstance(value, dict):
            found = _oversized(value, f"{prefix}{name}.")
            if found:
                return found
        elif isinstance(value, str) and len(value) > MAX_FIELD:
            return f"{prefix}{name} holds {len(value):,} characters"
    return None


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


@dataclass
class _Run:
    state: SyncState
    page_size: int
    numbered: bool = True
    cursor: str | None = None
    seen: set[str] = field(default_factory=set)
    leavers: set[str] = field(default_factory=set)
    debtors_stored: dict[str, str | None] = field(default_factory=dict)
    stored: dict[str, str | None] = field(default_factory=dict)
    """Open invoice → version as the store holds it, pages of this sync included."""

    def __post_init__(self) -> None:
        self.stored = dict(self.state.open_invoices)

    def take(self, batch: Batch) -> Iterator[SyncPage]:
        """Compare one batch with the store and hand over what to store, in pages."""
        invoices: list[Invoice] = []
        problems = [p.text for p in batch.problems]
        self.seen.update(p.invoice_id for p in batch.problems if p.invoice_id)  # answered, if unreadable: kept
        self.seen.update(batch.returned)
        for invoice in batch.invoices:
            self.seen.add(invoice.platform_id)
            trouble = garbage(invoice, numbered=self.numbered)
            if trouble:
                problems.append(trouble)
                continue
            invoice = stamped(invoice)
            if invoice.is_open:
                if self.stored.get(invoice.platform_id, _ABSENT) != invoice.version:
                    invoices.append(invoice)
                    self.stored[invoice.platform_id] = invoice.version
            elif self.stored.pop(invoice.platform_id, _ABSENT) != _ABSENT:
                invoices.append(invoice)  # the evidence: stored with its final amounts, and closed
        settled = [i for i in batch.settled if self.stored.pop(i, _ABSENT) != _ABSENT]
        self.seen.update(batch.settled)
        deleted = [i for i in batch.deleted if self.stored.pop(i, _ABSENT) != _ABSENT]
        self.seen.update(batch.deleted)
        self.leavers.update(batch.leavers)
        if batch.covers_open_set:
            self.leavers.update(set(self.state.open_invoices) - self.seen)
        debtors = []
        for debtor in batch.debtors:
            trouble = debtor_garbage(debtor)
            if trouble:
                problems.append(trouble)
                continue
            debtor = stamped(debtor)
            if self._debtor_changed(debtor):
                debtors.append(debtor)
        yield from self._pages(invoices, debtors, problems, batch.cursor, settled, deleted)

    def _debtor_changed(self, debtor: Debtor) -> bool:
        """New or in another version than stored (or than delivered earlier in this sync)."""
        known = self.debtors_stored if debtor.platform_id in self.debtors_stored else self.state.debtors
        if debtor.platform_id in known and known[debtor.platform_id] == debtor.version:
            return False
        self.debtors_stored[debtor.platform_id] = debtor.version
        return True

    def _pages(self, invoices: Sequence[Invoice], debtors: Sequence[Debtor], problems: Sequence[str],
               cursor: str | None, settled: Sequence[str] = (), deleted: Sequence[str] = ()) -> Iterator[SyncPage]:
        """In pages of the stream's size; the batch's cursor goes with its last page only, so a sync interrupted
        between two pages carries on before what was not stored."""
        chunks = [invoices[i:i + self.page_size] for i in range(0, len(invoices), self.page_size)] or [()]
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            if last and cursor is not None:
                self.cursor = cursor
            yield SyncPage(invoices=tuple(chunk), debtors=tuple(debtors) if index == 0 else (), compared=True,
                           closed_invoice_ids=tuple(settled) if last else (),
                           deleted_invoice_ids=tuple(deleted) if last else (),
                           problems=tuple(problems) if last else (), cursor=self.cursor if last else None)


def run(source: Source, state: SyncState, *, page_size: int, numbered: bool = True) -> Iterator[SyncPage]:
    """The sync of one connection: `source`'s reads, compared, confirmed, closed on evidence, in pages."""
    known = Known(state)
    machine = _Run(state=state, page_size=page_size, numbered=numbered)
    for batch in source.read(known):
        yield from machine.take(batch)
    asked = sorted(machine.leavers - machine.seen)
    if not asked:
        return
    if len(asked) > max(SAMPLE, IMPLAUSIBLE_SHARE * len(state.open_invoices)):
        # An implausible share of the book would leave: the evidence of a sample first, so one odd answer neither
        # closes the book nor spends the day's calls asking for every invoice in it.
        sample, asked = asked[:SAMPLE], asked[SAMPLE:]
        for batch in source.confirm(sample, known):
            yield from machine.take(batch)
        doubtful = [i for i in sample if i not in machine.seen or i in machine.stored]
        if doubtful:
            yield SyncPage(anomalies=(_implausible(len(sample) + len(asked), len(state.open_invoices), doubtful),),
                           cursor=machine.cursor)
            return
    for batch in source.confirm(asked, known):
        yield from machine.take(batch)
    missing = [i for i in asked if i not in machine.seen]
    if missing:
        yield SyncPage(anomalies=tuple(_missing(i) for i in missing), cursor=machine.cursor)


def _implausible(leaving: int, book: int, doubtful: Sequence[str]) -> str:
    named = ", ".join(doubtful[:10]) + (f" and {len(doubtful) - 10} more" if len(doubtful) > 10 else "")
    return (f"the platform's listing left out {leaving} of {book} open invoices, but asked for by id, invoice ids "
            f"{named} were still open or not returned at all: the listing looks incomplete, so none was closed "
            "(run the sync again later; if it persists, check the platform)")


def _missing(invoice_id: str) -> str:
    return (f"invoice id {invoice_id}: the platform no longer lists it as open but did not return it when asked by "
            "id; kept open until the platform shows it paid, voided, deleted or credited (check it there)")


def by_id(call: Callable[[list[str]], Iterable[Any]], ids: Sequence[str], *, batch_size: int,
          id_of: Callable[[Any], str], reask_missing: bool = False, at_once: int = 1) -> Iterator[list[Any]]:
    """Records asked for by id, `batch_size` a call, `at_once` calls at a time (answers in the order asked).
    With `reask_missing` (a platform that may answer with fewer records than asked, Moneybird's synchronization
    POST), ids missing from an answer are asked once more after the others; a record deleted meanwhile is simply
    left out (the machine then names it)."""
    queue = list(ids)
    asked_again: set[str] = set()
    while queue:
        batches = [queue[i:i + batch_size] for i in range(0, len(queue), batch_size)]
        queue = []
        answers = in_order((lambda batch=batch: list(call(batch)) for batch in batches), at_once=at_once)
        try:
            for batch, records in zip(batches, answers, strict=True):
                if reask_missing:
                    returned = {id_of(r) for r in records}
                    missing = [i for i in batch if i not in returned and i not in asked_again]
                    asked_again.update(missing)
                    queue += missing
                yield records
        finally:
            answers.close()  # a consumer that stops early: no batch is asked for nothing


def first_accepted(forms: Sequence[Any], read: Callable[[Any], Iterator[Any]], *,
                   refused: Callable[[Exception], bool]) -> Iterator[Any]:
    """A listing read in the first of several request forms the platform accepts (a declared quirk: Xero's
    `If-Modified-Since` with or without its zone). A form refused before its first page moves on to the next one;
    once a page has come, any error propagates (what was read stays read)."""
    for index, form in enumerate(forms):
        answered = False
        try:
            for item in read(form):
                answered = True
                yield item
            return
        except Exception as exc:
            if answered or index == len(forms) - 1 or not refused(exc):
                raise
