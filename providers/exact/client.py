"""How Exact Online's REST API is called: its HTTP profile (limits, errors) and one method per call.

Paths are relative to `{api_url}/api/v1/` (default `https://start.exactonline.nl`, one host per country); the
division is the first path segment of every call but `current/Me`. Loops, waits, retries and token handling live
in `providers.http`; this module only says what Exact is like.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin

import httpx

from providers.errors import (
    AuthorizationExpired,
    BadPlatformData,
    DunningError,
    NotFound,
    PlatformError,
)
from providers.exact import mapping, odata
from providers.exact.mapping import Query
from providers.http import (
    ApiClient,
    HttpProfile,
    LimitReading,
    NextUrlPaginator,
    RateWindow,
    parse_retry_after,
    short_text,
)

DEFAULT_API_URL = "https://start.exactonline.nl"
CALLS_PER_MINUTE, CALLS_PER_DAY = 60, 5000
"""Per app per division (providers.md); every answer also says how many are left."""
TOKEN_REQUEST_INTERVAL = timedelta(seconds=570)
"""Exact refuses a token request within 570 s of the previous one (the current tokens stay valid)."""


@dataclass
class ExactProfile(HttpProfile):
    """Exact's differences: two limit families with epoch-millisecond resets, 429 without Retry-After, OData
    error bodies, and 500 meaning a business rule (final) unless the body is not Exact's JSON (an outage)."""

    headers: Mapping[str, str] = field(default_factory=lambda: {"Accept": "application/json"})
    """Exact answers Atom XML without it (and refuses `application/xml`)."""
    windows: Sequence[RateWindow] = field(default_factory=lambda: (
        RateWindow("minute", CALLS_PER_MINUTE, 60.0),
        RateWindow("day", CALLS_PER_DAY, 86400.0),
    ))
    platform: str = "Exact Online"
    max_in_flight: int = 1
    """One call at a time: Exact says not to page in parallel (follow `__next`), and documents no concurrency."""
    token_age: Callable[[httpx.Request], timedelta | None] = lambda request: None
    """How long ago the token a request carried was obtained; set by the adapter (None: unknown)."""

    def token_expired(self, response: httpx.Response) -> bool:
        """A 401 is worth one refresh only when Exact could grant it. Within 570 s of the last token request Exact
        refuses any token request, so a 401 on a younger token (revoked consent, a clock far off) is reported at
        once instead of spending a token request Exact is bound to refuse."""
        if response.status_code != 401:
            return False
        age = self.token_age(response.request)
        return age is None or age >= TOKEN_REQUEST_INTERVAL

    def read_limits(self, response: httpx.Response) -> list[LimitReading]:
        readings = []
        for family, window, daily in (("Minutely-", "minute", False), ("", "day", True)):
            remaining = _int(response.headers.get(f"X-RateLimit-{family}Remaining"))
            reset = _int(response.headers.get(f"X-RateLimit-{family}Reset"))
            if remaining is not None or reset is not None:
                readings.append(LimitReading(window, remaining, _epoch_seconds(reset), daily))
        return readings

    def retry_after(self, response: httpx.Response, now: float) -> float | None:
        """A 429 carries only the exceeded family's headers and no Retry-After: wait until that family's reset
        (the spent one's, should both families come); without any, a Retry-After or else the minute."""
        readings = self.read_limits(response)
        resets = {r.window: r.reset_at for r in readings if r.reset_at is not None}
        spent = [resets[r.window] for r in readings if r.remaining == 0 and r.window in resets]
        reset = max(spent) if spent else resets.get("minute", resets.get("day"))
        if reset is not None:
            return max(0.0, reset - now)
        given = parse_retry_after(response.headers.get("Retry-After"), now)
        return given if given is not None else 60.0

    def is_daily_limit(self, response: httpx.Response) -> bool:
        return response.headers.get("X-RateLimit-Remaining") == "0"

    def error_message(self, response: httpx.Response) -> str:
        return error_text(response)

    def error_for(self, response: httpx.Response, connection: str) -> DunningError:
        status = response.status_code
        detail = self.error_message(response)
        what = f"{response.request.method} {_api_path(response.request.url.path)}"
        if status == 401:
            return AuthorizationExpired(f"Exact Online no longer accepts this connection's authorisation ({detail})",
                                        connection=connection)
        if status == 403:
            return PlatformError(
                f"Exact Online refused {what}: {detail}. The app lacks the right for this in the Exact App Center, "
                "or the user has no access to this division",
                connection=connection, status=status,
            )
        if status == 404:
            return NotFound(f"Exact Online does not know {what} ({detail})", connection=connection, status=status)
        if status == 500 and _odata_message(response) is not None:
            return PlatformError(f"Exact Online refused {what}: {detail}", connection=connection, status=status)
        if status >= 500:
            if status == 503 and not response.content:
                detail = "Exact Online is in maintenance"
            return PlatformError(f"Exact Online failed ({status}) on {what}: {detail}", connection=connection,
                                 status=status, retryable=status in (500, 502, 503, 504))
        return PlatformError(f"Exact Online refused {what} ({status}): {detail}", connection=connection, status=status)


