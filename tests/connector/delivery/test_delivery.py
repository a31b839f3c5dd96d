"""Delivery's promises against the simulators, in process: reconciliation after a crash on each platform, the
re-check of invoices paid since the sync, a dry run that changes nothing, each failure path, the day budget, letters
and tasks (with the real sending date), and written confirmations."""

from __future__ import annotations

import socket
import subprocess
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from connector import casebook, plugins
from connector.delivery import complete_task, open_tasks
from connector.delivery import claims
from connector.delivery import sender as sender_module
from connector.escalation.texts import TemplateDataMissing
from connector.models import EventKind
from connector.store import Store
from connector.sync import sync_all
from providers.base import SyncPage
from providers.errors import AuthorizationExpired, DunningError, PlatformError, RateLimited
from providers.simkit import RateWindows, Window
from tests.connector.delivery.conftest import build, planned, send


# The outbox protocol (queue, claim, progress, finish) runs on SQLite and PostgreSQL in the two crash tests that
# come first; the rest run on SQLite only, to keep the suite fast.


class Crash(BaseException):
    """Stands for the process dying at this point (not an error the sender could catch)."""


@pytest.fixture
def one(tmp_path: Path, store_url: str, request: pytest.FixtureRequest) -> Any:
    """A world with only the platform named by the test's `platform` parameter, synced."""
    platform = request.node.callspec.params["platform"]
    extra = getattr(request, "param", None)
    kit = build(tmp_path, store_url, platforms=[platform], extra=extra)
    with Store.open(kit.config.store_url, clock=kit.world.clock.now) as store:
        kit.store = store
        kit.sim = kit.world.places[0].simulator
        kit.platform = platform
        sync_all(kit.config, store, kit.tokens, connect=kit.connect)
        yield kit


def mail_counts(kit: SimpleNamespace) -> Counter[tuple[str, ...]]:
    return Counter(tuple(m.invoice_ids) for m in kit.sim.sent_mail())


def dead_claimant(monkeypatch: pytest.MonkeyPatch) -> None:
    """Claims made from here on name a process that has ended (as a killed run's claims do)."""
    finished = subprocess.Popen(["true"])
    finished.wait()
    monkeypatch.setattr(claims, "claimant", lambda: {"host": socket.gethostname(), "pid": finished.pid, "run": "gone"})


