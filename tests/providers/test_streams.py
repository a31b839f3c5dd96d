"""The shared sync machine on a scripted source: pages and cursors, content comparison, closing on evidence."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal

from connector.models import Invoice
from providers.base import SyncState
from providers.streams import Batch, Known, Problem, Stream, marker_of, run, stamped


def invoice(n: int, *, open_: bool = True, due: date = date(2026, 10, 1), version: str = "v1") -> Invoice:
    return Invoice(connection="c", platform_id=f"I{n}", number=f"2026-{n}", debtor_id="D1",
                   issue_date=date(2026, 9, 1), due_date=due, currency="EUR", total=Decimal("100.00"),
                   amount_paid=Decimal("0.00") if open_ else Decimal("100.00"),
                   outstanding=Decimal("100.00") if open_ else Decimal("0.00"), is_credit_note=False,
                   status="open" if open_ else "paid", is_open=open_, version=version)


class Script:
    streams = (Stream("invoices", "/invoices", "page-number", "updated", 2, 50),)

    def __init__(self, reads: Sequence[Batch], by_id: dict[str, Invoice] | None = None) -> None:
        self.reads, self.by_id, self.asked = reads, by_id or {}, []

    def read(self, known: Known) -> Iterator[Batch]:
        yield from self.reads

    def confirm(self, invoice_ids: Sequence[str], known: Known) -> Iterator[Batch]:
        self.asked.append(list(invoice_ids))
        yield Batch(invoices=[self.by_id[i] for i in invoice_ids if i in self.by_id])


def test_a_batch_is_paged_and_its_cursor_goes_with_its_last_page_only() -> None:
    pages = list(run(Script([Batch(invoices=[invoice(n) for n in range(5)], cursor="c1")]), SyncState(),
                     page_size=2))

    assert [len(p.invoices) for p in pages] == [2, 2, 1]
    assert [p.cursor for p in pages] == [None, None, "c1"]  # stopped after page 1 or 2: read again from before


def test_unchanged_content_is_not_handed_over_and_changed_content_is() -> None:
    first = [stamped(invoice(1)), stamped(invoice(2))]
    state = SyncState(open_invoices={i.platform_id: i.version for i in first}, full=True)

    pages = list(run(Script([Batch(invoices=[invoice(1), invoice(2, due=date(2026, 11, 1))])]), state, page_size=10))

    assert [i.platform_id for p in pages for i in p.invoices] == ["I2"]
    assert marker_of(pages[0].invoices[0].version) == "v1" and all(p.compared for p in pages)


def test_leavers_close_on_evidence_and_the_rest_are_anomalies() -> None:
    state = SyncState(open_invoices={f"I{n}": stamped(invoice(n)).version for n in range(1, 5)}, full=True)
    source = Script([Batch(invoices=[invoice(1)], problems=[Problem("invoice 2026-2: unreadable", "I2")],
                           covers_open_set=True)],
                    by_id={"I3": invoice(3, open_=False)})

    pages = list(run(source, state, page_size=10))

    assert source.asked == [["I3", "I4"]]  # the unreadable one is not a leaver
    assert [i.platform_id for p in pages for i in p.invoices if not i.is_open] == ["I3"]
    anomalies = [a for p in pages for a in p.anomalies]
    assert len(anomalies) == 1 and "I4" in anomalies[0]