def error_text(response: httpx.Response) -> str:
    """`error.message.value` of Exact's OData error body, else the start of whatever came back."""
    message = _odata_message(response)
    if message is not None:
        return short_text(message)
    if not response.content:
        return f"HTTP {response.status_code} without details"
    return short_text(response.text)


def _odata_message(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return odata.error_message(body)


def _epoch_seconds(reset: int | None) -> float | None:
    """Exact's resets are epoch milliseconds; a value in epoch seconds is read as such rather than as 1970."""
    if reset is None:
        return None
    return reset / 1000 if reset > 10**11 else float(reset)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _api_path(path: str) -> str:
    """The entity set, without the host and division (what a bookkeeper can look up in Exact's API docs)."""
    parts = path.split("/api/v1/", 1)[-1].split("/", 1)
    return parts[-1] if parts[0].isdigit() else "/".join(parts)


class ExactClient:
    """One method per Exact call; answers come back as rows (amounts as Decimal)."""

    def __init__(self, api: ApiClient, division: str | None) -> None:
        self.api = api
        self.division = division

    def _path(self, resource: str) -> str:
        if self.division is None:
            raise PlatformError("no Exact division is configured for this connection (set `tenant`)",
                                connection=self.api.settings.name)
        return f"{self.division}/{resource}"

    def _json(self, response: httpx.Response) -> Any:
        return self.api.json_of(response)

    def _rows(self, payload: Any, response: httpx.Response) -> list[dict[str, Any]]:
        try:
            return odata.records(payload)
        except ValueError:
            raise BadPlatformData(f"Exact Online answered {_api_path(response.request.url.path)} without an OData "
                                  "envelope", connection=self.api.settings.name) from None

    def _next_url(self, response: httpx.Response) -> str | None:
        """`__next` is an absolute URL; one written relative to the answered URL is resolved against it."""
        link = odata.next_link(self._json(response))
        return urljoin(str(response.request.url), link) if link else None

    def pages(self, query: Query, filter: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every page of a query, following `__next` (never `$skip`, never in parallel)."""
        paginator = NextUrlPaginator(next_url=self._next_url)
        for response in self.api.pages(self._path(query.path), paginator, params=query.params(filter)):
            yield self._rows(self._json(response), response)

    def all(self, query: Query, filter: str | None = None) -> list[dict[str, Any]]:
        return [row for page in self.pages(query, filter) for row in page]

    def changes(self, query: Query, after: int) -> list[dict[str, Any]]:
        """A sync endpoint from a Timestamp on (`gt 1` the first time), in Timestamp order."""
        return self.all(query, mapping.timestamp_filter(after))

    def by_ids(self, query: Query, ids: Sequence[str], extra: str | None = None) -> list[dict[str, Any]]:
        """Rows whose key is one of `ids`, in batches that keep the URL within Exact's 6,000 characters."""
        rows = []
        for batch in odata.batches([odata.guid(i) for i in dict.fromkeys(ids)], field=query.key):
            condition = odata.any_of(query.key, batch)
            rows += self.all(query, f"{extra} and {condition}" if extra else condition)
        return rows

    def open_receivables_of(self, numbers: Sequence[int], *, open_only: bool = True) -> list[dict[str, Any]]:
        """Open (or all) terms of the given invoice numbers (bulk receivables filter on InvoiceNumber, not the
        entry id)."""
        rows = []
        for batch in odata.batches([str(n) for n in sorted(set(numbers))], field=mapping.INVOICE_NUMBER, most=100):
            rows += self.all(mapping.OPEN_RECEIVABLES,
                             mapping.invoice_numbers_filter([int(n) for n in batch], open_only=open_only))
        return rows

    # -- single calls -----------------------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        response = self.api.request("GET", mapping.ME.path, params=mapping.ME.params())
        rows = self._rows(self._json(response), response)
        if not rows:
            raise BadPlatformData("Exact Online's current/Me answered no user", connection=self.api.settings.name)
        return rows[0]

    def divisions(self, current: int) -> list[dict[str, Any]]:
        """Reachable divisions: system/Divisions, or hrm/Divisions where the licence refuses the first (how it
        refuses is not documented, so any definite refusal leads to the other; an outage does not)."""
        for query in (mapping.SYSTEM_DIVISIONS, mapping.HRM_DIVISIONS):
            paginator = NextUrlPaginator(next_url=self._next_url)
            try:
                return [row for response in self.api.pages(f"{current}/{query.path}", paginator, params=query.params())
                        for row in self._rows(self._json(response), response)]
            except (PlatformError, AuthorizationExpired) as exc:  # some refusals of a licence may come as a 401
                if (isinstance(exc, PlatformError) and exc.retryable) or query is mapping.HRM_DIVISIONS:
                    raise
        return []

    def sales_invoice(self, invoice_id: str) -> dict[str, Any] | None:
        rows = self.all(mapping.SALES_INVOICE, mapping.ids_filter(mapping.SALES_INVOICE, [invoice_id]))
        return rows[0] if rows else None

    def print_invoice(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST PrintedSalesInvoices (never retried: a repeat could mail twice)."""
        response = self.api.request("POST", self._path(mapping.PRINTED_SALES_INVOICES), json=body)
        return self._rows(self._json(response), response)[0]

    def add_note(self, body: Mapping[str, Any]) -> dict[str, Any]:
        response = self.api.request("POST", self._path(mapping.COMMUNICATION_NOTES), json=body)
        return self._rows(self._json(response), response)[0]

    def notes_of(self, account_id: str) -> list[dict[str, Any]]:
        return self.all(mapping.NOTES_OF_ACCOUNT, mapping.ids_filter(mapping.NOTES_OF_ACCOUNT, [account_id]))

    def documents_of(self, invoice_id: str) -> list[dict[str, Any]]:
        return self.all(mapping.DOCUMENTS_OF_INVOICE, mapping.ids_filter(mapping.DOCUMENTS_OF_INVOICE, [invoice_id]))

    def attachments_of(self, document_id: str) -> list[dict[str, Any]]:
        return self.all(mapping.ATTACHMENTS_OF_DOCUMENT, mapping.ids_filter(mapping.ATTACHMENTS_OF_DOCUMENT, [document_id]))

    def download(self, url: str) -> httpx.Response:
        """The attachment file: its `Url` + `&Download=1`, with the bearer token (without it Exact shows a login
        page)."""
        if httpx.URL(url).host != httpx.URL(self.api.profile.base_url).host:
            # the bearer token goes only to the Exact host this connection talks to
            raise PlatformError(f"Exact Online gave an attachment address on another host ({httpx.URL(url).host}); "
                                "not downloading it with this connection's token", connection=self.api.settings.name)
        return self.api.request("GET", mapping.download_url(url), headers={"Accept": "*/*"})
