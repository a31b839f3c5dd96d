"""How Xero is called: its HTTP profile (limits, headers, error bodies) and one method per endpoint we use.

Everything mechanical (retries, waiting, token refresh, paging loop) is `providers.http`'s; this module only says
what Xero's requests and answers look like.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from providers.errors import (
    AuthorizationExpired,
    BadPlatformData,
    DunningError,
    NotFound,
    PlatformError,
)
from providers.http import (
    ApiClient,
    HttpProfile,
    LimitReading,
    Paginator,
    json_body,
    short_text,
)
from providers.streams import first_accepted
from providers.xero import mapping
from providers.xero.mapping import (
    ACCOUNTING,
    error_messages,
    if_modified_since,
    page_count,
    problem_detail,
    server_clock,
)

DEFAULT_API_URL = "https://api.xero.com"
PAGE_SIZE = 1000
"""The largest `pageSize` Xero allows."""
DEFAULT_PAGE_SIZE = 100
"""Xero's page size when `pageSize` is not honoured: only a page shorter than this is surely the last."""
IDS_PER_CALL = 50
"""GUIDs per `IDs=` filter: longer URLs answer 404 (providers.md: at most ~50)."""
CONCURRENT_CALLS = 5
"""Xero allows 5 calls in flight per organisation: further pages and id batches are read that many at once."""

def _next_minute(http_date: str | None) -> float | None:
    """The start of the minute after an HTTP `Date`, as epoch seconds."""
    if not http_date:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(http_date).timestamp()
    except (TypeError, ValueError):
        return None
    return moment - moment % 60 + 60


def _detail(response: httpx.Response) -> str:
    """Xero's problem `Detail` of a 401/403 (`TokenExpired: …`, `AuthorizationUnsuccessful`, …), or ''.

    Read as `Detail` (Xero) or `detail` (RFC 7807 spelling), in case a gateway answers in the standard's casing."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    return problem_detail(body)


@dataclass
class XeroProfile(HttpProfile):
    """Xero's limits per organisation: 60 calls a minute, 5,000 a day (1,000 on the Starter tier), 5 at once.

    The shared limiter holds at most 5 calls in flight. The app-wide 10,000/minute is shared with other
    connections of the app: it is read from `X-AppMinLimit-Remaining`, not counted here.
    """

    tenant: str | None = None
    max_in_flight: int = CONCURRENT_CALLS
    platform: str = "Xero"

    def read_limits(self, response: httpx.Response) -> list[LimitReading]:
        """The three budgets Xero reports on every answer. A spent minute budget resets at the next minute by the
        answer's `Date` (assumption: Xero's fixed windows are aligned to the minute; if not, the 429 that follows
        carries Retry-After); Xero says nothing about when its day resets."""
        minute_reset = _next_minute(response.headers.get("Date"))
        readings = []
        for header, window, daily in (("X-MinLimit-Remaining", "minute", False),
                                      ("X-DayLimit-Remaining", "day", True),
                                      ("X-AppMinLimit-Remaining", "appminute", False)):
            value = (response.headers.get(header) or "").strip()
            if value.isdigit():
                readings.append(LimitReading(window, int(value), reset_at=None if daily else minute_reset,
                                             daily=daily))
        return readings

    def is_daily_limit(self, response: httpx.Response) -> bool:
        """`X-Rate-Limit-Problem: day` (any case; `daily` too). Without that header, a 429 saying
        `X-DayLimit-Remaining: 0` still stops the run: `read_limits` reports it to the shared limiter."""
        return response.headers.get("X-Rate-Limit-Problem", "").strip().lower() in ("day", "daily")

    def token_expired(self, response: httpx.Response) -> bool:
        """A 401 is worth one refresh unless Xero says a scope is missing (`AuthorizationUnsuccessful`).

        Xero says `TokenExpired: …` for an expired token; a 401 with another or no readable body (a revoked
        access token, an unfamiliar wording) gets one refresh too: a refused refresh says `invalid_grant`,
        which asks for re-authorisation anyway, so at most one token call is spent."""
        return response.status_code == 401 and not _detail(response).startswith(mapping.MISSING_SCOPE)

    def error_message(self, response: httpx.Response) -> str:
        try:
            messages = error_messages(json.loads(response.content))
        except ValueError:
            messages = []
        return short_text("; ".join(messages)) if messages else short_text(response.text)

    def error_for(self, response: httpx.Response, connection: str) -> DunningError:
        status, detail = response.status_code, self.error_message(response)
        what = f"{response.request.method} {response.request.url.path}"
        if status == 400:
            if mapping.QUERY_PARSE_ERROR in response.text:
                return PlatformError(f"Xero could not read the query of {what} ({detail}); please report this "
                                     "as a bug in Dunning Connector", connection=connection, status=status)
            return PlatformError(f"Xero refused {what}: {detail}", connection=connection, status=status)
        if status == 401:
            problem = _detail(response)
            if problem.startswith(mapping.MISSING_SCOPE):
                return AuthorizationExpired(
                    "Xero refused the call for a missing permission (AuthorizationUnsuccessful): authorise the app "
                    "again with the scopes this connection needs", connection=connection)
            return AuthorizationExpired(f"Xero no longer accepts this connection's authorisation ({detail})",
                                        connection=connection)
        if status == 403:
            return AuthorizationExpired(
                f"Xero refused access to organisation {self.tenant or '(no tenant id configured)'} "
                f"({detail}): it is no longer connected to this app, or the tenant id is wrong",
                connection=connection)
        if status == 404:
            return NotFound(f"Xero has no such record ({what})", connection=connection, status=status)
        if status == 503:
            return PlatformError(f"Xero is unavailable for {what} ({detail}: maintenance, or the organisation is "
                                 "offline); try again later", connection=connection, status=status, retryable=True)
        return super().error_for(response, connection)


@dataclass(frozen=True)
class Page:
    """One answer of a listing: its records and the server's clock (`DateTimeUTC`) when it answered."""

    records: list[dict[str, Any]]
    server_time: datetime | None
    page_count: int | None = None


