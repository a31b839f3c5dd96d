"""The Dutch report says in Dutch what the escalation package words in English: every hold reason a history can
give and the stale-rate warning (the user's own free text is not translated, and is not on the page)."""

from __future__ import annotations

import re
from datetime import date
from typing import get_args

import pytest

from connector.escalation.history import read_history
from connector.escalation.legal import stale_rate_warning
from connector.delivery.tasks import KINDS
from connector.escalation.policy import STEP_ORDER, Policy
from connector.models import Event, EventKind
from connector.report.render import ReportFormats
from connector.report.texts import TEXTS, fixed_text
from connector.store.handoff import CaseStatus
from tests.conftest import make_invoice

TODAY = date(2026, 12, 4)
ENGLISH = ("since", "promise", "reminders", "arrangement", "instalment", "recorded", "interest", "rate", " up to ")


def _hold(events: list[Event], **invoice: object) -> str:
    history = read_history(make_invoice("I1", **invoice), events, Policy().for_connection("acme"), TODAY)
    assert history.hold is not None
    return history.hold


HOLDS = {
    "dispute": (_hold([Event(kind=EventKind.HOLD_SET, on=date(2026, 11, 2), data={"hold": "dispute",
                                                                                 "reason": "wrong rate"})]),
                "geschil sinds 2 november 2026"),
    "promise": (_hold([Event(kind=EventKind.HOLD_SET, on=date(2026, 11, 2),
                             data={"hold": "promise", "until": "2026-12-10"})]),
                "betalingsbelofte tot 10 december 2026"),
    "platform promise": (_hold([], promised_payment_date=date(2026, 12, 10)),
                         "betalingsbelofte tot 10 december 2026 (vastgelegd op het platform)"),
    "excluded": (_hold([Event(kind=EventKind.HOLD_SET, on=date(2026, 11, 2), data={"hold": "excluded"})]),
                 "uitgesloten van herinneringen"),
    "arrangement": (_hold([Event(kind=EventKind.ARRANGEMENT_SET, on=date(2026, 11, 2), data={
        "instalments": [{"due": "2026-12-15", "amount": "605.00"}, {"due": "2027-01-15", "amount": "605.00"}]})]),
                    "betalingsregeling loopt, volgende termijn op 15 december 2026"),
}


@pytest.mark.parametrize("case", sorted(HOLDS))
def test_every_hold_reason_is_dutch_in_the_dutch_report(case: str) -> None:
    english, dutch = HOLDS[case]
    formats = ReportFormats("nl")
    assert fixed_text(TEXTS["nl"], english, formats.date) == dutch
    assert not any(word in dutch for word in ENGLISH)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", fixed_text(TEXTS["en"], english, ReportFormats("en").date))


def test_the_stale_rate_warning_is_dutch_and_its_dates_written_out() -> None:
    warning = stale_rate_warning(date(2040, 1, 1))
    assert warning is not None
    dutch = fixed_text(TEXTS["nl"], warning, ReportFormats("nl").date)
    assert dutch.startswith("De tabel met de wettelijke rente is zeker tot ") and "1 januari 2040" in dutch
    words = dutch.replace("connector/escalation/data/nl_statutory_interest.toml", "")
    assert words != dutch and not any(word in words for word in ENGLISH)


def test_a_text_the_report_does_not_know_is_shown_as_it_is() -> None:
    assert fixed_text(TEXTS["nl"], "on hold by the bookkeeper", ReportFormats("nl").date) == \
        "on hold by the bookkeeper"


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_every_step_task_kind_and_case_status_has_a_word_in_each_language(lang: str) -> None:
    texts = TEXTS[lang]
    for step in (*STEP_ORDER, "confirmation"):  # a confirmation's letter is a task with that step
        assert ("call_step" if step == "call" else step) in texts, step  # else `step_name` shows the raw name
    assert all(kind in texts for kind in KINDS) and all(status in texts for status in get_args(CaseStatus))


def test_a_letter_task_is_dutch_and_keeps_its_command() -> None:
    # delivery's wording of a letter to post (connector/delivery/sender.py)
    english = ("print and post the notice of default letter 26000003-notice_of_default.pdf to Transport Jansen B.V., "
               "then: dunning task done 17 --sent-on YYYY-MM-DD")
    assert fixed_text(TEXTS["nl"], english, ReportFormats("nl").date) == (
        "print de brief 26000003-notice_of_default.pdf (ingebrekestelling) en stuur hem per post naar Transport "
        "Jansen B.V.; daarna: dunning task done 17 --sent-on YYYY-MM-DD")
    assert fixed_text(TEXTS["en"], english, ReportFormats("en").date) == english
