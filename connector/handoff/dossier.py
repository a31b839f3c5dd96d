"""The dossier of one case: what a collection agency asks for at intake, built from store data and the law.

Pure: values in, a value out (no store, no clock, no files); "today" is `as_of`. A case is one debtor of one
connection with all its invoices at the handoff step. The case is a plain record (nested dicts of `Decimal`, `date`,
text) in the shape of `mappings/case.schema.json`, so the JSON writer, the flat writers and the format checks all
read the same fields by their path (`debtor.address.postal_code`, `invoice.outstanding`).

The law applied (shared/reference/domain.md): statutory interest follows the money day by day (a part payment
lowers the principal from the day after its payment date); businesses owe max(EUR 40, the scale) in collection
costs; consumers owe the scale on the principal unpaid when the 14-day letter's term ended, and only when that
letter was valid and its term has passed; otherwise no costs, and the case says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from connector.config import Creditor
from connector.escalation.calendar import consumer_term_end, presumed_receipt
from connector.escalation.legal import (
    NETHERLANDS,
    business_compensation,
    cents,
    stale_rate_warning,
    statutory_interest,
    unconfirmed_rate_warning,
)
from connector.escalation.legal_be import BELGIUM, business_compensation_be, consumer_costs
from connector.escalation.policy import Policy
from connector.escalation.texts import format_amount
from connector.models import PLATFORM, Debtor, DebtorKind, Event, EventKind, Invoice

ZERO = Decimal("0.00")

LETTER_STEP = "notice_of_default"
"""For a consumer the notice of default is the 14-day letter (art. 6:96 lid 6 BW)."""

COMPLIANT_TERM_WORDING = (
    "na de dag waarop deze brief bij u is bezorgd",
    "after the day on which you receive this letter",
)
"""How a valid 14-day letter words its term: counted from the day AFTER receipt (HR 25-11-2016,
ECLI:NL:HR:2016:2704), as the nl and en templates word it. A letter whose recorded text has none of these is not
relied on for costs."""


@dataclass(frozen=True, slots=True)
class InvoiceHistory:
    """One invoice of the case with its history (oldest first)."""

    invoice: Invoice
    events: Sequence[Event] = ()


@dataclass(frozen=True, slots=True)
class Document:
    """A file of the case in the export folder (`documents/<case>/...`)."""

    kind: str
    """invoice | letter"""
    file: str
    invoice: str | None = None
    """The invoice number it belongs to (a letter may cover several: the first)."""


@dataclass(frozen=True, slots=True)
class Case:
    """One debtor's case: identification for the store and the CLI, and the record the writers read."""

    reference: str
    connection: str
    debtor_id: str
    debtor_name: str
    invoice_ids: tuple[str, ...]
    invoice_numbers: tuple[str, ...]
    currency: str
    record: dict[str, Any] = field(repr=False)

    @property
    def claim(self) -> Mapping[str, Any]:
        return self.record["claim"]  # type: ignore[no-any-return]


# --- reading the history ------------------------------------------------------------------------------------------


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def payments_of(history: InvoiceHistory, as_of: date) -> list[tuple[date, Decimal]]:
    """(payment date, amount) of the payments made up to `as_of`: the platform's own payment dates where it gives
    them (`Invoice.payments`), else the drops in the outstanding amount sync saw (dated the day it saw them)."""
    if history.invoice.payments:
        return sorted((p.on, p.amount) for p in history.invoice.payments if p.on <= as_of and p.amount > 0)
    found = []
    for event in history.events:
        if event.kind is EventKind.PAYMENT_SEEN and event.on <= as_of:
            amount = Decimal(str(event.data.get("amount", "0")))
            if amount > 0:
                found.append((event.on, amount))
    return sorted(found)


Evidence = Mapping[str, Mapping[str, Any]]
"""What the outbox kept about a sent step, by its idempotency key (the event's `data.key`): `text` (the subject and
body as sent), `stated_costs` (the cost amount the text stated), `stated_principal` and `stated_invoices` (the
outstanding amount and the invoices it was about), `sent_at` (the platform's send time), `letter` (the PDF's path). Read by the export from the store; the
dossier only reads it."""


def _evidence(event: Event, evidence: Evidence | None) -> Mapping[str, Any]:
    key = event.data.get("key")
    return evidence.get(str(key), {}) if key and evidence else {}


