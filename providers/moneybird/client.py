"""How Moneybird API v2 is called: its HTTP profile (limits, Retry-After, error bodies) and one method per call.

Every path is relative to `{api_url}/api/v2/` (default `https://moneybird.com`) and carries the `.json` suffix; the
administration id is the connection's tenant. The loops, waits, retries and token handling live in
`providers.http`; this module only says what Moneybird is like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from providers.errors import AuthorizationExpired, BadPlatformData, DunningError, NotFound, PlatformError
from providers.http import (
    ApiClient,
    HttpProfile,
    LimitReading,
    NextUrlPaginator,
    RateWindow,
    parse_retry_after,
    short_text,
)
from providers.moneybird import mapping

DEFAULT_API_URL = "https://moneybird.com"
REQUESTS_PER_WINDOW, WINDOW_SECONDS = 150, 300.0
"""150 requests per 5 minutes (Moneybird help centre; whether per token, user or IP is not documented)."""
MAX_IN_FLIGHT = 3
"""Moneybird documents no limit on concurrent calls, only the window above: synchronization batches are read a
few at a time (a modest choice of ours, not a documented figure), always within the window."""

RETRY_AFTER_CAP = WINDOW_SECONDS + 5
"""No 429 wait is longer than one window: a larger Retry-After (an epoch value read against a skewed clock, say)
is capped, and a further 429 simply waits again (bounded by the client's attempts)."""

BARE_429_WAIT = 60.0
"""A 429 without any timing header (Moneybird's nginx has answered with a bare HTML page, picqer/moneybird-php-client
issue #101): wait a minute, so the client's attempts together span the whole 5-minute window."""


@dataclass
class MoneybirdProfile(HttpProfile):
    """Moneybird's HTTP differences from the shared machinery's defaults."""

    windows: Sequence[RateWindow] = field(
        default_factory=lambda: (RateWindow("requests", REQUESTS_PER_WINDOW, WINDOW_SECONDS),)
    )
    max_in_flight: int = MAX_IN_FLIGHT
    platform: str = "Moneybird"
    limit_per_authorisation: bool = True  # "the key — token, user or IP — is not documented" (providers.md)

    def read_limits(self, response: httpx.Response) -> list[LimitReading]:
        """`RateLimit-Remaining`/`-Reset` (epoch seconds). Documented on 429 answers only: never required."""
        remaining = response.headers.get("RateLimit-Remaining")
        if remaining is None or not remaining.strip().isdigit():
            return []
        reset = response.headers.get("RateLimit-Reset", "")
        try:
            reset_at: float | None = float(reset)
        except ValueError:
            reset_at = None
        return [LimitReading("requests", int(remaining), reset_at)]

    def retry_after(self, response: httpx.Response, now: float) -> float | None:
        """`Retry-After` as a delta or as epoch seconds (the OpenAPI text says epoch), else `RateLimit-Reset`."""
        wait = parse_retry_after(response.headers.get("Retry-After"), now)
        if wait is None:
            wait = parse_retry_after(response.headers.get("RateLimit-Reset"), now)
        return BARE_429_WAIT if wait is None else min(wait, RETRY_AFTER_CAP)

    def token_expired(self, response: httpx.Response) -> bool:
        """A missing scope (`No access to [:settings]`) is not cured by a refresh; a rejected token may be."""
        return response.status_code == 401 and not _missing_scope(response)

    def error_message(self, response: httpx.Response) -> str:
        return error_text(response)

    def error_for(self, response: httpx.Response, connection: str) -> DunningError:
        status = response.status_code
        detail = self.error_message(response)
        if "/api/v2/" not in response.request.url.path:
            # the signed-URL file host (a PDF link): its refusals say nothing about our authorisation
            return PlatformError(f"Moneybird's file storage refused the download ({status}): {detail}",
                                 connection=connection, status=status, retryable=status in (500, 502, 503, 504))
        what = f"{response.request.method} {_api_path(response.request.url.path)}"
        if status == 401:
            scope = _missing_scope(response)
            if scope:
                return AuthorizationExpired(
                    f"Moneybird refuses {what}: the authorisation lacks the `{scope}` scope ({detail}); reconnect and "
                    "grant it",
                    connection=connection,
                )
            return AuthorizationExpired(
                f"Moneybird no longer accepts this connection's authorisation ({detail})", connection=connection
            )
        if status == 402:
            return PlatformError(
                f"Moneybird refuses {what} because of the administration's plan ({detail}); upgrade the plan",
                connection=connection, status=status,
            )
        if status == 403:
            return PlatformError(
                f"Moneybird refuses {what}: {detail}. Check that the feature is active and the user has the right",
                connection=connection, status=status,
            )
        if status == 404:
            if _says_record_not_found(response):
                return RecordNotFound(f"Moneybird has no such record for {what} ({detail})", connection=connection,
                                      status=status)
            return NotFound(f"Moneybird has no such record for {what} ({detail})", connection=connection, status=status)
        if status in (400, 422):
            return PlatformError(f"Moneybird refused {what} ({status}): {detail}", connection=connection, status=status)
        return super().error_for(response, connection)


def error_text(response: httpx.Response) -> str:
    """Moneybird's error body as one line: `{"error": "…", "symbolic": …}` or `{"error": {field: [msg]}, …}`."""
    try:
        body = response.json()
    except ValueError:
        return short_text(response.text)
    error = mapping.error_of(body)
    if isinstance(error, Mapping):
        parts = []
        for name, messages in error.items():
            items = messages if isinstance(messages, list) else [messages]
            parts.append(f"{name} {', '.join(str(m) for m in items)}")
        return short_text("; ".join(parts))
    return short_text(str(error)) if error not in (None, "") else short_text(response.text)


def _says_record_not_found(response: httpx.Response) -> bool:
    try:
        return mapping.says_record_not_found(response.json())
    except ValueError:
        return False


def _missing_scope(response: httpx.Response) -> str | None:
    return mapping.missing_scope(error_text(response))


def _api_path(path: str) -> str:
    return path.split("/api/v2/", 1)[-1] if "/api/v2/" in path else path


class RecordNotFound(NotFound):
    """Moneybird's own `record not found` answer: the evidence that a record was deleted."""


class MoneybirdClient:
    """The Moneybird calls this product makes, for one administration."""

    def __init__(self, api: ApiClient, administration_id: str | None) -> None:
        self.api = api
        self.administration_id = administration_id

    def _path(self, resource: str) -> str:
        if not self.administration_id:
            raise DunningError(
                "no Moneybird administration is configured for this connection (set `tenant`; `dunning setup` "
                "lists them)",
                connection=self.api.settings.name,
            )
        return f"{self.administration_id}/{resource}.json"

    def _json(self, response: httpx.Response) -> Any:
        return self.api.json_of(response)

    def administrations(self) -> list[dict[str, Any]]:
        return self.api.get_json(mapping.ADMINISTRATIONS)

    def invoice_versions(self, filter_: str) -> list[dict[str, Any]]:
        """`GET sales_invoices/synchronization`: ids and versions of every matching invoice, unpaged."""
        return self._versions(self._path(mapping.INVOICES_SYNC), mapping.filtered(filter_))

    def invoices(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """`POST sales_invoices/synchronization`: full records of at most 100 ids (more are silently dropped)."""
        return self._records(self._path(mapping.INVOICES_SYNC), ids)

    def contact_versions(self) -> list[dict[str, Any]]:
        """`GET contacts/synchronization` with archived contacts (their open invoices still need a debtor)."""
        return self._versions(self._path(mapping.CONTACTS_SYNC), dict(mapping.WITH_ARCHIVED))

    def _versions(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """One call: the listing is documented as unpaged. A `Link: rel="next"` is followed all the same (no extra
        call without one), because an open invoice missing from this list would be closed in the store."""
        listing: list[dict[str, Any]] = []
        for response in self.api.pages(path, NextUrlPaginator(), params=params):
            page = self._json(response)
            if not isinstance(page, list):
                raise BadPlatformData(f"Moneybird answered GET {_api_path(path)} with something other than a list "
                                      "of ids and versions", connection=self.api.settings.name)
            listing.extend(page)
        return listing

    def contacts(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return self._records(self._path(mapping.CONTACTS_SYNC), ids)

    def _records(self, path: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        if len(ids) > mapping.SYNC_BATCH:
            raise ValueError(f"at most {mapping.SYNC_BATCH} ids per synchronization call")
        # A read sent as POST: safe to repeat after an outage.
        response = self.api.request("POST", path, json=mapping.sync_request(ids), idempotent=True)
        return self._json(response)

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        return self.api.get_json(self._path(mapping.invoice_path(invoice_id)))

    def send_reminders(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """`POST sales_invoices/send_reminders` (answers 200 with body `200`). Never repeated after an outage."""
        self.api.request("POST", self._path(mapping.SEND_REMINDERS),
                         json=mapping.send_reminders_request(entries))

    def add_note(self, invoice_id: str, note: str, *, todo: bool = False) -> Mapping[str, Any]:
        """`POST sales_invoices/{id}/notes` (201 with the note). A 2xx without a readable note still means it was
        made: then its id is simply unknown (`{}`), rather than a failure that would invite adding it twice."""
        response = self.api.request("POST", self._path(mapping.invoice_path(invoice_id, mapping.NOTES)),
                                    json=mapping.note_request(note, todo=todo))
        try:
            body = self._json(response)
        except BadPlatformData:
            return {}
        return body if isinstance(body, Mapping) else {}

    def pdf_location(self, invoice_id: str) -> httpx.Response:
        """`GET download_pdf`: a 302 to a signed URL on another host, valid for 30 seconds."""
        return self.api.request("GET", self._path(mapping.invoice_path(invoice_id, mapping.DOWNLOAD_PDF)),
                                accept_redirect=True)

    def download(self, url: str) -> bytes:
        """Fetch a signed URL without our Authorization header (the bearer token never leaves Moneybird's API) and
        without waiting for Moneybird's call window: the link lives 30 seconds, and the file host is not the API."""
        return self.api.request("GET", url, off_platform=True, headers={"Accept": "application/pdf"}).content

    def workflows(self) -> list[dict[str, Any]]:
        return self.api.get_json(self._path(mapping.WORKFLOWS))

    def document_styles(self) -> list[dict[str, Any]]:
        return self.api.get_json(self._path(mapping.DOCUMENT_STYLES))

    def default_identity(self) -> dict[str, Any]:
        """`GET identities/default` (needs the `settings` scope)."""
        return self.api.get_json(self._path(mapping.DEFAULT_IDENTITY))
