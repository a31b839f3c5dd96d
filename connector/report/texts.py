"""The report's words in Dutch and English (numbers, amounts and dates are Babel's: `render.py`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Literal

Lang = Literal["nl", "en"]
LOCALES: dict[str, str] = {"nl": "nl_NL", "en": "en_GB"}
"""British English: day before month, as a Dutch or Belgian reader expects in either language."""

TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "title": "Debiteurenrapport",
        "as_of": "Stand per",
        "store": "Administratie",
        "version": "Dunning Connector",
        "made": "Gemaakt op",
        "synced": "Laatst gesynchroniseerd",
        "never_synced": "nog nooit",
        "sync_behind": "vóór de rapportdatum; wat sindsdien is betaald of veranderd, staat hier nog niet in (voer eerst "
                       "`dunning sync` uit)",
        "contents": "Inhoud",
        "no_data": "De administratie bevat nog geen facturen. Voer eerst `dunning sync` uit.",
        "aging": "Ouderdom van de openstaande posten",
        "aging_alt": "Staafdiagram van het openstaande bedrag per ouderdomsklasse",
        "bucket": "Dagen na vervaldatum",
        "count": "Facturen",
        "amount": "Openstaand",
        "total": "Totaal",
        "not_due": "nog niet vervallen",
        "d1_30": "1–30",
        "d31_60": "31–60",
        "d61_90": "61–90",
        "d90_plus": "meer dan 90",
        "credit_note": "Inclusief een nog niet verrekende creditnota van {amount}: die telt negatief mee.",
        "credit_notes": "Inclusief {count} nog niet verrekende creditnota's, samen {amount}: die tellen negatief "
                        "mee.",
        "top": "Grootste debiteuren",
        "debtor": "Debiteur",
        "oldest": "Oudste (dagen)",
        "current_step": "Huidige stap",
        "due_today": "Vandaag aan de beurt",
        "none": "—",
        "dso": "DSO (dagen omzet uitstaand)",
        "dso_formula": "DSO = openstaande debiteuren op een dag ÷ omzet op rekening van de {days} dagen tot die dag × "
                       "{days}. Omzet telt de facturen die de administratie heeft gezien, min de creditnota's (een "
                       "factuur die betaald was vóór een sync haar zag, ontbreekt; in het begin valt de DSO daardoor "
                       "hoog uit).",
        "dso_now": "DSO op {date}",
        "dso_trend": "Verloop aan het eind van elke maand sinds de eerste sync",
        "dso_alt": "Lijndiagram van de DSO per maandeinde",
        "month_end": "Maandeinde",
        "receivables": "Debiteuren",
        "sales": "Omzet {days} dagen",
        "effect": "Verzonden herinneringen en hun effect",
        "effect_note": "Per stap het aandeel herinneringen waarna de factuur binnen 7, 14 en 30 dagen betaald was "
                       "(gesloten of niets meer open). Een herinnering telt mee voor een termijn zodra die voorbij is.",
        "effect_alt": "Staafdiagram van het aandeel betaald binnen 7, 14 en 30 dagen per stap",
        "step": "Stap",
        "sent": "Verzonden",
        "within": "binnen {days} dagen",
        "no_reminders": "Nog geen herinneringen verzonden.",
        "tasks": "Open taken",
        "task_kind": "Soort",
        "task_reason": "Waarom",
        "created": "Sinds",
        "call": "bellen",
        "letter": "brief",
        "refused": "geweigerd door het platform",
        "no_tasks": "Geen open taken.",
        "held": "Pauzes en betalingsregelingen",
        "invoice": "Factuur",
        "reason": "Reden",
        "no_holds": "Geen facturen gepauzeerd of in een regeling.",
        "cases": "Overgedragen aan het incassobureau",
        "case": "Dossier",
        "status": "Status",
        "principal": "Hoofdsom",
        "interest": "Rente",
        "costs": "Kosten",
        "no_cases": "Nog niets overgedragen.",
        "pending": "in voorbereiding",
        "held_back": "tegengehouden",
        "exported": "geëxporteerd",
        "uploaded": "aangeleverd",
        "claimable": "Wettelijke rente en incassokosten, vandaag te vorderen",
        "claimable_note": "Wat een overdracht vandaag zou vorderen: wettelijke (handels)rente vanaf de dag na de "
                          "vervaldatum en de incassokosten volgens de wettelijke staffel (alleen in euro), zonder "
                          "facturen die gepauzeerd, in een regeling of al overgedragen zijn.",
        "debtors_count": "Debiteuren",
        "not_eur": "De wettelijke staffel en rente gelden in euro; voor {currency} niet berekend.",
        "pre_due": "vooraankondiging",
        "reminder_1": "1e herinnering",
        "reminder_2": "2e herinnering",
        "final_reminder": "laatste herinnering",
        "call_step": "telefoontje",
        "written_reminder": "schriftelijke aanmaning",
        "notice_of_default": "ingebrekestelling",
        "handoff": "overdracht",
        "confirmation": "bevestiging",
        "hold_promise": "betalingsbelofte tot {date}",
        "hold_promise_platform": "betalingsbelofte tot {date} (vastgelegd op het platform)",
        "hold_excluded": "uitgesloten van herinneringen",
        "hold_dispute": "geschil sinds {date}",
        "hold_arrangement": "betalingsregeling loopt",
        "hold_arrangement_next": "betalingsregeling loopt, volgende termijn op {date}",
        "hold_arrangement_awaiting": "betalingsregeling loopt, termijn van {date} nog verwacht",
        "task_call": "bel {name} ({phone})",
        "task_call_no_phone": "bel {name} (geen telefoonnummer bekend)",
        "task_letter": "print de brief {file} ({step}) en stuur hem per post naar {name}; daarna: {command}",
        "stale_rate": "De tabel met de wettelijke rente is zeker tot {sure}; rente tot {end} rekent met het laatst "
                      "bekende percentage en kan afwijken: voeg het percentage van het nieuwe halfjaar toe aan {file}.",
    },
    "en": {
        "title": "Receivables report",
        "as_of": "As of",
        "store": "Store",
        "version": "Dunning Connector",
        "made": "Made on",
        "synced": "Last synced",
        "never_synced": "never",
        "sync_behind": "before the report's date; what was paid or changed since is not in this report yet (run "
                       "`dunning sync` first)",
        "contents": "Contents",
        "no_data": "The store holds no invoices yet. Run `dunning sync` first.",
        "aging": "Aging of open receivables",
        "aging_alt": "Bar chart of the amount outstanding per aging bucket",
        "bucket": "Days past due",
        "count": "Invoices",
        "amount": "Outstanding",
        "total": "Total",
        "not_due": "not yet due",
        "d1_30": "1–30",
        "d31_60": "31–60",
        "d61_90": "61–90",
        "d90_plus": "over 90",
        "credit_note": "Includes one credit note not yet settled, {amount}: it counts against the total.",
        "credit_notes": "Includes {count} credit notes not yet settled, together {amount}: they count against the "
                        "total.",
        "top": "Largest debtors",
        "debtor": "Debtor",
        "oldest": "Oldest (days)",
        "current_step": "Current step",
        "due_today": "Due today",
        "none": "—",
        "dso": "DSO (days sales outstanding)",
        "dso_formula": "DSO = receivables on a day ÷ credit sales of the {days} days up to that day × {days}. Sales "
                       "are the invoices the store has seen, less the credit notes (an invoice paid before any sync "
                       "saw it is missing, so early on the DSO reads high).",
        "dso_now": "DSO on {date}",
        "dso_trend": "At each month end since the first sync",
        "dso_alt": "Line chart of the DSO at each month end",
        "month_end": "Month end",
        "receivables": "Receivables",
        "sales": "Sales {days} days",
        "effect": "Reminders sent and their effect",
        "effect_note": "Per step, the share of reminders after which the invoice was paid (closed, or nothing left "
                       "owing) within 7, 14 and 30 days. A reminder counts for a window once the window has passed.",
        "effect_alt": "Bar chart of the share paid within 7, 14 and 30 days per step",
        "step": "Step",
        "sent": "Sent",
        "within": "within {days} days",
        "no_reminders": "No reminders sent yet.",
        "tasks": "Open tasks",
        "task_kind": "Kind",
        "task_reason": "Why",
        "created": "Since",
        "call": "call",
        "letter": "letter",
        "refused": "refused by the platform",
        "no_tasks": "No open tasks.",
        "held": "Holds and payment arrangements",
        "invoice": "Invoice",
        "reason": "Reason",
        "no_holds": "No invoices on hold or under an arrangement.",
        "cases": "Handed off to the collection agency",
        "case": "Case",
        "status": "Status",
        "principal": "Principal",
        "interest": "Interest",
        "costs": "Costs",
        "no_cases": "Nothing handed off yet.",
        "pending": "pending",
        "held_back": "held back",
        "exported": "exported",
        "uploaded": "uploaded",
        "claimable": "Statutory interest and collection costs claimable today",
        "claimable_note": "What a handoff today would claim: statutory (commercial) interest from the day after the "
                          "due date and the collection costs on the statutory scale (euro only), leaving out invoices "
                          "on hold, under an arrangement or already handed off.",
        "debtors_count": "Debtors",
        "not_eur": "The statutory scale and interest apply in euro; not computed for {currency}.",
        "pre_due": "pre-due notice",
        "reminder_1": "reminder 1",
        "reminder_2": "reminder 2",
        "final_reminder": "final reminder",
        "call_step": "call",
        "written_reminder": "written reminder",
        "notice_of_default": "notice of default",
        "handoff": "handoff",
        "confirmation": "confirmation",
        "hold_promise": "promise to pay by {date}",
        "hold_promise_platform": "promise to pay by {date} (recorded on the platform)",
        "hold_excluded": "excluded from reminders",
        "hold_dispute": "dispute since {date}",
        "hold_arrangement": "payment arrangement kept",
        "hold_arrangement_next": "payment arrangement kept, next instalment on {date}",
        "hold_arrangement_awaiting": "payment arrangement kept, awaiting the instalment of {date}",
        "task_call": "call {name} ({phone})",
        "task_call_no_phone": "call {name} (no phone number on file)",
        "task_letter": "print and post the {step} letter {file} to {name}, then: {command}",
        "stale_rate": "The statutory interest table is sure only up to {sure}; interest up to {end} uses the last "
                      "known rate and may be wrong: add the rate for the new half-year to {file}.",
    },
}


_DATE = r"(?P<date>\d{4}-\d{2}-\d{2})"
FIXED: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), key) for pattern, key in (
    (rf"promise to pay by {_DATE} \(recorded on the platform\)", "hold_promise_platform"),
    (rf"promise to pay by {_DATE}", "hold_promise"),
    (r"excluded from reminders", "hold_excluded"),
    (rf"dispute since {_DATE}", "hold_dispute"),
    (rf"payment arrangement kept, next instalment on {_DATE}", "hold_arrangement_next"),
    (rf"payment arrangement kept, awaiting the instalment of {_DATE}", "hold_arrangement_awaiting"),
    (r"payment arrangement kept", "hold_arrangement"),
    (r"the statutory interest table is sure only up to (?P<sure>\d{4}-\d{2}-\d{2}); interest up to "
     r"(?P<end>\d{4}-\d{2}-\d{2}) uses the last known rate and may be wrong: add the rate for the new half-year to "
     r"(?P<file>\S+)", "stale_rate"),
    (r"call (?P<name>.+) \(no phone number on file\)", "task_call_no_phone"),
    (r"call (?P<name>.+) \((?P<phone>[^()]+)\)", "task_call"),
    (r"print and post the (?P<step>[a-z0-9 ]+) letter (?P<file>\S+) to (?P<name>.+), then: "
     r"(?P<command>dunning task done \d+ --sent-on YYYY-MM-DD)", "task_letter"),
))
"""The fixed English texts the escalation package words an active hold or a warning in (`history.py`, `legal.py`),
and delivery a call or a letter task (`sender.py`), read back so the report can say them in its own language; a
text not matched here (a platform's refusal, the user's own words) is shown as it is."""


def fixed_text(texts: dict[str, str], text: str, day: Callable[[date], str]) -> str:
    """`text` (a hold reason, a warning, a task's reason) in the report's language, its dates written by `day`."""
    for pattern, key in FIXED:
        found = pattern.fullmatch(text)
        if found:
            values = {name: day(date.fromisoformat(value)) if name in ("date", "sure", "end")
                      else step_name(texts, value.replace(" ", "_")) if name == "step" else value
                      for name, value in found.groupdict().items()}
            return texts[key].format(**values)
    return text


def step_name(texts: dict[str, str], step: str | None) -> str:
    """A step's name in the report's language ("call" the step, not the task kind)."""
    if step is None:
        return texts["none"]
    return texts.get("call_step" if step == "call" else step, step.replace("_", " "))