def receipt_of(event: Event, evidence: Evidence | None = None) -> dict[str, Any] | None:
    """The platform's send receipt of a sent step, from the event (the delivery records it flat in `data`, or as
    `data.receipt`) and the outbox's send time."""
    raw = event.data.get("receipt")
    raw = raw if isinstance(raw, Mapping) else event.data
    recipients = raw.get("recipients") or ()
    receipt = {
        "reference": _text(raw.get("platform_reference") or raw.get("reference")),
        "sent_at": _text(raw.get("sent_at") or _evidence(event, evidence).get("sent_at")),
        "recipients": [str(r) for r in (recipients if isinstance(recipients, list | tuple) else [recipients])],
        "detail": _text(raw.get("detail")),
    }
    return receipt if any(receipt.values()) else None


def letter_path(event: Event, evidence: Evidence | None = None) -> str | None:
    """Where our own letter (PDF) for this event was saved, as the delivery recorded it."""
    return _text(event.data.get("letter") or _evidence(event, evidence).get("letter"))


# --- the law ------------------------------------------------------------------------------------------------------


_LAYER_SCALE = Decimal(10) ** 8
"""Each layer is computed on its principal times this, so the legal module's rounding to cents becomes a rounding to
10^-10 of a cent, and the sum is rounded to cents once (summing rounded layers could be a cent off)."""


def interest_following_payments(
    principal_now: Decimal, payments: Sequence[tuple[date, Decimal]], start: date, end: date, *, commercial: bool,
    law: str = NETHERLANDS,
) -> Decimal:
    """Statutory interest from `start` to `end` on a principal that part payments lowered over time.

    Interest is linear in the principal, so the claim splits into layers: what is still outstanding runs the whole
    period, each paid amount from `start` up to and including its payment day (domain: 1,000 overdue, 400 paid on
    day 20 → 1,000 for days 1-20 and 600 after). Exact while the period is under a year; over a year a paid layer's
    capitalised interest stops growing with it, which can only claim less than the law allows, never more.
    """
    if end < start:
        return ZERO
    layers = [(principal_now, end)] + [(amount, min(paid_on, end)) for paid_on, amount in payments if paid_on >= start]
    total = sum((statutory_interest(amount * _LAYER_SCALE, start, last, commercial=commercial, law=law)
                 for amount, last in layers if amount > 0), Decimal(0))
    return cents(total / _LAYER_SCALE)


@dataclass(frozen=True, slots=True)
class LetterEvidence:
    """The consumer 14-day letter as the history proves it, and whether it makes the costs owed."""

    event: Event
    invoices: tuple[str, ...]
    presumed_receipt: date
    term_end: date
    term_passed: bool
    problems: tuple[str, ...]
    letter_file: str | None = None
    """Our letter's PDF where it went by post (as the delivery recorded it)."""
    stated_costs: Decimal | None = None
    """The collection costs the letter stated, `stated_principal` the outstanding amount it stated them on and
    `stated_invoices` the invoices (platform ids) it was about (None / empty where the outbox kept no record)."""
    stated_principal: Decimal | None = None
    stated_invoices: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems


def _letter_problems(event: Event, due_dates: Sequence[date], language: str, evidence: Evidence | None
                     ) -> list[str]:
    problems = []
    if any(event.on <= due for due in due_dates):
        problems.append(f"sent on {event.on}, before the debtor was in default (the day after the due date)")
    kept = _evidence(event, evidence)
    text = _text(kept.get("text"))
    if text is None:
        problems.append("its text is not on record, so its wording cannot be shown")
        return problems
    if not any(wording in text for wording in COMPLIANT_TERM_WORDING):
        problems.append("its text does not give fourteen days counted from the day after receipt")
    stated = kept.get("stated_costs")
    if stated is None:
        problems.append("the collection cost amount it stated is not on record")
    else:
        amount = Decimal(str(stated))
        shown = {format_amount(amount, "EUR", lang) for lang in (language, "nl", "en")}
        if not any(s in text for s in shown):
            problems.append(f"its text does not state the collection costs of EUR {amount:,.2f}")
    return problems