def crash_in(monkeypatch: pytest.MonkeyPatch, kit: SimpleNamespace, method: str, *, after: bool) -> None:
    """The first reminder's send dies before or after the provider's `method` does its work."""
    cls = plugins.provider_class(kit.platform)
    original = getattr(cls, method)

    def dying(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not after:
            raise Crash
        original(self, *args, **kwargs)
        raise Crash

    monkeypatch.setattr(cls, method, dying)


def crashed_send(kit: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, method: str, *, after: bool) -> None:
    with monkeypatch.context() as patch:
        dead_claimant(patch)
        crash_in(patch, kit, method, after=after)
        with pytest.raises(Crash):
            send(kit)
    [row] = kit.store.outbox_rows(status=["sending"])
    kit.crashed = row


@pytest.mark.parametrize("platform", ["xero", "moneybird", "exact"])
def test_a_crash_after_the_mail_and_before_its_note_never_mails_again(
    one: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    crashed_send(one, monkeypatch, "mail_reminder", after=True)  # the platform mailed; nothing was committed
    invoices = tuple(one.crashed.payload["invoices"])
    assert mail_counts(one)[invoices] == 1

    lines = send(one)

    assert mail_counts(one)[invoices] == 1  # reconciled against the platform: never a second mail
    row = one.store.outbox_by_key(one.crashed.idempotency_key)
    # Xero's Idempotency-Key replay, Moneybird's reminder count, the new document of Exact's print tell: recorded as
    # sent, with its note
    assert row.status == "sent"
    [invoice] = [one.store.invoice(platform_id=invoices[0], connection=row.connection)]
    assert one.connect(one.config.settings(row.connection)).find_note(invoice, row.idempotency_key) is not None
    assert [e.kind for e in one.store.events(row.connection, invoices[0])].count(EventKind.REMINDER_SENT) == 1
    assert all(count == 1 for count in mail_counts(one).values())
    assert [line for line in lines if line["key"] == row.idempotency_key]


@pytest.mark.parametrize("platform", ["xero", "moneybird", "exact"])
def test_a_crash_between_the_mail_and_its_note_only_writes_the_note(
    one: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    crashed_send(one, monkeypatch, "record_reminder", after=False)  # the mail is committed as gone out
    assert one.crashed.receipt["phase"] == "mailed"
    invoices = tuple(one.crashed.payload["invoices"])

    send(one)

    assert mail_counts(one)[invoices] == 1
    row = one.store.outbox_by_key(one.crashed.idempotency_key)
    assert row.status == "sent" and row.receipt["record"]
    events = one.store.events(row.connection, invoices[0])
    assert [e.kind for e in events if e.kind is EventKind.REMINDER_SENT] == [EventKind.REMINDER_SENT]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def _refusal(kind: str) -> DunningError:
    if kind == "rate limit":
        return RateLimited("the daily API limit is spent", connection="x", for_the_day=True)
    if kind == "authorisation":
        return AuthorizationExpired("the platform refused to renew the authorisation", connection="x")
    return PlatformError("a business rule refused the note", connection="x", status=500)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("refusal", ["rate limit", "authorisation", "platform error"])
@pytest.mark.parametrize("platform", ["moneybird", "exact"])
def test_a_refusal_after_the_mail_went_out_leaves_it_in_flight_and_never_mails_again(
    one: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, platform: str, refusal: str
) -> None:
    # the mail went out, then recording it failed: the row must not go back to pending, nor to failed (both are
    # queued again), but stay in flight for the next run to record without mailing
    with monkeypatch.context() as patch:
        dead_claimant(patch)  # the next send is another run, as tomorrow's would be
        cls = plugins.provider_class(platform)

        def refused(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise _refusal(refusal)

        patch.setattr(cls, "record_reminder", refused)
        send(one)
    in_flight = one.store.outbox_rows(status=["sending"])  # a rate limit or authorisation stops at the first
    assert in_flight and all(row.receipt["phase"] == "mailed" for row in in_flight)
    assert not one.store.outbox_rows(status=["failed"])
    assert all(mail_counts(one)[tuple(row.payload["invoices"])] == 1 for row in in_flight)
    if refusal == "authorisation":  # the connection waits for `dunning setup --reconnect`; its rows wait with it
        return

    one.world.advance_to(one.world.clock.now() + timedelta(days=1))
    send(one, as_of=one.world.today)

    assert all(n == 1 for n in mail_counts(one).values())
    for row in in_flight:
        settled = one.store.outbox_by_key(row.idempotency_key)
        assert settled.status == "sent" and settled.receipt["record"]


@pytest.mark.parametrize("platform", ["xero", "moneybird", "exact"])
def test_a_crash_before_the_platform_was_called_sends_once_where_the_platform_can_tell(
    one: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    crashed_send(one, monkeypatch, "mail_reminder", after=False)
    invoices = tuple(one.crashed.payload["invoices"])
    assert mail_counts(one)[invoices] == 0

    send(one)

    row = one.store.outbox_by_key(one.crashed.idempotency_key)
    assert row.status == "sent" and mail_counts(one)[invoices] == 1


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["xero"])
def test_xero_is_not_asked_again_once_its_replay_window_has_passed(
    one: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    crashed_send(one, monkeypatch, "mail_reminder", after=True)
    invoices = tuple(one.crashed.payload["invoices"])
    one.world.clock.advance(3600)  # the simulator forgot the key an hour ago, and so must we

    class AnHourLater(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(hours=1)

    monkeypatch.setattr(sender_module, "datetime", AnHourLater)

    send(one)

    row = one.store.outbox_by_key(one.crashed.idempotency_key)
    assert row.status == "task" and mail_counts(one)[invoices] == 1


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["xero", "moneybird", "exact"])
def test_an_invoice_paid_since_the_sync_is_not_reminded(one: SimpleNamespace, platform: str) -> None:
    due = [a for a in planned(one.config, one.store, one.world.today)
           if a.channel.value == "platform_mail" and a.debtor.emails]
    paid = due[0].invoice_ids[0]
    for invoice_id in due[0].invoice_ids:
        one.sim.record_payment(invoice_id)

    lines = send(one)

    assert not [ids for ids in mail_counts(one) if paid in ids]
    [line] = [line for line in lines if paid in line["invoices"]]
    assert line["status"] == "skipped" and "paid or closed on the platform since the last sync" in line["reason"]
    assert [line for line in lines if line["status"] == "sent"]  # the others went out


def _snapshot(kit: SimpleNamespace) -> tuple[Any, ...]:
    rows = [(r.idempotency_key, r.status, r.attempts) for r in kit.store.outbox_rows()]
    events = [(i.platform_id, len(kit.store.events(i.connection, i.platform_id)))
              for i, _, _ in kit.store.iter_open_invoices()]
    writes = sum(kit.sim.call_count("*", method) for method in ("POST", "PUT", "DELETE"))
    return rows, events, len(kit.sim.sent_mail()), writes, kit.sim.call_count("*")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["xero", "moneybird", "exact"])
def test_a_dry_run_shows_what_would_go_out_and_changes_nothing_anywhere(one: SimpleNamespace, platform: str) -> None:
    before = _snapshot(one)

    lines = send(one, dry_run=True)

    assert _snapshot(one) == before
    would = [line for line in lines if line["status"] == "sent"]
    assert would and all(line["dry_run"] and line["step"] and line["outstanding"] for line in would), would
    assert all(line["recipients"] for line in would)
    if platform == "moneybird":  # the platform that carries our text: the text is shown
        assert all(line["body"] and line["subject"] for line in would)
    assert len(send(one)) >= len(would)  # and a real send afterwards still has all of it to do


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["moneybird"])
def test_a_template_missing_a_value_fails_that_action_by_name_and_the_rest_go_out(
    one: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    due = [a for a in planned(one.config, one.store, one.world.today) if a.channel.value == "platform_mail"]
    broken = due[0].invoice_numbers[0]
    from connector.delivery import queueing

    real = queueing.render

    def render(action: Any, *args: Any, **kwargs: Any) -> Any:
        if broken in action.invoice_numbers:
            raise TemplateDataMissing(f"template reminder_1.nl.j2 for invoice {broken}: 'pay_by' is undefined")
        return real(action, *args, **kwargs)

    monkeypatch.setattr(queueing, "render", render)
    lines = send(one)

    [failed] = [line for line in lines if line["status"] == "failed"]
    assert broken in failed["reason"] and failed["invoice_numbers"] == list(due[0].invoice_numbers)
    assert [line for line in lines if line["status"] == "sent"]
    assert not one.summaries[0].ok


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["xero"])
def test_the_platforms_daily_mail_limit_fails_the_rest_for_today_and_they_go_tomorrow(
    one: SimpleNamespace, platform: str
) -> None:
    one.sim.email_daily_limit = 2
    lines = send(one)
    sent = [line for line in lines if line["status"] == "sent"]
    failed = [line for line in lines if line["status"] == "failed"]
    assert len(sent) == 2 and failed and all("daily limit" in line["reason"] for line in failed)
    assert all(line["invoice_numbers"][0] in line["reason"] for line in failed)

    one.world.advance_to(one.world.clock.now() + timedelta(days=1))
    tomorrow = send(one, as_of=one.world.today)
    again = {tuple(line["invoices"]) for line in tomorrow if line["status"] == "sent"}
    assert again and again <= {tuple(line["invoices"]) for line in failed}  # the failed ones, queued again
    assert all(n == 1 for n in mail_counts(one).values())


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["xero"])
def test_a_spent_day_budget_leaves_the_rest_pending_and_the_next_run_continues(
    one: SimpleNamespace, platform: str
) -> None:
    tenant = one.world.places[0].seeded.tenant
    day = one.sim.tenant_windows.peek(tenant).window("day")
    used = day.limit - day.remaining
    one.sim.tenant_windows = RateWindows(one.sim.clock, [Window("minute", 60, 60), Window("day", used + 6, 86400)])

    lines = send(one)

    summary = one.summaries[0]
    assert summary.error and "daily API limit" in summary.error and summary.left_pending > 0
    assert [line for line in lines if "not sent today" in line["reason"]]
    pending = one.store.outbox_rows(status=["pending"])
    assert len(pending) == summary.left_pending
    sent_before = len(one.sim.sent_mail())

    one.world.advance_to(one.world.clock.now() + timedelta(days=1))
    one.sim.tenant_windows = RateWindows(one.sim.clock, [Window("minute", 60, 60), Window("day", 5000, 86400)])
    send(one, as_of=one.world.today)  # yesterday's rest, recorded on the day it really went
    assert not one.store.outbox_rows(status=["pending"])
    assert len(one.sim.sent_mail()) > sent_before and all(n == 1 for n in mail_counts(one).values())


LETTERS = {"policy": {"steps": {"reminder_1": {"channel": "letter"}}}}
CALLS = {"policy": {"steps": {"reminder_1": {"channel": "call_task"}}}}


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("one", [LETTERS], indirect=True)
@pytest.mark.parametrize("platform", ["xero"])
def test_a_letter_is_a_pdf_a_task_and_a_note_and_counts_from_the_day_it_was_posted(
    one: SimpleNamespace, platform: str
) -> None:
    lines = send(one)

    letters = [t for t in open_tasks(one.store) if t.kind == "letter"]
    assert letters and all(line["status"] == "task" for line in lines if line["channel"] == "letter")
    lettered = {i for t in letters for i in t.invoices}
    assert not [m for m in one.sim.sent_mail() if set(m.invoice_ids) & lettered]  # nothing faked as mailed
    task = letters[0]
    assert Path(task.letter).read_bytes().startswith(b"%PDF") and Path(task.letter).parent.name == "demo-xero"
    invoice = one.store.invoice("demo-xero", task.invoices[0])
    [key] = [line["key"] for line in lines if line["invoices"] == list(task.invoices)]
    assert one.connect(one.config.settings("demo-xero")).find_note(invoice, key) is not None  # noted on Xero
    assert not [a for a in planned(one.config, one.store, one.world.today + timedelta(days=30))
                if a.invoice_ids == task.invoices and str(a.step) == "reminder_2"]  # no later step before it is sent

    posted = one.world.today + timedelta(days=3)
    complete_task(one.store, task.id, on=posted, sent_on=posted)

    sent = [e for e in one.store.events(invoice.connection, invoice.platform_id) if e.kind is EventKind.REMINDER_SENT]
    assert [(e.on, e.step) for e in sent] == [(posted, "reminder_1")]
    gap = one.config.policy.steps.reminder_2.days
    assert not [a for a in planned(one.config, one.store, posted + timedelta(days=gap - 1))
                if invoice.platform_id in a.invoice_ids and str(a.step) == "reminder_2"]
    assert [a for a in planned(one.config, one.store, posted + timedelta(days=gap))
            if invoice.platform_id in a.invoice_ids and str(a.step) == "reminder_2"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("one", [CALLS], indirect=True)
@pytest.mark.parametrize("platform", ["moneybird"])
def test_a_call_step_is_a_call_task_with_the_debtors_dossier(one: SimpleNamespace, platform: str) -> None:
    send(one)

    calls = [t for t in open_tasks(one.store) if t.kind == "call"]
    called = {i for t in calls for i in t.invoices}
    assert calls and not [m for m in one.sim.sent_mail() if set(m.invoice_ids) & called]
    assert all(t.dossier and "open invoice" in t.dossier[0] for t in calls)
    assert all(t.as_json()["reason"].startswith("call ") for t in calls)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["exact"])
def test_an_arrangement_is_confirmed_in_writing_with_instalments_sanction_and_signature(
    one: SimpleNamespace, platform: str
) -> None:
    invoice = next(i for i, debtor, _ in one.store.iter_open_invoices() if i.is_collectable)
    half = (invoice.outstanding / 2).quantize(invoice.outstanding)
    today = one.world.today
    casebook.record_arrangement(one.store, invoice, [f"{today + timedelta(days=30)}:{invoice.outstanding - half}"],
                                today, down_payment=f"{today + timedelta(days=7)}:{half}")
    [row] = one.store.outbox_rows(kind=["confirmation"])

    send(one)

    [task] = [t for t in open_tasks(one.store) if t.invoices == (invoice.platform_id,) and t.kind == "letter"]
    text = Path(task.letter).read_bytes()
    assert text.startswith(b"%PDF") and one.store.outbox_row(row.id).status == "task"
    casebook.record_arrangement(one.store, invoice, [f"{today + timedelta(days=30)}:{invoice.outstanding - half}"],
                                today, down_payment=f"{today + timedelta(days=7)}:{half}")
    assert len(one.store.outbox_rows(kind=["confirmation"])) == 1  # the same agreement is confirmed once


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["xero", "moneybird", "exact"])
def test_a_queued_note_of_any_kind_is_delivered_once(one: SimpleNamespace, platform: str) -> None:
    invoice = next(i for i, _, _ in one.store.iter_open_invoices() if i.is_collectable)
    key = f"handoff:case-1:{invoice.platform_id}"
    one.store.outbox_queue(invoice.connection, "note", key, {
        "invoice": invoice.platform_id, "invoice_number": invoice.label, "debtor": invoice.debtor_id,
        "step": "handoff", "case": "case-1", "text": "Handed to the collection agency (case case-1)"})

    first = send(one)
    again = send(one)

    [line] = [line for line in first if line["key"] == key]
    assert line["status"] == "sent" and one.store.outbox_by_key(key).status == "sent"
    adapter = one.connect(one.config.settings(invoice.connection))
    assert adapter.find_note(invoice, key) is not None
    assert not [line for line in again if line["key"] == key and line["status"] == "sent"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_limit_is_for_the_whole_run_across_connections(kit: SimpleNamespace) -> None:
    lines = send(kit, limit=3)

    worked = [line for line in lines if line["status"] in ("sent", "task", "failed")]
    assert len(worked) == 3  # not 3 per connection
    assert len({line["connection"] for line in lines}) == 3  # every connection had work due
    held = [line for line in lines if "--limit reached" in line["reason"]]
    assert {line["connection"] for line in held} >= {line["connection"] for line in lines} - {worked[0]["connection"]}
    assert sum(summary.counted_for_limit for summary in kit.summaries) == 3


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_dry_run_with_limit_shows_the_ones_the_run_would_work_and_holds_back_the_rest(kit: SimpleNamespace) -> None:
    shown = send(kit, limit=3, dry_run=True)
    would = [(line["connection"], line["key"]) for line in shown if line["status"] in ("sent", "task", "failed")]
    assert len(would) == 3 and sum(summary.counted_for_limit for summary in kit.summaries) == 3
    assert [line for line in shown if "--limit reached" in line["reason"]]

    done = send(kit, limit=3)

    assert [(line["connection"], line["key"]) for line in done if line["status"] in ("sent", "task", "failed")] == would


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["moneybird"])
def test_limit_sends_that_many_and_the_next_run_the_rest_recorded_on_its_own_date(
    one: SimpleNamespace, platform: str
) -> None:
    first = send(one, limit=2)
    assert len([line for line in first if line["status"] in ("sent", "task")]) == 2
    assert [line for line in first if "--limit reached" in line["reason"]]

    later = one.world.today + timedelta(days=1)
    rest = send(one, as_of=later)

    sent_later = [line for line in rest if line["status"] == "sent"]
    assert sent_later
    for line in sent_later:
        events = one.store.events(line["connection"], line["invoices"][0])
        assert [e.on for e in events if e.kind is EventKind.REMINDER_SENT] == [later]  # --as-of is the sent date
    assert all(n == 1 for n in mail_counts(one).values())


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["moneybird"])
def test_a_moneybird_contact_who_takes_post_gets_a_letter_task_not_a_mail(one: SimpleNamespace, platform: str) -> None:
    due = [a for a in planned(one.config, one.store, one.world.today)
           if a.channel.value == "platform_mail" and a.debtor.emails]
    admin = one.sim.books[one.world.places[0].seeded.tenant]
    admin.contacts[due[0].debtor_id].delivery_method = "Post"

    lines = send(one)

    [line] = [line for line in lines if line["invoices"] == list(due[0].invoice_ids)]
    assert line["status"] == "task" and "print and post" in line["reason"]
    assert not [m for m in one.sim.sent_mail() if set(m.invoice_ids) & set(due[0].invoice_ids)]
    [reminder] = [r for r in one.sim.reminders if r["sales_invoice_ids"] == list(due[0].invoice_ids)]
    assert reminder["delivery_method"] == "Manual"  # Moneybird recorded it; a person posts it
    assert [t for t in open_tasks(one.store) if t.kind == "letter" and t.invoices == due[0].invoice_ids]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["exact"])
