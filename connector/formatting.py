"""Amounts, numbers and dates in the user's language (Babel's CLDR data), for human output only: `--json` stays
language-neutral (ISO dates, amounts as plain decimal strings).

`nl` writes `€ 4.405,44` and `4 december 2026`; `en` writes `€4,405.44` and `4 December 2026`.
"""

from __future__ import annotations

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

    def moment(self, when: datetime | None) -> str:
        """A moment with minutes, in the moment's own time zone (UTC in the store)."""
        if when is None:
            return ""
        return f"{self.date(when.date())} {when:%H:%M}"


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