def consumer_letters(histories: Sequence[InvoiceHistory], policy: Policy, as_of: date, language: str,
                     evidence: Evidence | None = None) -> dict[str, LetterEvidence]:
    """Invoice platform id → the 14-day letter sent about it (the first one sent), with its dates and problems."""
    found: dict[str, LetterEvidence] = {}
    for history in histories:
        sent = [e for e in history.events
                if e.kind is EventKind.REMINDER_SENT and e.step == LETTER_STEP and e.on <= as_of]
        if not sent:
            continue
        event = sent[0]
        term_end = consumer_term_end(event.on, policy)
        covered = tuple(h.invoice.label for h in histories
                        if any(e.kind is EventKind.REMINDER_SENT and e.step == LETTER_STEP and e.on == event.on
                               for e in h.events))
        # a letter sent by post: the delivery recorded its file with the task to post it, before it was sent
        posted = [letter_path(e, evidence) for e in history.events
                  if (e.step or e.data.get("step")) == LETTER_STEP and e.on <= event.on and letter_path(e, evidence)]
        kept = _evidence(event, evidence)
        found[history.invoice.platform_id] = LetterEvidence(
            letter_file=letter_path(event, evidence) or (posted[-1] if posted else None),
            stated_costs=_amount(kept.get("stated_costs")),
            stated_principal=_amount(kept.get("stated_principal")),
            stated_invoices=tuple(map(str, kept.get("stated_invoices") or ())),
            event=event,
            invoices=covered,
            presumed_receipt=presumed_receipt(event.on, policy.receipt),
            term_end=term_end,
            term_passed=as_of > term_end,
            problems=tuple(_letter_problems(event, [history.invoice.due_date], language, evidence)),
        )
    return found


