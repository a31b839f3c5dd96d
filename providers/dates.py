"""Microsoft's JSON date, `/Date(ms)/` or `/Date(ms±hhmm)/`, as Xero and Exact Online both write it: read once here.

The number is milliseconds since 1970-01-01 UTC; the optional `±hhmm` says which local offset the writer meant
(Xero uses it to carry the organisation's calendar day; Exact never writes it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:([+-])(\d{2})(\d{2}))?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_ms_date(value: Any) -> bool:
    return isinstance(value, str) and _MS_DATE.match(value.strip()) is not None


def parse_ms_date(value: Any) -> tuple[datetime, timedelta]:
    """`/Date(ms±hhmm)/` → (the UTC instant, the offset it was written with; zero when none)."""
    match = _MS_DATE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a /Date(…)/ value")
    millis, sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours or 0), minutes=int(minutes or 0)) * (-1 if sign == "-" else 1)
    return _EPOCH + timedelta(milliseconds=int(millis)), offset