def test_a_re_check_the_platform_will_not_answer_does_not_stop_the_day(one: SimpleNamespace, platform: str) -> None:
    one.sim.faults.server_error("*Receivables*", times=50, status=400)

    lines = send(one)

    assert [line for line in lines if line["status"] == "sent"]
    assert one.summaries[0].warnings and "re-check before sending failed" in one.summaries[0].line()


def test_a_claim_is_abandoned_when_its_process_is_gone_or_its_lease_ran_out() -> None:
    from connector.store import OutboxEntry

    now = datetime.now().astimezone()
    finished = subprocess.Popen(["true"])
    finished.wait()

    def row(claimant: dict[str, Any], age: timedelta) -> OutboxEntry:
        return OutboxEntry(1, "k", "c", "reminder", {}, "sending", 1,
                           {"claimant": claimant, "claimed_at": (now - age).isoformat()}, None)

    here = socket.gethostname()
    assert claims.abandoned(row({"host": here, "pid": finished.pid, "run": "x"}, timedelta(seconds=1)), now)
    assert not claims.abandoned(row(claims.claimant(), timedelta(seconds=1)), now)  # this run's own claim
    assert not claims.abandoned(row({"host": "elsewhere", "pid": 1, "run": "y"}, timedelta(minutes=5)), now)
    assert claims.abandoned(row({"host": "elsewhere", "pid": 1, "run": "y"}, timedelta(hours=1)), now)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["moneybird"])
