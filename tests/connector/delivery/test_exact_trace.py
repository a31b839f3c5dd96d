"""Exact's re-sent invoice after a crash: each print creates a Document of the invoice, so the documents read before
the claim are the baseline a crashed send is settled by (new document: printed, recorded once; none: sent again
once). Where a print re-uses the document, that is learnt once per connection and a crash is checked by hand. A
promise is confirmed by the same mailing, settled the same way; and a run that only made tasks does not read as
failed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from connector import casebook
from connector.delivery import open_tasks
from connector.models import EventKind
from connector.store import Store
from connector.sync import sync_all
from providers.errors import RateLimited
from providers.exact import ExactProvider
from providers.exact.client import ExactClient
from tests.connector.delivery.conftest import build, send
from tests.connector.delivery.test_delivery import Crash, crashed_send, dead_claimant, mail_counts

SQLITE = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@pytest.fixture
def exact(tmp_path: Path, store_url: str) -> Any:
    kit = build(tmp_path, store_url, platforms=["exact"])
    with Store.open(kit.config.store_url, clock=kit.world.clock.now) as store:
        kit.store, kit.sim, kit.platform = store, kit.world.places[0].simulator, "exact"
        kit.division = kit.sim.divisions[int(kit.world.places[0].seeded.tenant)]
        sync_all(kit.config, store, kit.tokens, connect=kit.connect)
        yield kit


def documents(kit: SimpleNamespace, invoice: str) -> set[str]:
    return {d.ID for d in kit.division.documents.values() if d.FinancialTransactionEntryID == invoice}


def notes_with(kit: SimpleNamespace, key: str) -> list[Any]:
    return [n for n in kit.division.notes.values() if f"dunning-key:{key}]" in (n.Notes or "")]


@SQLITE
def test_a_print_a_crash_cut_off_is_found_by_its_new_document_and_recorded_once(
        exact: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    crashed_send(exact, monkeypatch, "mail_reminder", after=True)  # Exact printed and mailed; nothing committed
    [invoice] = exact.crashed.payload["invoices"]
    baseline = set(exact.crashed.receipt["trace_before"][invoice])
    assert baseline and documents(exact, invoice) - baseline  # the print made a document the claim did not know

    send(exact)
    send(exact)

    row = exact.store.outbox_by_key(exact.crashed.idempotency_key)
    assert row.status == "sent" and "found after a crash" in row.receipt["mail"]["detail"]
    assert mail_counts(exact)[(invoice,)] == 1 and len(notes_with(exact, row.idempotency_key)) == 1
    assert all(count == 1 for count in mail_counts(exact).values())


@SQLITE
def test_a_failed_document_check_after_the_print_leaves_the_reminder_sent_once(
        exact: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    # the check of the invoice's documents only learns how Exact traces a print: its failure (here the day's calls
    # running out) must not turn the mail that went out into a send to do again
    def spent(self: Any, invoice_id: str) -> list[dict[str, Any]]:
        raise RateLimited("the daily API limit is spent", connection="x", for_the_day=True)

    with monkeypatch.context() as patch:
        patch.setattr(ExactClient, "documents_of", spent)
        first = send(exact)
    sent = [line for line in first if line["status"] == "sent"]
    assert sent and not exact.store.outbox_rows(status=["pending", "failed"])

    exact.world.advance_to(exact.world.clock.now() + timedelta(days=1))
    send(exact, as_of=exact.world.today)

    assert all(count == 1 for count in mail_counts(exact).values())


@SQLITE
def test_a_crash_before_the_print_leaves_no_new_document_and_the_reminder_goes_once(
        exact: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    crashed_send(exact, monkeypatch, "mail_reminder", after=False)
    [invoice] = exact.crashed.payload["invoices"]
    assert documents(exact, invoice) == set(exact.crashed.receipt["trace_before"][invoice])

    send(exact)

    row = exact.store.outbox_by_key(exact.crashed.idempotency_key)
    assert row.status == "sent" and mail_counts(exact)[(invoice,)] == 1
    assert len(notes_with(exact, row.idempotency_key)) == 1


@SQLITE
def test_an_exact_that_re_uses_the_document_is_learnt_once_and_a_crash_then_is_checked_by_hand(
        exact: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    exact.sim.resend_document = "reuse"
    real = ExactProvider.mail_reminder
    calls = {"n": 0}

    def second_dies(self: ExactProvider, request: Any) -> Any:
        calls["n"] += 1
        receipt = real(self, request)
        if calls["n"] == 2:
            raise Crash  # the second print went out; the run dies before anything is committed
        return receipt

    with monkeypatch.context() as patch:
        dead_claimant(patch)
        patch.setattr(ExactProvider, "mail_reminder", second_dies)
        with pytest.raises(Crash):
            send(exact)
    assert exact.store.outbox_fact("demo-exact", "trace_lost")  # the first print answered the old document
    [crashed] = exact.store.outbox_rows(status=["sending"])
    invoices = tuple(crashed.payload["invoices"])
    reads = exact.sim.call_count("*/documents/Documents", "GET")

    send(exact)
    send(exact)

    row = exact.store.outbox_by_key(crashed.idempotency_key)
    assert row.status == "task" and "cannot show whether it went out" in row.receipt["reason"]
    assert mail_counts(exact)[invoices] == 1  # never a second mail
    assert all(count == 1 for count in mail_counts(exact).values())
    assert exact.sim.call_count("*/documents/Documents", "GET") == reads  # no baseline is read any more


def promised(kit: SimpleNamespace) -> Any:
    invoice = next(i for i, debtor, _ in kit.store.iter_open_invoices() if i.is_collectable and debtor.emails
                   and i.number)
    casebook.record_hold(kit.store, invoice, "promise", kit.world.today, until=kit.world.today + timedelta(days=10))
    [row] = kit.store.outbox_rows(kind=["confirmation"])
    return invoice, row


@SQLITE
def test_a_promise_is_confirmed_by_exacts_own_mailing_with_our_text_and_noted(exact: SimpleNamespace) -> None:
    invoice, row = promised(exact)

    send(exact)
    send(exact)

    done = exact.store.outbox_row(row.id)
    assert done.status == "sent" and done.receipt["channel"] == "platform_mail"
    [mail] = [m for m in exact.sim.sent_mail() if m.invoice_ids == (invoice.platform_id,)
              and (exact.world.today + timedelta(days=10)).strftime("%d-%m-%Y") in (m.text or "")
              or "promise" in (m.text or "")]  # our text, with the promised date, as Exact's ExtraText
    assert mail.invoice_ids == (invoice.platform_id,)
    assert len(notes_with(exact, row.idempotency_key)) == 1
    events = exact.store.events("demo-exact", invoice.platform_id)
    assert [e for e in events if e.kind is EventKind.NOTE and e.data.get("key") == row.idempotency_key]


@SQLITE
def test_a_promise_confirmation_a_crash_cut_off_mid_print_is_settled_by_the_document(
        exact: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    invoice, row = promised(exact)
    real = ExactProvider.mail_reminder

    def dies_on_the_confirmation(self: ExactProvider, request: Any) -> Any:
        receipt = real(self, request)
        if request.step == "confirmation":
            raise Crash
        return receipt

    with monkeypatch.context() as patch:
        dead_claimant(patch)
        patch.setattr(ExactProvider, "mail_reminder", dies_on_the_confirmation)
        with pytest.raises(Crash):
            send(exact)
    before = [m for m in exact.sim.sent_mail() if m.invoice_ids == (invoice.platform_id,)]

    send(exact)

    assert exact.store.outbox_row(row.id).status == "sent"
    assert [m for m in exact.sim.sent_mail() if m.invoice_ids == (invoice.platform_id,)] == before
    assert len(notes_with(exact, row.idempotency_key)) == 1


@SQLITE
def test_a_promise_exact_will_not_re_send_becomes_a_letter(exact: SimpleNamespace) -> None:
    exact.sim.resend_processed = "refuse"
    invoice, row = promised(exact)

    send(exact)

    assert exact.sim.sent_mail() == []
    [task] = [t for t in open_tasks(exact.store) if t.id == row.id]
    assert task.kind == "letter" and Path(str(task.letter)).read_bytes().startswith(b"%PDF")
    assert exact.store.outbox_fact("demo-exact", "mailing_refused")


class Observed:
    def __init__(self) -> None:
        self.ends: list[tuple[str, bool, str | None]] = []

    def started(self, connection: str, task: str) -> None:
        pass

    def page(self, connection: str, **counts: int) -> None:
        pass

    def advanced(self, connection: str, *, done: int, total: int | None = None) -> None:
        pass

    def waiting(self, connection: str, seconds: float, reason: str) -> None:
        pass

    def finished(self, connection: str, task: str, *, ok: bool, detail: str | None = None) -> None:
        self.ends.append((task, ok, detail))


@SQLITE
def test_a_send_whose_only_trouble_is_tasks_does_not_read_as_failed(exact: SimpleNamespace) -> None:
    exact.sim.resend_processed = "refuse"  # every reminder becomes a task (no [mail]): refused, not failed
    shown = Observed()

    send(exact, progress=shown)

    [summary] = exact.summaries
    assert summary.refused and summary.failed == 0 and not summary.ok  # still exit 1: a person must look
    [(task, ok, detail)] = shown.ends
    assert task == "send" and ok and f"{summary.tasks} task(s) for a person" in str(detail)


def test_the_progress_line_names_the_tasks_instead_of_saying_failed(caplog: pytest.LogCaptureFixture) -> None:
    import io
    import logging

    from rich.console import Console

    from connector.cli.progress import LogProgress, RichProgress

    console = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=140)
    with RichProgress(console) as shown:
        shown.started("acme", "send")
        shown.advanced("acme", done=3)
        shown.finished("acme", "send", ok=True, detail="2 task(s) for a person")
    assert "3 done; done (2 task(s) for a person)" in console.file.getvalue()  # type: ignore[attr-defined]
    assert "failed" not in console.file.getvalue()  # type: ignore[attr-defined]
    caplog.set_level(logging.INFO, logger="dunning.progress")
    LogProgress().finished("acme", "send", ok=True, detail="2 task(s) for a person")
    assert [r.getMessage() for r in caplog.records] == ["acme: send finished (2 task(s) for a person)"]