def _money(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


def _claim(
    debtor: Debtor,
    histories: Sequence[InvoiceHistory],
    letters: Mapping[str, LetterEvidence],
    policy: Policy,
    as_of: date,
    currency: str,
) -> tuple[dict[str, Any], dict[str, Decimal], list[str]]:
    """The claim (principal, interest, costs with their basis), the interest per invoice, and warnings."""
    policy = policy.for_connection(debtor.connection)
    principal = sum((h.invoice.outstanding for h in histories), ZERO)
    commercial = debtor.kind is DebtorKind.BUSINESS
    per_invoice: dict[str, Decimal] = {h.invoice.platform_id: ZERO for h in histories}
    found: list[str] = []
    if currency != "EUR":
        reason = f"none claimed: the statutory interest and cost scale are in EUR, this case is in {currency}"
        return {"principal": principal, "interest": ZERO, "interest_basis": reason, "costs": ZERO,
                "costs_basis": reason, "total": principal}, per_invoice, found

    belgian = commercial and policy.business_law == BELGIUM
    law = ("the law of 2 August 2002 on late payment, art. 5 (a creditor in Belgium: the Belgian late-payment rate)"
           if belgian else "art. 6:119a BW (statutory commercial interest)" if commercial
           else "art. 6:119 BW (statutory interest)")
    for history in histories:
        invoice = history.invoice
        start = invoice.due_date + timedelta(days=1)
        try:
            per_invoice[invoice.platform_id] = interest_following_payments(
                invoice.outstanding, payments_of(history, as_of), start, as_of, commercial=commercial,
                law=policy.business_law,
            )
        except ValueError as exc:  # a due date before the rate table: stated by hand, never guessed
            found.append(f"invoice {invoice.label}: {exc}")
        else:
            if (unsure := unconfirmed_rate_warning(start, as_of, commercial=commercial,
                                                   law=policy.business_law)) is not None:
                found.append(unsure)
    if (stale := stale_rate_warning(as_of, commercial=commercial, law=policy.business_law)) is not None:
        found.append(stale)
    interest = sum(per_invoice.values(), ZERO)
    interest_basis = (
        f"{law} from the day after each due date up to {as_of}, on the principal as it stood each day "
        f"(part payments lower it from the day after their payment date), "
        f"{'not capitalised (Belgian law)' if belgian else 'capitalised yearly'}"
    )

    vat = policy.collection_vat
    vat_note = f", plus {vat * 100:g} % VAT" if vat else ""
    if belgian:
        costs = business_compensation_be(len(histories))
        costs_basis = (f"law of 2 August 2002 on late payment, art. 6 (a creditor in Belgium): EUR 40.00 per invoice, "
                       f"{len(histories)} invoice(s); further costs only where shown and reasonable")
    elif commercial:
        bases = [principal] if policy.consolidate_principal else [h.invoice.outstanding for h in histories]
        costs = sum((business_compensation(p, vat_rate=vat) for p in bases if p > 0), ZERO)
        costs_basis = (
            f"art. 6:96 lid 4 BW: max(EUR 40.00, the scale of the Besluit vergoeding voor buitengerechtelijke "
            f"incassokosten) on the principal of {_money(principal, currency)}{vat_note}"
        )
    else:
        costs, costs_basis = _consumer_costs(histories, letters, policy, as_of, vat, vat_note,
                                             country=debtor.address.country)
    claim = {
        "principal": principal,
        "interest": interest,
        "interest_basis": interest_basis,
        "costs": costs,
        "costs_basis": costs_basis,
        "total": principal + interest + costs,
    }
    return claim, per_invoice, list(dict.fromkeys(found))


def _within_stated(owed: Sequence[tuple[InvoiceHistory, Decimal]], letters: Mapping[str, LetterEvidence]
                   ) -> Decimal | None:
    """The most the 14-day letters allow for these invoices: what each letter stated where this case claims all the
    invoices it named, else its stated costs in proportion to the part of its principal claimed here, rounded down
    (None where a letter's amounts are not on record).

    A letter about several invoices states the scale on them together (`consolidate_principal`); claimed in separate
    cases, the scale on each part would add up to more than it stated (1,500 + 1,500: 225 + 225 against 425), and a
    consumer owes no more than the letter said (art. 6:96 lid 6 BW)."""
    per_letter: dict[tuple[date, str], tuple[LetterEvidence, Decimal, set[str]]] = {}
    for history, amount in owed:
        letter = letters[history.invoice.platform_id]
        key = (letter.event.on, str(letter.event.data.get("key", "")))
        _letter, claimed, ids = per_letter.get(key, (letter, ZERO, set()))
        per_letter[key] = (letter, claimed + amount, ids | {history.invoice.platform_id})
    allowed = ZERO
    for letter, claimed, ids in per_letter.values():
        if letter.stated_costs is None:
            return None
        if letter.stated_invoices and set(letter.stated_invoices) <= ids:
            allowed += letter.stated_costs  # the whole letter in this case: what it stated is the bound
            continue
        if not letter.stated_principal or letter.stated_principal <= 0:
            return None
        share = min(claimed / letter.stated_principal, Decimal(1))
        allowed += (letter.stated_costs * share).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    return allowed


def _amount(value: Any) -> Decimal | None:
    """An amount the outbox kept as text (None where it kept none or something else)."""
    try:
        return None if value is None else Decimal(str(value))
    except ArithmeticError:
        return None


def _consumer_costs(
    histories: Sequence[InvoiceHistory],
    letters: Mapping[str, LetterEvidence],
    policy: Policy,
    as_of: date,
    vat: Decimal,
    vat_note: str,
    *,
    country: str | None = None,
) -> tuple[Decimal, str]:
    """The scale on what was unpaid when the letter's term ended (a part payment after it does not lower the costs,
    HR 13-06-2014; one within it does, HR 25-11-2016), for the invoices whose valid letter's term has passed."""
    owed: list[tuple[InvoiceHistory, Decimal]] = []
    refused: list[str] = []
    for history in histories:
        label = history.invoice.label
        letter = letters.get(history.invoice.platform_id)
        if letter is None:
            refused.append(f"invoice {label}: no 14-day letter (art. 6:96 lid 6 BW) is recorded as sent")
        elif not letter.valid:
            refused.append(f"invoice {label}: the 14-day letter of {letter.event.on} is not valid: "
                           + "; ".join(letter.problems))
        elif not letter.term_passed:
            refused.append(f"invoice {label}: the 14-day letter's term ends on {letter.term_end}, not yet passed")
        else:
            paid_after = sum((amount for paid_on, amount in payments_of(history, as_of) if paid_on > letter.term_end),
                             ZERO)
            owed.append((history, history.invoice.outstanding + paid_after))
    if not owed:
        return ZERO, "none claimed: " + "; ".join(refused)
    unpaid = [amount for _h, amount in owed]
    bases = [sum(unpaid, ZERO)] if policy.consolidate_principal else unpaid
    costs = sum((consumer_costs(p, country=country, vat_rate=vat) for p in bases if p > 0), ZERO)
    term_ends = sorted({letters[h.invoice.platform_id].term_end for h, _a in owed})
    law = ("book XIX of the Belgian Code of Economic Law (law of 4 May 2023; a consumer in Belgium): the capped "
           "damages" if country == BELGIUM else
           "art. 6:96 lid 5-6 BW and the Besluit vergoeding voor buitengerechtelijke incassokosten: the scale")
    basis = (
        f"{law} on the principal of EUR {sum(unpaid, ZERO):,.2f} unpaid when the 14-day letter's term ended "
        f"({', '.join(map(str, term_ends))}){'' if country == BELGIUM else vat_note}"
    )
    stated = _within_stated(owed, letters)
    if stated is not None and stated < costs:
        costs = stated
        basis += (", limited to what the 14-day letter stated, in proportion to the part of the principal it named "
                  "that this case claims")
    if refused:
        basis += "; not on " + "; ".join(refused)
    return costs, basis


# --- the record ---------------------------------------------------------------------------------------------------


def _address(lines: Sequence[str], postal_code: str | None, city: str | None, region: str | None,
             country: str | None) -> dict[str, Any]:
    return {
        "lines": list(lines),
        "street": ", ".join(lines) or None,
        "postal_code": postal_code or None,
        "city": city or None,
        "region": region or None,
        "country": country or None,
    }


def _creditor(creditor: Creditor) -> dict[str, Any]:
    return {
        "name": creditor.name,
        "address": _address(creditor.address_lines, creditor.postal_code, creditor.city, None, creditor.country),
        "coc_number": creditor.coc_number,
        "vat_number": creditor.vat_number,
        "iban": creditor.iban,
        "bic": creditor.bic,
        "email": creditor.email,
        "phone": creditor.phone,
    }


def _debtor(debtor: Debtor) -> dict[str, Any]:
    a = debtor.address
    return {
        "id": debtor.platform_id,
        "name": debtor.name,
        "kind": debtor.kind.value,
        "contact_person": debtor.contact_person or a.attention or None,
        "email": debtor.emails[0] if debtor.emails else None,
        "emails": list(debtor.emails),
        "phone": debtor.phone or None,
        "address": _address(a.lines, a.postal_code, a.city, a.region, a.country),
        "coc_number": debtor.coc_number or None,
        "vat_number": debtor.vat_number or None,
        "language": debtor.language,
    }


def _history_records(histories: Sequence[InvoiceHistory], as_of: date, evidence: Evidence | None
                     ) -> dict[str, list[dict[str, Any]]]:
    """Reminders (one entry per mail/letter/task, covering the invoices it was about), holds, arrangements, payments
    and call notes, oldest first."""
    reminders: dict[tuple[date, str, str, str], dict[str, Any]] = {}
    holds: list[dict[str, Any]] = []
    arrangements: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for history in histories:
        label = history.invoice.label
        open_holds: dict[str, dict[str, Any]] = {}
        open_arrangement: dict[str, Any] | None = None
        for event in history.events:
            if event.on > as_of:
                continue
            kind = event.kind
            step = event.step or _text(event.data.get("step"))  # a letter task names its step in `data`
            if kind in (EventKind.REMINDER_SENT, EventKind.TASK_CREATED) and step:
                status = "sent" if kind is EventKind.REMINDER_SENT else "task"
                channel = _text(event.data.get("channel")) or ("letter" if event.data.get("letter") else None)
                key = (event.on, step, status, channel or "")
                entry = reminders.setdefault(key, {
                    "on": event.on, "step": step, "channel": channel, "status": status, "invoices": [],
                    "receipt": receipt_of(event, evidence), "letter": letter_path(event, evidence),
                })
                entry["invoices"].append(label)
            elif kind is EventKind.HOLD_SET:
                name = str(event.data.get("hold", "dispute"))
                platform = event.data.get("source") == PLATFORM
                hold = {"kind": name, "invoice": label, "since": event.on,
                        "until": _day(event.data.get("until")), "ended_on": None,
                        "reason": _text(event.data.get("reason")) or ("recorded on the platform" if platform else None)}
                key = f"{name} ({PLATFORM})" if platform else name  # the platform's promise ends on its own
                if key in open_holds:
                    open_holds[key]["ended_on"] = event.on
                open_holds[key] = hold
                holds.append(hold)
            elif kind is EventKind.HOLD_RELEASED:
                released = event.data.get("hold")
                if released and event.data.get("source") == PLATFORM:
                    released = f"{released} ({PLATFORM})"
                for name in [str(released)] if released else list(open_holds):
                    if name in open_holds:
                        open_holds.pop(name)["ended_on"] = event.on
            elif kind is EventKind.ARRANGEMENT_SET:
                if open_arrangement is not None:
                    open_arrangement["ended_on"] = event.on
                down = event.data.get("down_payment")
                open_arrangement = {
                    "invoice": label,
                    "agreed_on": event.on,
                    "ended_on": None,
                    "down_payment": {"due": _day(down.get("due")) or event.on, "amount": Decimal(str(down["amount"]))}
                    if isinstance(down, Mapping) else None,
                    "instalments": [{"due": _day(i.get("due")) or event.on, "amount": Decimal(str(i["amount"]))}
                                    for i in event.data.get("instalments", ())],
                }
                arrangements.append(open_arrangement)
            elif kind is EventKind.ARRANGEMENT_ENDED:
                if open_arrangement is not None:
                    open_arrangement["ended_on"] = event.on
                    open_arrangement = None
            elif kind is EventKind.NOTE:
                text = _text(event.data.get("text"))
                if text:
                    notes.append({"invoice": label, "on": event.on, "text": text})
        payments += [{"invoice": label, "on": on, "amount": amount} for on, amount in payments_of(history, as_of)]
        if history.invoice.promised_payment_date and not any(h["kind"] == "promise" and h["invoice"] == label
                                                              for h in holds):
            holds.append({"kind": "promise", "invoice": label, "since": history.invoice.promised_payment_date,
                          "until": history.invoice.promised_payment_date, "ended_on": None,
                          "reason": "payment date promised on the platform"})
    def by_date(row: Mapping[str, Any]) -> tuple[date, str]:
        return row.get("on") or row.get("since") or row.get("agreed_on"), row.get("invoice") or ""

    return {
        "reminders": sorted(reminders.values(), key=lambda r: (r["on"], r["step"])),
        "holds": sorted(holds, key=by_date),
        "arrangements": sorted(arrangements, key=by_date),
        "payments": sorted(payments, key=by_date),
        "notes": sorted(notes, key=by_date),
    }


def _summary(invoices: list[dict[str, Any]], history: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    sent = [r for r in history["reminders"] if r["status"] == "sent"]
    return {
        "invoice_count": len(invoices),
        "invoice_numbers": [i["number"] for i in invoices],
        "oldest_due_date": min(i["due_date"] for i in invoices),
        "max_days_past_due": max(i["days_past_due"] for i in invoices),
        "reminder_count": len(sent),
        "last_reminder_on": max((r["on"] for r in sent), default=None),
        "reminder_history": "; ".join(
            f"{r['on']} {r['step']}" + (f" ({r['channel']})" if r["channel"] else "")
            + ("" if r["status"] == "sent" else " [task]") for r in history["reminders"]
        ),
        "holds": "; ".join(
            f"{h['since']} {h['kind']} {h['invoice']}" + (f" until {h['until']}" if h["until"] else "")
            + (f" (ended {h['ended_on']})" if h["ended_on"] else "") + (f": {h['reason']}" if h["reason"] else "")
            for h in history["holds"]
        ),
        "arrangements": "; ".join(
            f"{a['agreed_on']} {a['invoice']}: " + ", ".join(f"{i['due']} {i['amount']}" for i in a["instalments"])
            + (f" (ended {a['ended_on']})" if a["ended_on"] else "") for a in history["arrangements"]
        ),
        "notes": "; ".join(f"{n['on']} {n['invoice']}: {n['text']}" for n in history["notes"]),
    }


def build_case(
    reference: str,
    creditor: Creditor,
    debtor: Debtor,
    histories: Sequence[InvoiceHistory],
    policy: Policy,
    as_of: date,
    *,
    documents: Sequence[Document] = (),
    evidence: Evidence | None = None,
    warnings: Sequence[str] = (),
) -> Case:
    """The case of `debtor` for the invoices in `histories` (all in one currency), as of `as_of`; `documents` are
    the files the export put in documents/<case>/, `warnings` what it could not get."""
    if not histories:
        raise ValueError(f"case {reference}: no invoices")
    currencies = {h.invoice.currency for h in histories}
    if len(currencies) != 1:
        raise ValueError(f"case {reference}: invoices in several currencies ({', '.join(sorted(currencies))})")
    currency = currencies.pop()
    histories = sorted(histories, key=lambda h: (h.invoice.due_date, h.invoice.label))
    resolved = policy.for_connection(debtor.connection)
    language = debtor.language or resolved.default_language
    consumer = debtor.kind is DebtorKind.CONSUMER
    letters = consumer_letters(histories, resolved, as_of, language, evidence) if consumer else {}
    claim, interest, found = _claim(debtor, histories, letters, resolved, as_of, currency)
    pdfs = {d.invoice: d.file for d in documents if d.kind == "invoice"}
    invoices = [
        {
            "id": h.invoice.platform_id,
            "number": h.invoice.label,
            "reference": h.invoice.reference,
            "issue_date": h.invoice.issue_date,
            "due_date": h.invoice.due_date,
            "currency": h.invoice.currency,
            "original": h.invoice.total,
            "paid": h.invoice.amount_paid,
            "outstanding": h.invoice.outstanding,
            "days_past_due": (as_of - h.invoice.due_date).days,
            "interest": interest[h.invoice.platform_id],
            "status": h.invoice.status,
            "document": pdfs.get(h.invoice.label),
        }
        for h in histories
    ]
    history = _history_records(histories, as_of, evidence)
    record: dict[str, Any] = {
        "reference": reference,
        "connection": debtor.connection,
        "as_of": as_of,
        "currency": currency,
        "creditor": _creditor(creditor),
        "debtor": _debtor(debtor),
        "invoices": invoices,
        "claim": claim,
        "notice_of_default": _notice(histories, debtor.kind, resolved, as_of),
        "consumer_letter": _letter_record(letters, documents, evidence) if consumer else None,
        **history,
        "documents": [{"kind": d.kind, "invoice": d.invoice, "file": d.file} for d in documents],
        "summary": _summary(invoices, history),
        "warnings": [*found, *warnings],
    }
    return Case(
        reference=reference,
        connection=debtor.connection,
        debtor_id=debtor.platform_id,
        debtor_name=debtor.name,
        invoice_ids=tuple(i["id"] for i in invoices),
        invoice_numbers=tuple(i["number"] for i in invoices),
        currency=currency,
        record=record,
    )


def _notice(histories: Sequence[InvoiceHistory], kind: DebtorKind, policy: Policy, as_of: date
            ) -> dict[str, Any] | None:
    """The notice of default (the first sent about any invoice of the case) and its pay-by date: sent, not a task
    (a letter not yet posted, a mail the platform refused) — the agency relies on it."""
    sent = sorted(
        (e for h in histories for e in h.events
         if e.kind is EventKind.REMINDER_SENT and e.step == LETTER_STEP and e.on <= as_of),
        key=lambda e: e.on,
    )
    if not sent:
        return None
    event = sent[0]
    recorded = _day(event.data.get("pay_by"))
    if kind is DebtorKind.CONSUMER:
        pay_by = consumer_term_end(event.on, policy)
    else:
        pay_by = event.on + timedelta(days=policy.steps.notice_of_default.pay_by_days)
    return {"sent_on": event.on, "pay_by": recorded or pay_by, "channel": _text(event.data.get("channel"))}


def _letter_record(letters: Mapping[str, LetterEvidence], documents: Sequence[Document], evidence: Evidence | None
                   ) -> dict[str, Any] | None:
    """The evidence of the 14-day letter (the latest-ending one where invoices got separate letters)."""
    if not letters:
        return None
    letter = max(letters.values(), key=lambda item: item.term_end)
    event = letter.event
    path = letter.letter_file
    exported = next((d.file for d in documents if d.kind == "letter" and path and d.file.endswith(_basename(path))),
                    None)
    kept = _evidence(event, evidence)
    stated = kept.get("stated_costs")
    return {
        "sent_on": event.on,
        "channel": _text(event.data.get("channel")),
        "invoices": list(letter.invoices),
        "text": _text(kept.get("text")),
        "stated_costs": None if stated is None else Decimal(str(stated)),
        "receipt": receipt_of(event, evidence),
        "letter": exported,
        "presumed_receipt": letter.presumed_receipt,
        "term_end": letter.term_end,
        "term_passed": letter.term_passed,
        "valid": letter.valid,
        "problems": list(letter.problems),
    }


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]