def test_a_dry_run_also_shows_the_queued_notes_it_would_deliver(one: SimpleNamespace, platform: str) -> None:
    invoice = next(i for i, _, _ in one.store.iter_open_invoices() if i.is_collectable)
    one.store.outbox_queue(invoice.connection, "note", "handoff:c-9:x", {
        "invoice": invoice.platform_id, "step": "handoff", "text": "Handed to the agency (case c-9)"})

    lines = send(one, dry_run=True)

    [line] = [line for line in lines if line["key"] == "handoff:c-9:x"]
    assert line["dry_run"] and "queued note" in line["reason"] and line["body"] == "Handed to the agency (case c-9)"
    assert one.store.outbox_by_key("handoff:c-9:x").status == "pending"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("one", [CALLS], indirect=True)
@pytest.mark.parametrize("platform", ["moneybird", "xero", "exact"])
def test_a_task_closes_itself_once_all_its_invoices_are_paid_and_not_before(one: SimpleNamespace, platform: str) -> None:
    send(one)
    [pair] = [t for t in open_tasks(one.store) if len(t.invoices) == 2]
    first, second = pair.invoices

    one.sim.record_payment(first)
    sync_all(one.config, one.store, one.tokens, connect=one.connect)
    send(one)
    assert pair.id in {t.id for t in open_tasks(one.store)}  # one invoice is still owed: the call is still to make

    one.sim.record_payment(second)
    sync_all(one.config, one.store, one.tokens, connect=one.connect)
    send(one)

    assert pair.id not in {t.id for t in open_tasks(one.store)}
    row = one.store.outbox_row(pair.id)
    labels = [one.store.invoice(row.connection, i).label for i in pair.invoices]
    # Exact drops a settled invoice from its receivables without saying whether it was paid
    paid = "paid or closed on the platform" if platform == "exact" else "paid on the platform"
    reason = f"invoice {labels[0]} {paid}; invoice {labels[1]} {paid}; closed automatically"
    assert row.status == "done" and row.receipt["closed_automatically"] == reason
    assert row.receipt["reason"].startswith("call ")  # what the task was stays in its receipt

    for invoice in pair.invoices:
        [note] = [e for e in one.store.events(row.connection, invoice)
                  if e.kind is EventKind.NOTE and e.data.get("task") == pair.id]
        assert reason in note.data["text"] and note.on == one.world.today

    # a payment reversed: the invoice is open again on the platform, so the call that was never made is work again
    paid_one = one.store.invoice(row.connection, first)
    reversed_ = paid_one.model_copy(update={"is_open": True, "status": "open", "amount_paid": Decimal(0),
                                            "outstanding": paid_one.total, "payments": (), "version": "reversed"})
    one.store.write_sync_page(row.connection, SyncPage(invoices=(reversed_,)))
    send(one)
    assert pair.id in {t.id for t in open_tasks(one.store)}
    again = one.store.outbox_row(pair.id)
    assert again.status == "task" and again.receipt["closed_before"] == reason
    assert again.receipt["reopened_on"] == one.world.today.isoformat()
    assert any(e.data.get("source") == "reopened automatically" for e in one.store.events(row.connection, first))


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("one", [LETTERS], indirect=True)
@pytest.mark.parametrize("platform", ["xero"])
def test_a_task_closes_itself_when_its_invoice_is_handed_off_and_a_posted_letter_is_left_alone(
    one: SimpleNamespace, platform: str
) -> None:
    from connector.delivery import close_settled
    from connector.models import Event

    send(one)
    posted, handed = [t for t in open_tasks(one.store) if t.kind == "letter" and len(t.invoices) == 1][:2]
    complete_task(one.store, posted.id, on=one.world.today, sent_on=one.world.today)
    for task in (posted, handed):
        one.store.append_event(task.connection, task.invoices[0],
                               Event(kind=EventKind.HANDOFF, on=one.world.today, step="handoff"))
    posted_row = one.store.outbox_row(posted.id)

    [(closed, reason)] = close_settled(one.store, on=one.world.today)

    label = one.store.invoice(handed.connection, handed.invoices[0]).label
    assert closed.id == handed.id
    assert reason == f"invoice {label} handed to the collection agency on {one.world.today}; closed automatically"
    assert one.store.outbox_row(posted.id) == posted_row  # posted with `task done --sent-on`: not touched
    with pytest.raises(Exception, match="already closed: .*handed to the collection agency"):
        complete_task(one.store, handed.id, on=one.world.today)


