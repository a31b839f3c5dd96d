"""Delivery: the day's actions through the outbox to the platforms, exactly once whatever crashes.

For one connection, in this order:
1. **Reconcile** rows a crashed run left in flight (`sending`, claimed by a process that is gone) against the
   platform, first and always: a row whose mail is known to have gone out only gets its recording; a row that may
   or may not have reached the platform is looked up there (our note carrying the key, the platform's trace
   against the one read before the claim — Moneybird's reminder count, Exact's documents of the invoice — the
   Idempotency-Key replay) and is sent again only where the platform shows no trace and can say so.
   Where it cannot (a channel that leaves no readable trace), the row becomes a task to check by hand: never a
   second mail, never a silent loss.
   Then open tasks whose invoices have all closed since (paid, credited, handed off) close themselves.
2. **Queue** each action as an outbox row under its deterministic key, committed before any platform call.
3. **Re-check** the invoices of the queued reminders with one batched read: paid since the last sync → skipped.
4. **Work** every pending row of the connection, whatever its kind (reminders, letters, call tasks, handoff
   notes, confirmations): claim the row (compare-and-swap: two runs never work one row), call the platform,
   commit how far it got after the mail, record it, finish the row with its invoice events in one transaction.

A spent day budget or an expired authorisation stops the connection: its remaining rows stay pending, are
reported, and the next run continues with them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from connector.delivery import claims
from connector.delivery.confirmations import confirmation_payload
from connector.delivery.outcome import LIMITED_KINDS, Outcome, Status, Summary, fields
from connector.delivery.letters import Letter, render_pdf, save_letter, sender_lines, signature_block
from connector.delivery.smtp import MailRefused, OutgoingMail, SmtpMailer
from connector.delivery.tasks import close_settled, reopen_unsettled
from connector.escalation.debtor import dossier
from connector.escalation.policy import STEP_ORDER
from connector.models import Debtor, Event, EventKind, Invoice
from connector.progress import NoProgress, Progress
from connector.store import OutboxEntry, Store
from providers.base import FreshInvoice, Provider, Receipt, ReminderRequest
from providers.errors import AuthorizationExpired, DunningError, PlatformError, RateLimited, ReminderRefused

log = logging.getLogger(__name__)

MAILED = "mailed"
CLAIMED = "claimed"


@dataclass(frozen=True)
class Sender:
    """Who mails besides the platforms, and what goes on letters."""

    creditor: str
    creditor_lines: tuple[str, ...] = ()
    letters_dir: Path = Path("letters")
    mailer: SmtpMailer | None = None


class _Stop(Exception):
    """Stops one connection's run (day budget, authorisation); rows stay pending."""


def _receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {"platform_reference": receipt.platform_reference, "sent_at": receipt.sent_at.isoformat(),
            "recipients": list(receipt.recipients), "detail": receipt.detail}


def _receipt_from(data: Mapping[str, Any]) -> Receipt:
    return Receipt(platform_reference=data.get("platform_reference"),
                   sent_at=datetime.fromisoformat(data["sent_at"]), recipients=tuple(data.get("recipients") or ()),
                   detail=str(data.get("detail") or ""))


