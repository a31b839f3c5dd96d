"""Dutch statutory collection costs and interest, exact to the cent (and the Belgian commercial interest rate).

Pure functions on `Decimal` and `date`, public so the dossier, the exports and users can call them. The interest
rates are data (`data/nl_statutory_interest.toml`; for a creditor under Belgian law the commercial rate from
`data/be_late_payment_interest.toml`; each row with its start date and source), never code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cache, lru_cache
from importlib import resources

CENT = Decimal("0.01")

COST_BRACKETS: tuple[tuple[Decimal | None, Decimal], ...] = (
    (Decimal(2_500), Decimal("0.15")),
    (Decimal(2_500), Decimal("0.10")),
    (Decimal(5_000), Decimal("0.05")),
    (Decimal(190_000), Decimal("0.01")),
    (None, Decimal("0.005")),
)
"""Besluit vergoeding voor buitengerechtelijke incassokosten (BWBR0031432) art. 2 lid 1: marginal brackets."""
COST_MINIMUM = Decimal(40)
"""Art. 2 lid 2: at least EUR 40 for the whole; also the fixed compensation floor for businesses (art. 6:96 lid 4)."""
COST_MAXIMUM = Decimal(6_775)
"""Art. 2 lid 1: at most EUR 6,775 (before VAT)."""


def cents(amount: Decimal) -> Decimal:
    """Round half up to whole cents, the way amounts are stated on a letter."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def collection_costs(principal: Decimal, *, vat_rate: Decimal = Decimal(0)) -> Decimal:
    """The statutory extra-judicial collection costs on `principal` (art. 6:96 BW and its Besluit).

    `vat_rate` is added on top only when the creditor uses a VAT-charged collection service and cannot deduct that
    VAT (art. 2 lid 3); a creditor collecting itself passes 0.
    """
    if principal <= 0:
        raise ValueError(f"collection costs need a positive principal, got {principal}")
    if not Decimal(0) <= vat_rate < 1:
        raise ValueError(f"vat_rate is a fraction such as 0.21, got {vat_rate}")
    rest, scale = principal, Decimal(0)
    for width, rate in COST_BRACKETS:
        part = rest if width is None else min(rest, width)
        scale += part * rate
        rest -= part
        if rest <= 0:
            break
    costs = min(max(cents(scale), COST_MINIMUM), COST_MAXIMUM)
    return cents(costs * (1 + vat_rate))


def business_compensation(
    principal: Decimal, *, vat_rate: Decimal = Decimal(0), contractual: Decimal | None = None
) -> Decimal:
    """What a business debtor owes for collection: max(EUR 40, scale or contract amount), never 40 on top.

    Art. 6:96 lid 4 BW (Directive 2011/7/EU): the EUR 40 is owed without a reminder from the day after the last
    payment day, and is the floor of the compensation, not an addition to it.
    """
    claim = collection_costs(principal, vat_rate=vat_rate) if contractual is None else contractual
    return max(COST_MINIMUM, cents(claim))


# --- statutory interest -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatePeriod:
    start: date
    rate: Decimal
    """Percent per year, e.g. Decimal("10.15")."""
    source: str
    confirmed: bool


@dataclass(frozen=True, slots=True)
class RateTable:
    commercial: tuple[RatePeriod, ...]
    consumer: tuple[RatePeriod, ...]
    sure_until: date
    file: str
    """Where the rows live (named in the warnings: a stale or unconfirmed row is fixed there)."""


NETHERLANDS = "NL"
BELGIUM = "BE"
"""Country codes: of a creditor's law (`[policy] business_law`) and of a debtor's address."""
RATE_FILES = {NETHERLANDS: "data/nl_statutory_interest.toml", BELGIUM: "data/be_late_payment_interest.toml"}
"""Per law (`[policy] business_law`): its interest table. Belgian law has its own commercial rate only (law of
2 August 2002, art. 5); non-commercial interest is always the Dutch table's."""


@cache
def rate_table(law: str = NETHERLANDS) -> RateTable:
    """The statutory interest rates shipped with the package, for `law` (NL or BE)."""
    file = RATE_FILES[law]
    text = resources.files("connector.escalation").joinpath(file).read_text("utf-8")
    raw = tomllib.loads(text)

    def periods(rows: list[dict[str, object]]) -> tuple[RatePeriod, ...]:
        parsed = tuple(
            RatePeriod(start=row["from"], rate=Decimal(str(row["rate"])), source=str(row["source"]),  # type: ignore[arg-type]
                       confirmed=bool(row.get("confirmed", False)))
            for row in rows
        )
        if [p.start for p in parsed] != sorted({p.start for p in parsed}):
            raise ValueError(f"{file}: rows must be in date order without duplicates")
        return parsed

    return RateTable(periods(raw["commercial"]), periods(raw.get("consumer", [])), raw["sure_until"], file)


def _table(commercial: bool, law: str) -> RateTable:
    """The table the interest is taken from: commercial interest under the creditor's law, non-commercial always
    under the Dutch art. 6:119 (the only one this product knows)."""
    return rate_table(law if commercial else NETHERLANDS)


def _periods(commercial: bool, law: str) -> tuple[RatePeriod, ...]:
    table = _table(commercial, law)
    return table.commercial if commercial else table.consumer