@pytest.mark.parametrize("platform", ["moneybird"])
def test_a_row_another_run_claims_first_is_left_to_it_and_never_mailed_twice(
    one: SimpleNamespace, platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs read the same pending row; the one that claims it second leaves it to the other (which is alive),
    and so does a run after it: the claim is a compare-and-set on the row, not a check before the send."""
    original = Store.outbox_take
    raced: list[int] = []

    def other_run_first(self: Store, entry: Any, claim: dict[str, Any]) -> Any:
        if not raced and entry.kind == "reminder":
            raced.append(entry.id)
            other = {**claim, "claimant": {"host": "elsewhere", "pid": 1, "run": "other"}}
            assert original(self, entry, other) is not None  # the other run got there first
        return original(self, entry, claim)

    monkeypatch.setattr(Store, "outbox_take", other_run_first)
    lines = send(one)
    monkeypatch.setattr(Store, "outbox_take", original)

    [row] = [r for r in one.store.outbox_rows() if r.id == raced[0]]
    [line] = [line for line in lines if line["key"] == row.idempotency_key]
    assert line["status"] == "skipped" and "taken by another run" in line["reason"]
    assert row.status == "sending" and row.receipt["claimant"]["run"] == "other"  # left as the other run holds it
    invoices = tuple(row.payload["invoices"])
    assert not [ids for ids in mail_counts(one) if set(ids) & set(invoices)]
    assert [line for line in lines if line["status"] == "sent"]  # the rest went out

    send(one)  # the other run is still within its lease: a later run leaves the row alone too

    assert [r.status for r in one.store.outbox_rows() if r.id == row.id] == ["sending"]
    assert not [ids for ids in mail_counts(one) if set(ids) & set(invoices)]
