"""Exact Online's OData v2 dialect: the `d` envelope, `/Date(ms)/` dates, GUID and Int64 literals, URL budgets.

Exact answers a collection as `{"d": {"results": [...], "__next": url}}`, a single entity as `{"d": {...}}`, and a
collection asked with `$top` ≤ the page size as a bare `{"d": [...]}`. Amounts are JSON numbers, so bodies are
parsed with `Decimal` for floats (a float would lose the cents); Int64 values (`Timestamp`, `HID`) arrive as strings.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from providers.dates import is_ms_date, parse_ms_date

_AMSTERDAM = ZoneInfo("Europe/Amsterdam")

MAX_URL = 6000
"""Exact refuses longer URLs; id batches stay well below it."""
GUID_BATCH = 40
"""GUIDs per `… eq guid'…' or …` filter (about 2,500 encoded characters)."""


def records(payload: Any) -> list[dict[str, Any]]:
    """The rows of any of Exact's three collection shapes."""
    body = payload.get("d") if isinstance(payload, dict) else None
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        results = body.get("results")
        if isinstance(results, list):
            return results
        return [body]
    raise ValueError("not an OData answer (no 'd' envelope)")


def next_link(payload: Any) -> str | None:
    body = payload.get("d") if isinstance(payload, dict) else None
    return body.get("__next") or None if isinstance(body, dict) else None


def parse_date(value: Any) -> date | None:
    """A date-only field (`DueDate`, `InvoiceDate`): midnight UTC as `/Date(ms)/`."""
    moment = _parse_ms(value)
    return moment.date() if moment is not None else None


def parse_local_datetime(value: Any) -> datetime | None:
    """A date-time field (`Created`, `Modified`): Dutch local time written as if it were UTC → aware UTC."""
    moment = _parse_ms(value)
    if moment is None:
        return None
    if not is_ms_date(value) and datetime.fromisoformat(str(value)).tzinfo is not None:
        return moment  # an ISO text naming its own offset means what it says
    return moment.replace(tzinfo=_AMSTERDAM).astimezone(UTC)


def _parse_ms(value: Any) -> datetime | None:
    """`/Date(ms)/` as Exact writes it; an ISO 8601 text (as a proxy or newer endpoint might send) is read alike."""
    if value is None or value == "":
        return None
    if is_ms_date(value):
        return parse_ms_date(value)[0]
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an Exact /Date(ms)/ value") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def dutch_day(moment: datetime) -> date:
    """The day it is in the Netherlands at `moment`: Exact's dates are Dutch local time (a note written at 00:30 in
    Amsterdam belongs to that day, not the UTC day before)."""
    return moment.astimezone(_AMSTERDAM).date()


def format_date(day: date) -> str:
    """The JSON form Exact expects for a date in a POST body."""
    return f"/Date({int(datetime.combine(day, time(), UTC).timestamp() * 1000)})/"


def parse_int64(value: Any) -> int | None:
    """`Timestamp`, `HID`: Int64 values Exact sends as JSON strings (tolerating numbers)."""
    if value is None or value == "":
        return None
    return int(str(value).removesuffix("L"))


def guid(value: str) -> str:
    """A GUID literal for `$filter`; refuses anything that is not a GUID (never splice raw text into a query)."""
    return f"guid'{uuid.UUID(str(value))}'"


def int64_literal(value: int) -> str:
    return f"{int(value)}L"


def any_of(field: str, literals: Sequence[str]) -> str:
    """`(F eq a or F eq b …)`."""
    return "(" + " or ".join(f"{field} eq {literal}" for literal in literals) + ")"


def batches(literals: Iterable[str], *, field: str, budget: int = 3000, most: int = GUID_BATCH) -> Iterator[list[str]]:
    """Split literals into `any_of` groups whose URL-encoded filter stays within `budget` characters."""
    batch: list[str] = []
    used = 0
    for literal in literals:
        cost = len(quote(f" or {field} eq {literal}", safe=""))
        if batch and (used + cost > budget or len(batch) >= most):
            yield batch
            batch, used = [], 0
        batch.append(literal)
        used += cost
    if batch:
        yield batch


def error_message(body: Any) -> str | None:
    """The message of an OData error body, `{"error": {"message": {"value": "…"}}}` (or a plain `message` text)."""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, dict):
        message = message.get("value")
    return str(message) if message else None
