"""The report as one self-contained HTML file: Jinja2 templates of this package, Babel for numbers, amounts and
dates in the reader's language, pygal's SVG inline, the CSS inline; nothing to fetch, nothing that must run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from connector.report import charts
from connector.report.figures import BUCKETS, EFFECT_WINDOWS, Section
from connector.report.texts import LOCALES, TEXTS, Lang, fixed_text, step_name
from providers.errors import UsageError
from providers.files import write_atomically


@dataclass(frozen=True)
class TaskRow:
    connection: str
    kind: str
    debtor: str
    invoices: str
    step: str | None
    reason: str
    created_on: date | None


@dataclass(frozen=True)
class SyncRow:
    """When a connection's data was last synced: figures as of a later day miss what changed since."""

    connection: str
    at: datetime | None
    """None: never synced."""
    behind: bool
    """The last sync (UTC day) is before the report's date, or there was none."""


@dataclass(frozen=True)
class CaseRow:
    connection: str
    reference: str
    debtor: str
    status: str
    exported_on: date | None
    currency: str
    totals: Mapping[str, Decimal]


@dataclass(frozen=True)
class Page:
    """What the template shows, besides the sections."""

    store: str
    as_of: date
    made_at: datetime
    version: str
    lang: Lang
    sections: Sequence[Section]
    tasks: Sequence[TaskRow]
    cases: Sequence[CaseRow]
    synced: Sequence[SyncRow]


class ReportFormats:
    """Babel's formats for the report's language. Amounts keep CLDR's no-break spaces: on a page, `€` and its
    amount must not be split over two lines."""

    def __init__(self, lang: Lang) -> None:
        self.locale = LOCALES[lang]

    def money(self, amount: Decimal, currency: str) -> str:
        return str(format_currency(amount, currency, locale=self.locale))

    def number(self, value: int | Decimal) -> str:
        return str(format_decimal(value, locale=self.locale))

    def decimal(self, value: Decimal | float | int, places: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * places if places else "")
        return str(format_decimal(value, format=pattern, locale=self.locale))

    def percent(self, share: Decimal | None) -> str | None:
        return None if share is None else str(format_percent(share, locale=self.locale))

    def date(self, day: date) -> str:
        return str(format_date(day, format="long", locale=self.locale))

    def short_date(self, day: date) -> str:
        return str(format_date(day, format="medium", locale=self.locale))

    def moment(self, when: datetime) -> str:
        return f"{self.date(when.date())} {when:%H:%M} UTC"


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("connector.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_ENV = _environment()


def _charts(section: Section, texts: Mapping[str, str], formats: ReportFormats) -> dict[str, str]:
    money = lambda value: formats.money(value, section.currency)  # noqa: E731 - a formatter for the chart's labels
    found = {
        "aging": charts.bars(
            [texts[key] for key in BUCKETS], [(texts["amount"], [section.aging.amounts[key] for key in BUCKETS])],
            money,
        )
    }
    if len(section.dso_trend) > 1:
        found["dso"] = charts.line(
            [formats.short_date(point.on) for point in section.dso_trend],
            [point.dso for point in section.dso_trend],
            lambda value: formats.decimal(value, 1),
        )
    if section.effects:
        found["effect"] = charts.bars(
            [step_name(dict(texts), effect.step) for effect in section.effects],
            [
                (texts["within"].format(days=window),
                 [None if (share := effect.share(window)) is None else share * 100 for effect in section.effects])
                for window in EFFECT_WINDOWS
            ],
            lambda value: f"{formats.decimal(value)} %",
            show_legend=True,
        )
    return found


def case_totals(cases: Sequence[CaseRow]) -> list[tuple[str, dict[str, Decimal]]]:
    """Per currency, the sums of the cases' principal, interest, costs and total."""
    sums: dict[str, dict[str, Decimal]] = {}
    for case in cases:
        into = sums.setdefault(case.currency, dict.fromkeys(("principal", "interest", "costs", "total"), Decimal(0)))
        for key in into:
            into[key] += case.totals.get(key, Decimal(0))
    return sorted(sums.items())


def render(page: Page) -> str:
    """The HTML text of the report."""
    texts = TEXTS[page.lang]
    formats = ReportFormats(page.lang)
    context: dict[str, Any] = {
        "page": page,
        "t": texts,
        "f": formats,
        "step": lambda name: step_name(texts, name),
        "fixed": lambda text: fixed_text(texts, text, formats.date),
        "buckets": BUCKETS,
        "windows": EFFECT_WINDOWS,
        "charts": [_charts(section, texts, formats) for section in page.sections],
        "case_totals": case_totals,
    }
    return _ENV.get_template("report.html.j2").render(context)


def write(path: Path, html: str) -> None:
    """Write the report in one step (a reader never sees half a page); private like the store it comes from."""
    try:
        write_atomically(path, html, mode=0o600)
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot write the report there ({exc.strerror or exc})") from None