def _anniversary(start: date, years: int) -> date:
    """`start` plus whole years; 29 February falls on 28 February in a non-leap year."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return start.replace(year=start.year + years, day=28)


def statutory_interest(
    principal: Decimal,
    start: date,
    end: date,
    *,
    commercial: bool,
    payments: Sequence[tuple[date, Decimal]] = (),
    law: str = NETHERLANDS,
) -> Decimal:
    """Statutory (art. 6:119) or commercial (art. 6:119a) interest for the days `start`..`end` inclusive; under
    Belgian `law` the commercial interest is the late-payment rate of the law of 2 August 2002.

    Each day at the rate then in force / 365 (also in leap years); under Dutch law, after each full year counted
    from `start` the year's interest is added to the principal (art. 6:119 lid 2, 6:119a lid 3; Belgian law adds
    interest to the principal only by agreement or a claim in court). Rounded to cents at the end only.
    `start` is the first day of default: the day after the due date; `principal` is what was owed on it. Interest
    follows the money day by day: each of `payments` (paid on, amount) lowers the principal from the day after it
    was paid. Past the table's sure half-year the last known rate is used: `stale_rate_warning(end)` says so, for
    the caller to show.
    """
    if principal <= 0:
        raise ValueError(f"interest needs a positive principal, got {principal}")
    if end < start:
        return Decimal("0.00")
    periods = _periods(commercial, law)
    if start < periods[0].start:
        raise ValueError(
            f"no statutory interest rate known before {periods[0].start} (asked from {start}); "
            "compute interest for earlier periods by hand"
        )
    lowered: dict[date, Decimal] = {}
    """Day → how much less is owed from that day on (the day after each payment)."""
    for paid_on, amount in payments:
        if start <= paid_on < end:
            day_after = paid_on + timedelta(days=1)
            lowered[day_after] = lowered.get(day_after, Decimal(0)) + amount
    compounds = not (commercial and law == BELGIUM)
    with localcontext() as ctx:
        ctx.prec = 60
        base, total_interest, year_interest = principal, Decimal(0), Decimal(0)
        for day, days, rate, year_complete in _stretches(start, end, commercial, tuple(sorted(lowered)), law):
            if year_complete:
                if compounds:
                    base += year_interest
                total_interest += year_interest
                year_interest = Decimal(0)
            if day in lowered:
                base = max(base - lowered[day], Decimal(0))
            year_interest += base * rate / 100 * days / 365
        total_interest += year_interest
    return cents(total_interest)


@lru_cache(maxsize=4096)
def _stretches(
    start: date, end: date, commercial: bool, lowered: tuple[date, ...], law: str
) -> tuple[tuple[date, int, Decimal, bool], ...]:
    """`start`..`end` cut where the rate changes, at each anniversary of `start` and on the days in `lowered`:
    (first day, days, rate, whether a full year ends just before it) for each stretch (cached: a run asks the same
    few hundred due dates for many invoices, only the amounts differ)."""
    periods = _periods(commercial, law)
    boundaries = sorted({p.start for p in periods if start < p.start <= end} | set(lowered))
    stretches: list[tuple[date, int, Decimal, bool]] = []
    years = 1
    next_anniversary = _anniversary(start, 1)
    day = start
    while day <= end:
        year_complete = day == next_anniversary
        if year_complete:
            years += 1
            next_anniversary = _anniversary(start, years)
        # the stretch runs until the next rate change, anniversary or the end, whichever comes first
        stop = min([end + timedelta(days=1), next_anniversary] + [b for b in boundaries if b > day])
        rate = next(p.rate for p in reversed(periods) if p.start <= day)
        stretches.append((day, (stop - day).days, rate, year_complete))
        day = stop
    return tuple(stretches)


def stale_rate_warning(end: date, *, commercial: bool = True, law: str = NETHERLANDS) -> str | None:
    """What to tell when interest up to `end` reaches past the half-year the rate table is sure of, else None."""
    table = _table(commercial, law)
    if end <= table.sure_until:
        return None
    return (
        f"the statutory interest table is sure only up to {table.sure_until}; interest up to {end} uses the last known "
        f"rate and may be wrong: add the rate for the new half-year to connector/escalation/{table.file}"
    )


@lru_cache(maxsize=4096)
def unconfirmed_rate_warning(start: date, end: date, *, commercial: bool, law: str = NETHERLANDS) -> str | None:
    """What to tell when interest from `start` up to `end` uses a rate the table marks unconfirmed (taken from the
    domain reference, no publication found: domain.md says such facts are confirmed before the code relies on them,
    so the amount is stated with this warning instead of as certain), else None."""
    table = _table(commercial, law)
    rows = table.commercial if commercial else table.consumer
    used = [row for n, row in enumerate(rows)
            if row.start <= end and (n + 1 == len(rows) or rows[n + 1].start > start) and not row.confirmed]
    if not used:
        return None
    rates = ", ".join(f"{row.rate} % from {row.start}" for row in used)
    kind = ("Belgian late-payment" if commercial and law == BELGIUM
            else "statutory commercial" if commercial else "statutory")
    return (f"the {kind} interest uses a rate not yet confirmed by a publication ({rates}): check it, then mark it "
            f"confirmed in connector/escalation/{table.file}")