class ConnectionRun:
    """Delivery for one connection on one day."""

    def __init__(self, store: Store, provider: Provider, connection: str, *, as_of: date, sender: Sender,
                 emit: Callable[[Outcome], None], progress: Progress | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.provider = provider
        self.connection = connection
        self.as_of = as_of
        self.sender = sender
        self._emit = emit
        self.progress = progress or NoProgress()
        self.now = now
        self.summary = Summary(connection)
        self.fresh: dict[str, FreshInvoice] = {}
        self._mailed_here: set[str] = set()
        """Invoices the platform mailed in this run: the re-check's trace of them is out of date."""
        self._done = 0

    # -- the run --------------------------------------------------------------------------------------------

    def run(self, queue: Callable[[ConnectionRun], None], *, step: str | None = None,
            limit: int | None = None) -> Summary:
        """Reconcile, queue (the caller's `queue` adds the day's actions), re-check, work every pending row."""
        calls_before = self.provider.calls
        self.progress.started(self.connection, "send")
        self.provider.mailing_refused = self.store.outbox_fact(self.connection, "mailing_refused")
        self.provider.trace_lost = self.store.outbox_fact(self.connection, "trace_lost")
        try:
            self.reconcile()
            for task, reason in reopen_unsettled(self.store, on=self.as_of, connection=self.connection):
                log.info("%s: task %d (%s) %s", self.connection, task.id, task.kind, reason)
            for task, reason in close_settled(self.store, on=self.as_of, connection=self.connection):
                log.info("%s: task %d (%s) closed: %s", self.connection, task.id, task.kind, reason)
            queue(self)
            rows = [row for row in self.store.outbox_rows(connection=self.connection, status=["pending"])
                    if step is None or row.payload.get("step") in (step, None)]
            if limit is not None:
                countable = [row for row in rows if row.kind in LIMITED_KINDS]
                self.summary.counted_for_limit = min(limit, len(countable))
                limited = countable[limit:]
                for row in limited:
                    self.emit(Outcome("skipped", "--limit reached; left pending for the next run",
                                      fields(row), key=row.idempotency_key))
                left = {row.id for row in limited}
                rows = [row for row in rows if row.id not in left]
            self.recheck(rows)
            for position, row in enumerate(rows):
                try:
                    self.work(row)
                except _Stop as stop:
                    self.summary.error = str(stop)
                    for rest in rows[position:]:
                        self.summary.left_pending += 1
                        self.emit(Outcome("skipped", f"not sent today: {stop}; the next run continues",
                                          fields(rest), key=rest.idempotency_key))
                    break
        except _Stop as stop:
            self.summary.error = str(stop)
        finally:
            self.summary.api_calls = self.provider.calls - calls_before
            self.progress.finished(self.connection, "send", ok=not self.summary.failing,
                                   detail=self.summary.tasks_note())
        return self.summary

    def emit(self, outcome: Outcome) -> None:
        self.summary.count(outcome)
        self._done += 1
        self.progress.advanced(self.connection, done=self._done)
        self._emit(outcome)

    # -- queueing -------------------------------------------------------------------------------------------

    def queue(self, kind: str, key: str, payload: Mapping[str, Any]) -> OutboxEntry | None:
        """Queue one action's row; reports (and returns None for) a row already done, open or being worked."""
        entry, queued = self.store.outbox_queue(self.connection, kind, key, payload)
        if queued or entry.status == "pending":
            return entry
        reason = {
            "sent": "already sent (the outbox holds its receipt)",
            "task": f"already a task (open: dunning task done {entry.id})",
            "done": "already done (task closed)",
            "sending": "being sent by another run, or left by a crashed run (reconciled by the next run)",
        }.get(entry.status, f"already {entry.status}")
        self.emit(Outcome("skipped", reason, fields(entry), key=key, task=entry.id if entry.status == "task" else None))
        return None

    # -- re-check -------------------------------------------------------------------------------------------

    def recheck(self, rows: Sequence[OutboxEntry]) -> None:
        """One batched read of every invoice a pending reminder is about (paid since the sync → not reminded), and
        of those a confirmation may go out on by the platform's mailing (for the trace a crash is settled by)."""
        kinds = {"reminder", "confirmation"} if self.provider.confirms_by_mail else {"reminder"}
        wanted: dict[str, Invoice] = {}
        for row in rows:
            if row.kind in kinds:
                for invoice in self._invoices(row):
                    wanted[invoice.platform_id] = invoice
        if not wanted:
            return
        try:
            self.fresh = dict(self.provider.recheck(list(wanted.values())))
        except RateLimited as exc:
            raise _Stop(_budget(exc)) from None
        except AuthorizationExpired as exc:
            self._reauth(exc)
        except DunningError as exc:  # the platform would not answer the check: the last sync's state stands
            self.summary.warnings.append(f"the re-check before sending failed ({exc.message}); "
                                         "sent on the last sync's state")
            log.warning("%s: %s", self.connection, self.summary.warnings[-1])

    # -- one row --------------------------------------------------------------------------------------------

    def work(self, entry: OutboxEntry) -> None:
        handler = {"reminder": self._reminder, "task": self._call_task, "letter": self._letter,
                   "note": self._note, "handoff_note": self._note, "confirmation": self._confirmation}.get(entry.kind)
        if handler is None:
            self.emit(Outcome("skipped", f"unknown outbox kind {entry.kind!r}; left as it is", fields(entry),
                              key=entry.idempotency_key))
            return
        taken = self.store.outbox_take(entry, self._claim(entry))
        if taken is None:
            self.emit(Outcome("skipped", "taken by another run at the same time", fields(entry),
                              key=entry.idempotency_key))
            return
        self._guarded(taken, lambda: handler(taken))

    def _guarded(self, entry: OutboxEntry, act: Callable[[], None]) -> None:
        try:
            act()
        except RateLimited as exc:
            self._release(entry, exc)
            raise _Stop(_budget(exc)) from None
        except AuthorizationExpired as exc:
            self._release(entry, exc)
            self._reauth(exc)
        except (PlatformError, MailRefused) as exc:
            if self._went_out(entry) or getattr(exc, "retryable", False):
                self._in_flight(entry, exc)
                return
            self._finish(entry, "failed", error=exc.message, outcome="failed")
        except DunningError as exc:
            if self._went_out(entry):
                self._in_flight(entry, exc)
                return
            self._finish(entry, "failed", error=exc.message, outcome="failed")

    def _went_out(self, entry: OutboxEntry) -> bool:
        """Whether the row's mail went out, as the store has it: the handler committed that (`_mailed`) on its own
        copy of the row, and only the store's copy tells a failure after the mail from one before it."""
        current = self.store.outbox_row(entry.id) or entry
        return (current.receipt or {}).get("phase") == MAILED

    def _in_flight(self, entry: OutboxEntry, exc: DunningError) -> None:
        """Left as `sending`: whether it went out is unknown (an outage mid-call), or it went out and only its
        recording failed; the next run settles it against the platform (`reconcile`), never mailing twice."""
        self.emit(Outcome("failed", f"{exc.message}; left in flight, the next run checks the platform before "
                          "anything is sent again", fields(entry), key=entry.idempotency_key))

    def _claim(self, entry: OutboxEntry) -> dict[str, Any]:
        claim: dict[str, Any] = {"claimant": claims.claimant(), "claimed_at": self.now().isoformat(), "phase": CLAIMED,
                                 "on": self.as_of.isoformat()}
        traces = {i: self.fresh[i].trace for i in entry.payload.get("invoices", ())
                  if i in self.fresh and self.fresh[i].trace is not None and i not in self._mailed_here}
        if traces:
            claim["trace_before"] = traces
        return claim

    def _release(self, entry: OutboxEntry, exc: DunningError) -> None:
        """Back to pending: the platform refused the call before doing anything (rate limit, authorisation); but a
        mail that went out before the refusal (of its recording) stays in flight for the next run to record."""
        if self._went_out(entry):
            self._in_flight(entry, exc)
        else:
            self.store.outbox_finish(entry, "pending")

    def _reauth(self, exc: AuthorizationExpired) -> None:
        message = (f"{exc.message}; reconnect with: dunning setup --reconnect {self.connection}")
        self.store.mark_needs_reauth(self.connection, message)
        raise _Stop(message) from None

    def _finish(self, entry: OutboxEntry, status: str, *, outcome: Status, receipt: Mapping[str, Any] | None = None,
                error: str | None = None, events: Sequence[tuple[str, Event]] = (), reason: str | None = None,
                recipients: Sequence[str] = ()) -> None:
        extra = {"task_kind": receipt.get("kind")} if status == "task" and receipt else {}
        if not self.store.outbox_finish(entry, status, receipt=receipt, error=error, events=events):
            self.emit(Outcome("skipped", "finished by another run meanwhile", fields(entry),
                              key=entry.idempotency_key))
            return
        self.emit(Outcome(outcome, reason or error or status, fields(entry), recipients=tuple(recipients),
                          key=entry.idempotency_key, task=entry.id if status == "task" else None, extra=extra))

    # -- reading what a row is about ------------------------------------------------------------------------

    def _debtor(self, entry: OutboxEntry) -> Debtor | None:
        # Read from the store by id; goes once `Action` carries the debtor and invoices (then the payload does).
        return self.store.debtor(self.connection, str(entry.payload.get("debtor")))

    def _invoices(self, entry: OutboxEntry) -> list[Invoice]:
        found = [self.store.invoice(self.connection, str(i)) for i in entry.payload.get("invoices", ())]
        return [invoice for invoice in found if invoice is not None]

    def _current(self, invoices: Sequence[Invoice]) -> list[Invoice]:
        """The invoices as the re-check saw them, still collectable."""
        current = []
        for invoice in invoices:
            fresh = self.fresh.get(invoice.platform_id)
            if fresh is not None:
                if fresh.invoice is None:
                    continue
                invoice = fresh.invoice
            if invoice.is_collectable:
                current.append(invoice)
        return current

    def _request(self, entry: OutboxEntry, debtor: Debtor, invoices: Sequence[Invoice]) -> ReminderRequest:
        payload = entry.payload
        return ReminderRequest(step=str(payload.get("step") or entry.kind), debtor=debtor, invoices=tuple(invoices),
                               subject=payload.get("subject"), message=str(payload.get("body") or ""),
                               idempotency_key=entry.idempotency_key)

    # -- reminders ------------------------------------------------------------------------------------------

    def _reminder(self, entry: OutboxEntry) -> None:
        payload = entry.payload
        if payload.get("render_error"):
            self._finish(entry, "failed", outcome="failed", error=str(payload["render_error"]))
            return
        debtor = self._debtor(entry)
        stored = self._invoices(entry)
        if debtor is None or not stored:
            self._finish(entry, "failed", outcome="failed",
                         error=f"invoice {', '.join(_numbers(entry))}: no longer in the store; run dunning sync")
            return
        invoices = self._current(stored)
        if not invoices:
            self._finish(entry, "skipped", outcome="skipped",
                         error=f"invoice {', '.join(_numbers(entry))}: paid or closed on the platform since the last "
                               "sync; not reminded")
            return
        request = self._request(entry, debtor, invoices)
        if self.provider.mailing_refused or not self.provider.capabilities.native_reminder:
            self._fallback(entry, request, self.provider.mailing_refused or "the platform cannot mail reminders")
            return
        try:
            mailed = self._platform_mail(request)
        except ReminderRefused as exc:
            if self.provider.mailing_refused:  # the platform refused the mechanism itself: remember, go around it
                self.store.outbox_set_fact(self.connection, "mailing_refused", self.provider.mailing_refused)
                self._fallback(entry, request, self.provider.mailing_refused)
                return
            if exc.cannot_carry:  # not bad data: the platform's mailing cannot carry this step for this invoice
                self._fallback(entry, request, exc.reason)
                return
            self._refused(entry, request, exc.reason)
            return
        self._mailed(entry, request, mailed)

    def _platform_mail(self, request: ReminderRequest) -> Receipt:
        """The platform's own mailing; what it showed about its trace is remembered for the connection."""
        known = self.provider.trace_lost
        mailed = self.provider.mail_reminder(request)
        self._mailed_here.update(i.platform_id for i in request.invoices)
        if self.provider.trace_lost and self.provider.trace_lost != known:
            self.store.outbox_set_fact(self.connection, "trace_lost", self.provider.trace_lost)
            log.warning("%s: %s; a send a crash interrupts is checked by hand from now on", self.connection,
                        self.provider.trace_lost)
        return mailed

    def _mailed(self, entry: OutboxEntry, request: ReminderRequest, mailed: Receipt, *, channel: str = "platform_mail",
                note: Callable[[], Receipt] | None = None) -> None:
        """The mail went out: commit that first, then its recording, then finish the row with the events."""
        receipt = {**(entry.receipt or {}), "phase": MAILED, "channel": channel, "mail": _receipt_json(mailed)}
        self.store.outbox_progress(entry, receipt)
        entry = _with_receipt(entry, receipt)
        recorded = self._record(request, mailed, note)
        self._sent(entry, request, mailed, recorded, channel)

    def _record(self, request: ReminderRequest, mailed: Receipt, note: Callable[[], Receipt] | None) -> Receipt:
        found = next((r for i in request.invoices[:1] if (r := self.provider.find_note(i, request.idempotency_key))),
                     None) if note is not None else None
        if found is not None:
            return found
        return note() if note is not None else self.provider.record_reminder(request, mailed)

    def _sent(self, entry: OutboxEntry, request: ReminderRequest, mailed: Receipt, recorded: Receipt,
              channel: str) -> None:
        if entry.kind == "confirmation":
            self._confirmed(entry, request, mailed, recorded, channel)
            return
        if not mailed.recipients and "print and post" in mailed.detail:
            # the platform recorded it, but the debtor takes paper: a letter for a person to post, not "sent"
            self._task(entry, request, "letter", f"{mailed.detail}; then: dunning task done {entry.id} --sent-on "
                       "YYYY-MM-DD", {"record": _receipt_json(recorded)}, record_step=False, noted=True)
            return
        on = date.fromisoformat(str((entry.receipt or {}).get("on") or self.as_of.isoformat()))
        recipients = mailed.recipients
        data = {"key": entry.idempotency_key, "channel": channel, "recipients": list(recipients),
                "detail": recorded.detail or mailed.detail, "platform_reference": recorded.platform_reference
                or mailed.platform_reference}
        events = [(i.platform_id, Event(kind=EventKind.REMINDER_SENT, on=on, step=request.step, data=data))
                  for i in request.invoices]
        who = ", ".join(recipients) if recipients else "recipients not reported by the platform"
        self._finish(entry, "sent", outcome="sent", events=events, recipients=recipients,
                     receipt={"phase": "done", "channel": channel, "on": on.isoformat(), "mail": _receipt_json(mailed),
                              "record": _receipt_json(recorded)},
                     reason=f"{request.step} sent via {channel.replace('_', ' ')} to {who}")

    def _refused(self, entry: OutboxEntry, request: ReminderRequest, reason: str) -> None:
        """The platform will not send this one (bad data, status): a visible failure or task naming the invoice."""
        numbers = ", ".join(i.label for i in request.invoices)
        if "daily" in reason.lower():  # the platform's daily e-mail limit: tomorrow it can go
            self._finish(entry, "failed", outcome="failed",
                         error=f"invoice {numbers}: {reason}; queued again by the next run")
            return
        self._task(entry, request, "refused", f"invoice {numbers}: {reason}")

    def _fallback(self, entry: OutboxEntry, request: ReminderRequest, why: str) -> None:
        """The platform cannot carry this step: our own mail server where configured, else a task."""
        mailer = self.sender.mailer
        if mailer is None or not request.debtor.emails:
            what = "pre-due note" if request.step == "pre_due" else f"{request.step.replace('_', ' ')} reminder"
            todo = (f"send this {what} yourself or set up [mail] to have it e-mailed from your own mail server"
                    if mailer is None else f"the debtor has no e-mail address, so send this {what} by hand")
            self._task(entry, request, "refused", f"{why}; {todo}")
            return
        receipt = {**(entry.receipt or {}), "channel": "smtp"}
        self.store.outbox_progress(entry, receipt)  # a crash from here on leaves no readable trace: checked by hand
        entry = _with_receipt(entry, receipt)
        attachments = []
        for invoice in request.invoices[:1]:
            try:
                attachments.append(self.provider.fetch_pdf(invoice))
            except (RateLimited, AuthorizationExpired):
                raise
            except DunningError as exc:
                log.warning("%s: invoice %s sent without its PDF: %s", self.connection, invoice.label, exc)
        mail = OutgoingMail(to=request.debtor.emails, subject=request.subject or f"Invoice {request.invoices[0].label}",
                            body=request.message, message_id=f"<{entry.idempotency_key}@dunning-connector>",
                            attachment=attachments[0] if attachments else None,
                            attachment_name=f"invoice-{request.invoices[0].label}.pdf")
        accepted = mailer.send(mail)
        mailed = Receipt(sent_at=self.now(), recipients=accepted,
                         detail=f"e-mailed from {mailer.config.sender} through {mailer.config.host}"
                                + ("" if attachments else " (without the invoice PDF)"))
        invoice = request.invoices[0]
        text = (f"Dunning Connector: {request.step} e-mailed to {', '.join(accepted)} from our own mail server "
                f"(invoice {', '.join(i.label for i in request.invoices)})")
        self._mailed(entry, request, mailed, channel="smtp",
                     note=lambda: self.provider.add_note(invoice, text, idempotency_key=entry.idempotency_key))

    def _task(self, entry: OutboxEntry, request: ReminderRequest, kind: str, reason: str,
              extra: Mapping[str, Any] | None = None, *, record_step: bool = True, noted: bool = False) -> None:
        """A task for the bookkeeper, noted on the platform (so whoever looks there sees it), in the history."""
        invoice = request.invoices[0]
        note = None
        if entry.kind != "task" and not noted:  # a call task needs nothing on the platform
            existing = self.provider.find_note(invoice, entry.idempotency_key)
            note = existing or self.provider.add_note(
                invoice, f"Dunning Connector: {request.step} needs a person: {reason}"[:200],
                idempotency_key=entry.idempotency_key)
        data = {"task": entry.id, "kind": kind, "reason": reason, "step": request.step, **(extra or {})}
        events = [(i.platform_id, Event(kind=EventKind.TASK_CREATED, on=self.as_of,
                                        step=request.step if record_step and request.step in STEP_ORDER else None,
                                        data=data))
                  for i in request.invoices]
        receipt = {"kind": kind, "reason": reason, "step": request.step, "on": self.as_of.isoformat(),
                   "phone": request.debtor.phone, "emails": list(request.debtor.emails),
                   "dossier": list(self._dossier(request)), **(extra or {})}
        if note is not None:
            receipt["note"] = _receipt_json(note)
        self._finish(entry, "task", outcome="task", receipt=receipt, events=events, reason=reason)

    def _dossier(self, request: ReminderRequest) -> tuple[str, ...]:
        """What a person needs for the task: the debtor's open invoices here, amounts, agreements and history."""
        rows = [(invoice, request.debtor, self.store.events(self.connection, invoice.platform_id))
                for invoice in request.invoices]
        return dossier(rows, self.as_of)

    # -- call tasks, letters, notes, confirmations ----------------------------------------------------------

    def _call_task(self, entry: OutboxEntry) -> None:
        debtor, invoices = self._debtor(entry), self._invoices(entry)
        if debtor is None or not invoices:
            self._finish(entry, "failed", outcome="failed", error="the debtor or invoices left the store")
            return
        request = self._request(entry, debtor, invoices)
        dossier = list(entry.payload.get("dossier") or ())
        phone = debtor.phone or "no phone number on file"
        self._task(entry, request, "call", f"call {debtor.name} ({phone})",
                   {"dossier": dossier, "script": entry.payload.get("body")})

    def _letter(self, entry: OutboxEntry) -> None:
        payload = entry.payload
        if payload.get("render_error"):
            self._finish(entry, "failed", outcome="failed", error=str(payload["render_error"]))
            return
        debtor, invoices = self._debtor(entry), self._invoices(entry)
        if debtor is None or not invoices:
            self._finish(entry, "failed", outcome="failed", error="the debtor or invoices left the store")
            return
        request = self._request(entry, debtor, invoices)
        path = self._write_letter(entry, debtor, payload)
        self._task(entry, request, "letter",
                   f"print and post the {request.step.replace('_', ' ')} letter {path.name} to {debtor.name}, then: "
                   f"dunning task done {entry.id} --sent-on YYYY-MM-DD",
                   {"letter": str(path)}, record_step=False)

    def _write_letter(self, entry: OutboxEntry, debtor: Debtor, payload: Mapping[str, Any]) -> Path:
        lines = tuple((str(a), str(b)) for a, b in payload.get("lines") or ())
        signature = signature_block(self.sender.creditor, debtor.name) if payload.get("signature") else ()
        letter = Letter(sender=sender_lines(self.sender.creditor, self.sender.creditor_lines), debtor=debtor,
                        on=self.as_of, subject=str(payload.get("subject") or ""), body=str(payload.get("body") or ""),
                        lines=lines, signature=signature, reference=f"ref. {entry.idempotency_key}")
        return save_letter(self.sender.letters_dir / self.connection, entry.idempotency_key, render_pdf(letter))

    def _note(self, entry: OutboxEntry) -> None:
        invoice_id = str(entry.payload.get("invoice") or "")
        invoice = self.store.invoice(self.connection, invoice_id) or _bare_invoice(self.connection, entry.payload)
        found = self.provider.find_note(invoice, entry.idempotency_key)
        receipt = found or self.provider.add_note(invoice, str(entry.payload.get("text") or ""),
                                                  idempotency_key=entry.idempotency_key)
        self._finish(entry, "sent", outcome="sent", receipt={"record": _receipt_json(receipt)},
                     reason=f"note on invoice {invoice.label}" + (" (found on the platform)" if found else ""))

    def _confirmation(self, entry: OutboxEntry) -> None:
        """An agreement confirmed in writing.

        A promise goes by the platform's own mailing where it carries our text without counting as a reminder
        (`Provider.confirms_by_mail`: Exact's re-sent invoice, recorded as a note, settled after a crash like a
        reminder), else by our mail server, else as a letter. An arrangement needs the debtor's signature: always
        a letter (instalments, down payment, sanction, signature block), e-mailed as its PDF by our mail server
        where configured, with a task to file the signed copy when it comes back; else a task to post it."""
        debtor, invoices = self._debtor(entry), self._invoices(entry)
        if debtor is None or not invoices:
            self._finish(entry, "failed", outcome="failed", error="the debtor or invoices left the store")
            return
        try:
            entry = replace(entry, payload=confirmation_payload(entry.payload, debtor, invoices[0],
                                                                creditor=self.sender.creditor))
        except ValueError as exc:
            self._finish(entry, "failed", outcome="failed", error=f"invoice {invoices[0].label}: {exc}")
            return
        request = self._request(entry, debtor, invoices)
        what = str(entry.payload.get("what") or "agreement")
        if what != "arrangement" and self._platform_confirms(request) and self._confirm_on_platform(entry, request):
            return
        letter = self._write_letter(entry, debtor, entry.payload) if what == "arrangement" else None
        mailer = self.sender.mailer
        if mailer is not None and debtor.emails:
            receipt = {**(entry.receipt or {}), "channel": "smtp", **({"letter": str(letter)} if letter else {})}
            self.store.outbox_progress(entry, receipt)  # a crash from here on leaves no readable trace
            entry = _with_receipt(entry, receipt)
            accepted = mailer.send(OutgoingMail(
                to=debtor.emails, subject=request.subject or what, body=request.message,
                message_id=f"<{entry.idempotency_key}@dunning-connector>",
                attachment=letter.read_bytes() if letter else None,
                attachment_name=letter.name if letter else "confirmation.pdf"))
            mailed = Receipt(sent_at=self.now(), recipients=accepted, detail="confirmation e-mailed from our server"
                             + (f" with the letter to sign ({letter.name})" if letter else ""))
            text = (f"Dunning Connector: {what} confirmed by e-mail to {', '.join(accepted)}"
                    + (" (the letter to sign attached)" if letter else ""))
            self._mailed(entry, request, mailed, channel="smtp",
                         note=lambda: self.provider.add_note(invoices[0], text, idempotency_key=entry.idempotency_key))
            return
        path = letter or self._write_letter(entry, debtor, entry.payload)
        self._task(entry, request, "letter",
                   f"print the {what} confirmation {path.name} for {debtor.name} to sign and send, then: "
                   f"dunning task done {entry.id} --sent-on YYYY-MM-DD", {"letter": str(path)}, record_step=False)

    def _platform_confirms(self, request: ReminderRequest) -> bool:
        return (self.provider.confirms_by_mail and not self.provider.mailing_refused
                and bool(request.debtor.emails) and len(request.invoices) == 1)

    def _confirm_on_platform(self, entry: OutboxEntry, request: ReminderRequest) -> bool:
        """The confirmation by the platform's mailing; False when the platform will not carry this one."""
        receipt = {**(entry.receipt or {}), "channel": "platform_mail"}
        self.store.outbox_progress(entry, receipt)  # a crash from here on is settled by the platform's trace
        entry = _with_receipt(entry, receipt)
        try:
            mailed = self._platform_mail(request)
        except ReminderRefused as exc:
            if self.provider.mailing_refused:
                self.store.outbox_set_fact(self.connection, "mailing_refused", self.provider.mailing_refused)
            log.info("%s: %s; confirmed by our mail server or a letter instead", self.connection, exc.reason)
            return False
        self._mailed(entry, request, mailed)
        return True

    def _confirmed(self, entry: OutboxEntry, request: ReminderRequest, mailed: Receipt, recorded: Receipt,
                   channel: str) -> None:
        """A confirmation went out and is recorded: sent, or (an arrangement's letter e-mailed to sign) a task to
        file the signed copy when it comes back."""
        what = str(entry.payload.get("what") or "agreement")
        who = ", ".join(mailed.recipients) or "recipients not reported by the platform"
        data = {"text": f"{what} confirmed in writing", "key": entry.idempotency_key, "channel": channel,
                "recipients": list(mailed.recipients)}
        events = [(i.platform_id, Event(kind=EventKind.NOTE, on=self.as_of, data=data)) for i in request.invoices]
        receipt: dict[str, Any] = {"phase": "done", "channel": channel, "on": self.as_of.isoformat(),
                                   "mail": _receipt_json(mailed), "record": _receipt_json(recorded)}
        letter = (entry.receipt or {}).get("letter")
        if not letter:
            self._finish(entry, "sent", outcome="sent", receipt=receipt, events=events, recipients=mailed.recipients,
                         reason=f"{what} confirmation sent via {channel.replace('_', ' ')} to {who}")
            return
        reason = (f"the {what} confirmation {Path(letter).name} was e-mailed to {who} to sign: file the signed copy "
                  f"when it comes back, then: dunning task done {entry.id}")
        # a letter task (cli.md's task kinds): the letter went by e-mail and waits for its signed copy
        receipt |= {"kind": "letter", "reason": reason, "step": request.step, "letter": letter,
                    "phone": request.debtor.phone, "emails": list(request.debtor.emails),
                    "dossier": list(self._dossier(request))}
        self._finish(entry, "task", outcome="task", receipt=receipt, events=events, recipients=mailed.recipients,
                     reason=reason)

    # -- reconciliation -------------------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Rows left in flight by a run that is gone: settled against the platform before anything new goes out."""
        now = self.now()
        for entry in self.store.outbox_rows(connection=self.connection, status=["sending"]):
            if not claims.abandoned(entry, now):
                continue
            first = (entry.receipt or {}).get("first_claimed_at") or (entry.receipt or {}).get("claimed_at")
            claim = {"claimant": claims.claimant(), "claimed_at": now.isoformat(), "first_claimed_at": first}
            taken = self.store.outbox_take(entry, claim)
            if taken is None:
                continue
            self._guarded(taken, lambda t=taken: self._settle(t))  # type: ignore[misc]

    def _settle(self, entry: OutboxEntry) -> None:
        receipt = entry.receipt or {}
        channel = receipt.get("channel") or ("platform_mail" if entry.kind == "reminder" else None)
        if entry.kind not in ("reminder", "confirmation") or channel is None:
            # letters, call tasks and notes look for their own note first, and a confirmation that had not begun
            # to mail only wrote its letter: safe to redo
            self.work_again(entry)
            return
        debtor, stored = self._debtor(entry), self._invoices(entry)
        if debtor is None or not stored:
            self._finish(entry, "failed", outcome="failed",
                         error="left in flight by a crashed run, and its invoices left the store: check by hand")
            return
        if entry.kind == "confirmation":
            try:  # its subject and text, for the note that records it
                entry = replace(entry, payload=confirmation_payload(entry.payload, debtor, stored[0],
                                                                    creditor=self.sender.creditor))
            except ValueError:
                pass  # recorded without them
        request = self._request(entry, debtor, stored)
        if receipt.get("phase") == MAILED:  # the mail went out; only its recording may be missing
            mailed = _receipt_from(receipt["mail"])
            invoice = request.invoices[0]
            note = None
            if channel == "smtp":
                text = f"Dunning Connector: {request.step} e-mailed from our own mail server"
                note = lambda: self.provider.add_note(invoice, text, idempotency_key=entry.idempotency_key)  # noqa: E731
            self._sent(entry, request, mailed, self._record(request, mailed, note), channel)
            return
        found = next((r for i in request.invoices if (r := self.provider.find_note(i, entry.idempotency_key))), None)
        if found is not None:
            mailed = Receipt(sent_at=found.sent_at, recipients=(), detail=f"found on the platform: {found.detail}")
            self._sent(entry, request, mailed, found, channel)
            return
        if channel == "smtp":
            self._task(entry, request, "refused",
                       f"a crash interrupted sending {request.step} by our mail server and nothing on the platform "
                       f"shows whether it went out (message id <{entry.idempotency_key}@dunning-connector>): check "
                       "the sent mail, then close this task", record_step=True)
            return
        self.fresh.update(self.provider.recheck(list(request.invoices)))
        went_out = self.provider.reminder_trace(request, receipt.get("trace_before") or {}, self.fresh)
        if went_out:
            mailed = Receipt(sent_at=self.now(), recipients=(),
                             detail=f"the platform shows the {request.step} went out (found after a crash)")
            self._mailed(entry, request, mailed)
            return
        if went_out is None and not self._within_replay(receipt):
            self._task(entry, request, "refused",
                       f"a crash interrupted sending {request.step} and the platform cannot show whether it went out: "
                       "check the invoice's mail on the platform, then close this task", record_step=True)
            return
        # no trace, or a resend under the same key the platform still answers from memory
        if entry.kind == "reminder":
            self._reminder(entry)
        else:
            self._confirmation(entry)

    def _within_replay(self, receipt: Mapping[str, Any]) -> bool:
        """Whether a resend under the same key is still answered without a second mail (the platform's window)."""
        window = self.provider.replay_window
        try:
            since = datetime.fromisoformat(str(receipt.get("first_claimed_at") or receipt.get("claimed_at")))
        except ValueError:
            return False
        return window is not None and self.now() - since < window

    def work_again(self, entry: OutboxEntry) -> None:
        handler = {"task": self._call_task, "letter": self._letter, "note": self._note,
                   "handoff_note": self._note, "confirmation": self._confirmation}.get(entry.kind)
        if handler is not None:
            handler(entry)


def _with_receipt(entry: OutboxEntry, receipt: Mapping[str, Any]) -> OutboxEntry:
    return replace(entry, receipt=dict(receipt))


def _numbers(entry: OutboxEntry) -> list[str]:
    return list(entry.payload.get("invoice_numbers") or entry.payload.get("invoices") or ["?"])


def _budget(exc: RateLimited) -> str:
    if exc.for_the_day:
        return "the platform's daily API limit is reached"
    return f"the platform's rate limit stopped the run ({exc})"


def _bare_invoice(connection: str, payload: Mapping[str, Any]) -> Invoice:
    """An invoice the store does not hold (a note queued by platform id only): just enough to address the note."""
    return Invoice(connection=connection, platform_id=str(payload.get("invoice")),
                   number=payload.get("invoice_number"), debtor_id=str(payload.get("debtor") or "?"),
                   issue_date=date(1970, 1, 1), due_date=date(1970, 1, 1), currency="EUR", total=0, amount_paid=0,
                   outstanding=0, status="unknown")
