"""Amounts, numbers and dates in the user's language (Babel's CLDR data), for human output only: `--json` stays
language-neutral (ISO dates, amounts as plain decimal strings).

`nl` writes `€ 4.405,44` and `4 december 2026`; `en` writes `€4,405.44` and `4 December 2026`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

Lang = Literal["nl", "en"]
LANGS: tuple[Lang, ...] = ("nl", "en")

_LOCALES: dict[str, str] = {"nl": "nl_NL", "en": "en_GB"}
"""British English: day before month, as a Dutch or Belgian reader expects in either language."""

DUTCH_SPEAKING = frozenset({"NL", "BE", "SR"})


def default_lang(creditor_country: str | None) -> Lang:
    """`nl` for a creditor in a Dutch-speaking country, else `en`."""
    return "nl" if (creditor_country or "").upper() in DUTCH_SPEAKING else "en"


class Formats:
    """How one language writes money, numbers and dates (cached: a plan table formats thousands of each)."""

    def __init__(self, lang: Lang = "en") -> None:
        self.lang = lang
        self.locale = Locale.parse(_LOCALES[lang])
        self.date = lru_cache(maxsize=4096)(self._date)

    def money(self, amount: Decimal | None, currency: str) -> str:
        if amount is None:
            return ""
        return _plain_spaces(str(format_currency(amount, currency, locale=self.locale)))

    def number(self, value: int | Decimal) -> str:
        return _plain_spaces(str(format_decimal(value, locale=self.locale)))

    def _date(self, day: date | None) -> str:
        return "" if day is None else str(format_date(day, "long", locale=self.locale))

    def text(self, sentence: str) -> str:
        """A sentence the rules wrote (a reason, a dossier line, an event's details) with its amounts and days as
        this language writes them. The rules write both in one neutral form, `EUR 1,234.56` and ISO days, which the
        JSON output keeps; a table shows them as the user reads the table's own columns."""
        sentence = _MONEY_IN_TEXT.sub(lambda found: self.money(Decimal(found[2].replace(",", "")), found[1]), sentence)
        return _DAY_IN_TEXT.sub(self._day_in_text, sentence)

    def _day_in_text(self, found: re.Match[str]) -> str:
        try:
            return self.date(date.fromisoformat(found[0]))
        except ValueError:  # shaped like a day but none (a reference such as 2026-13-45): left as written
            return found[0]

    def moment(self, when: datetime | None) -> str:
        """A moment with minutes, in the moment's own time zone (UTC in the store)."""
        if when is None:
            return ""
        return f"{self.date(when.date())} {when:%H:%M}"


_MONEY_IN_TEXT = re.compile(r"\b([A-Z]{3}) (-?\d{1,3}(?:,\d{3})*\.\d{2})\b")
"""An amount as `escalation.action.format_money` writes it."""
_DAY_IN_TEXT = re.compile(r"(?<![\w-])\d{4}-\d{2}-\d{2}(?![\w-])")
"""An ISO day standing alone (not part of an invoice number or reference such as INV-2026-09-01 or 2026-09-01-A)."""


def _plain_spaces(text: str) -> str:
    """CLDR's no-break spaces as plain ones: what a person types when searching the output."""
    return text.replace("\xa0", " ").replace("\u202f", " ")


def formats_for(lang: str | None, creditor_country: str | None = None) -> Formats:
    chosen: Lang = lang if lang in LANGS else default_lang(creditor_country)  # type: ignore[assignment]
    return _formats(chosen)


@lru_cache(maxsize=None)
def _formats(lang: Lang) -> Formats:
    return Formats(lang)


__all__ = ["LANGS", "Formats", "Lang", "default_lang", "formats_for"]