def _server_time(body: dict[str, Any], response: httpx.Response) -> datetime | None:
    """Xero's clock in the answer, else the HTTP `Date` header, else None."""
    stamp = server_clock(body)
    if stamp is None and response.headers.get("Date"):
        try:
            stamp = email.utils.parsedate_to_datetime(response.headers["Date"])
        except (TypeError, ValueError):
            stamp = None
    return stamp


def _page(response: httpx.Response, key: str) -> Page:
    body = json_body(response)
    records = body.get(key) if isinstance(body, dict) else None
    if not isinstance(records, list):
        raise BadPlatformData(f"Xero's answer to {response.request.url.path} has no {key} list")
    return Page([r for r in records if isinstance(r, dict)], _server_time(body, response), page_count(body))


@dataclass
class XeroPaginator(Paginator):
    """`page=N` until the envelope's `pageCount` is reached (or a page comes back empty).

    Without a `pagination` envelope, a page is the last only when it is shorter than Xero's default of 100: a
    server that caps `pageSize` below the 1,000 asked for must not end the listing after its first page.
    With `pageCount` on the first answer, the further pages are known at once and read in parallel."""

    key: str
    parallel: bool = True

    def further_pages(self, response: httpx.Response, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        page = _page(response, self.key)
        if not self.parallel or page.page_count is None or not page.records:
            return None
        number = int(params.get(mapping.PAGE, 1))
        return [{**params, mapping.PAGE: n} for n in range(number + 1, page.page_count + 1)]

    def next_page(self, response: httpx.Response, params: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
        page = _page(response, self.key)
        number = int(params.get(mapping.PAGE, 1))
        if not page.records:
            return None
        if page.page_count is not None:
            if number >= page.page_count:
                return None
        elif len(page.records) < min(PAGE_SIZE, DEFAULT_PAGE_SIZE):
            return None
        return str(response.request.url.copy_with(query=None)), {**params, mapping.PAGE: number + 1}


def _batches(ids: Iterable[str], size: int = IDS_PER_CALL) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in ids:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class XeroClient:
    """The Xero calls Dunning Connector makes, each documented by the endpoint it uses."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.zoned_since = True
        """Send `If-Modified-Since` with its `Z` (spec, SDKs); False once a server refused that form."""

    def connections(self) -> list[dict[str, Any]]:
        """`GET /connections`: the organisations this token can reach."""
        body = json_body(self.api.request("GET", mapping.CONNECTIONS))
        if not isinstance(body, list):
            raise BadPlatformData("Xero's /connections answer is not a list")
        return body

    def _listing(self, path: str, key: str, params: dict[str, Any], since: datetime | None, *,
                 parallel: bool = True) -> Iterator[Page]:
        """Every page; `If-Modified-Since` is sent as `…Z` (RFC 3339, as the spec and the SDKs write it), or
        without the zone (`2026-11-23T10:00:00`, as providers.md writes it) when a server refused the first form
        with a 400 before its first page: which forms Xero accepts is not confirmed, so both work, and the one that
        worked is sent first from then on."""

        def read(zoned: bool | None) -> Iterator[Page]:
            headers = {"If-Modified-Since": if_modified_since(since, zoned=zoned)} if since and zoned is not None \
                else None
            for response in self.api.pages(path, XeroPaginator(key, parallel), headers=headers,
                                           params={**params, mapping.PAGE: 1, mapping.PAGE_SIZE_PARAM: PAGE_SIZE}):
                if zoned is not None:
                    self.zoned_since = zoned
                yield _page(response, key)

        forms = [self.zoned_since, not self.zoned_since] if since else [None]
        return first_accepted(forms, read, refused=lambda exc: isinstance(exc, PlatformError) and exc.status == 400)

    def sales_invoices(self, *, statuses: Sequence[str] | None, since: datetime | None) -> Iterator[Page]:
        """`GET /Invoices?where=Type=="ACCREC"[&Statuses=…]&order=UpdatedDateUTC ASC&page=N&pageSize=1000`,
        with `If-Modified-Since` for incremental reads (then without a status filter, so leavers come back)."""
        return self._listing(f"{ACCOUNTING}{mapping.INVOICES}", mapping.INVOICES_KEY,
                             mapping.sales_invoice_params(statuses), since)

    def invoices_by_id(self, ids: Iterable[str]) -> Iterator[list[dict[str, Any]]]:
        """`GET /Invoices?IDs=…` in batches of 50 (no `page`: one answer per batch), several at once."""
        for response in self.api.in_order(
            lambda batch=batch: self.api.request("GET", f"{ACCOUNTING}{mapping.INVOICES}?{mapping.ids_query(batch)}")
            for batch in _batches(ids)
        ):
            yield _page(response, mapping.INVOICES_KEY).records

    def contacts(self, *, since: datetime | None) -> Iterator[Page]:
        """`GET /Contacts?page=N&pageSize=1000&includeArchived=true`, optionally only those changed `since`.

        One page at a time: the sync may stop reading all contacts halfway (ids are cheaper for a large book with
        few debtors), and pages read ahead would be calls spent for nothing."""
        return self._listing(f"{ACCOUNTING}{mapping.CONTACTS}", mapping.CONTACTS_KEY, dict(mapping.WITH_ARCHIVED),
                             since, parallel=False)

    def contacts_by_id(self, ids: Iterable[str]) -> Iterator[list[dict[str, Any]]]:
        """`GET /Contacts?IDs=…&includeArchived=true` in batches of 50, several at once."""
        for response in self.api.in_order(
            lambda batch=batch: self.api.request(
                "GET", f"{ACCOUNTING}{mapping.CONTACTS}?{mapping.ids_query(batch, mapping.WITH_ARCHIVED)}")
            for batch in _batches(ids)
        ):
            yield _page(response, mapping.CONTACTS_KEY).records

    def invoice_pdf(self, invoice_id: str) -> bytes:
        """`GET /Invoices/{id}` with `Accept: application/pdf` (Xero has no separate PDF path)."""
        response = self.api.request("GET", f"{ACCOUNTING}{mapping.invoice_path(invoice_id)}",
                                    headers={"Accept": "application/pdf"})
        if not response.content.startswith(b"%PDF"):
            raise BadPlatformData(f"Xero sent no PDF for invoice id {invoice_id} "
                                  f"({response.headers.get('Content-Type', 'no content type')})")
        return response.content

    def online_invoice_url(self, invoice_id: str) -> str | None:
        """`GET /Invoices/{id}/OnlineInvoice` → `OnlineInvoices[0].OnlineInvoiceUrl`."""
        path = f"{ACCOUNTING}{mapping.invoice_path(invoice_id, mapping.ONLINE_INVOICE)}"
        found = _page(self.api.request("GET", path), mapping.ONLINE_INVOICES_KEY).records
        return mapping.online_invoice_url(found)

    def email_invoice(self, invoice_id: str, *, idempotency_key: str) -> None:
        """`POST /Invoices/{id}/Email` with `{}` and an `Idempotency-Key` → 204: Xero mails its invoice e-mail."""
        self.api.request("POST", f"{ACCOUNTING}{mapping.invoice_path(invoice_id, mapping.EMAIL)}", json={},
                         idempotency_key=idempotency_key)

    def add_history(self, invoice_id: str, details: str, *, idempotency_key: str) -> dict[str, Any]:
        """`PUT /Invoices/{id}/History` with one record; returns the record Xero created ({} if it echoes none).

        Xero answers 200 with the created record (spec); a 2xx without that echo still means it was written."""
        response = self.api.request("PUT", f"{ACCOUNTING}{mapping.invoice_path(invoice_id, mapping.HISTORY)}",
                                    json=mapping.history_body(details),
                                    idempotency_key=idempotency_key)
        try:
            records = _page(response, mapping.HISTORY_KEY).records
        except BadPlatformData:
            records = []
        return records[0] if records else {}

    def history(self, invoice_id: str) -> list[dict[str, Any]]:
        """`GET /Invoices/{id}/History`."""
        return _page(self.api.request("GET", f"{ACCOUNTING}{mapping.invoice_path(invoice_id, mapping.HISTORY)}"),
                     mapping.HISTORY_KEY).records

    def reminders_enabled(self) -> bool | None:
        """`GET /InvoiceReminders/Settings` → `InvoiceReminders[0].Enabled` (None when Xero does not say)."""
        found = _page(self.api.request("GET", f"{ACCOUNTING}{mapping.REMINDER_SETTINGS}"),
                      mapping.REMINDERS_KEY).records
        return mapping.reminders_enabled(found)
