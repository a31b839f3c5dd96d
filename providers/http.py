"""The one HTTP machinery every adapter uses: auth, rate limits, retries, paging and error mapping.

An adapter declares its platform's differences in an `HttpProfile` (base URL, headers, rate windows, how to read
limit headers and error bodies) and calls `ApiClient.request` / `ApiClient.pages`; it never sleeps, retries or
refreshes a token itself. Time is injected (`clock`, `sleep`) so tests and benchmarks run on a virtual clock.

Retry policy (as stripe-python's): a 429 is always retried after the wait the platform asks for (the call was
refused, so repeating it cannot do it twice); outages (5xx, timeouts, broken connections) are retried with
jittered exponential backoff only when the call is idempotent (a read, or a write carrying an idempotency key);
every other 4xx is final. Attempts are bounded.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from providers.base import ConnectionSettings, OAuthEndpoints, Sleep, Ticks, Token, TokenStore
from providers.errors import (
    AuthorizationExpired,
    BadPlatformData,
    DunningError,
    NotFound,
    PlatformError,
    RateLimited,
    redact,
)
from providers.parallel import InOrder, first_started, in_order, started
from providers.ratelimit import (  # noqa: F401  (adapters import them here)
    LimitReading,
    OnWait,
    RateLimiter,
    RateWindow,
    shared_budget,
)

log = logging.getLogger(__name__)

_parsed: weakref.WeakKeyDictionary[httpx.Response, Any] = weakref.WeakKeyDictionary()
T = TypeVar("T")

# --- what a platform declares -------------------------------------------------------------------------------------


@dataclass
class HttpProfile:
    """A platform's HTTP differences. Subclass and override the hooks for quirks; keep loops out of adapters."""

    base_url: str
    headers: Mapping[str, str] = field(default_factory=lambda: {"Accept": "application/json"})
    windows: Sequence[RateWindow] = ()
    max_in_flight: int = 1
    """Calls the platform allows at once per tenant (Xero: 5); 1 reads every page and batch in turn."""
    limit_per_authorisation: bool = False
    """The platform may count its windows per token or user rather than per tenant: connections sharing one
    authorisation (`token_name`) then share one budget."""
    platform: str = "the platform"
    """The platform's name, for what a person is shown while a call waits ("Xero's rate limit")."""
    max_attempts: int = 5
    timeout: float = 30.0
    max_wait: float = 15 * 60
    """The longest single wait (Retry-After or a window reset) before giving up for this run."""

    def read_limits(self, response: httpx.Response) -> list[LimitReading]:
        """The platform's rate-limit headers, if any."""
        return []

    def retry_after(self, response: httpx.Response, now: float) -> float | None:
        """Seconds to wait after a 429: `Retry-After` as seconds, an HTTP date, or an epoch timestamp."""
        return parse_retry_after(response.headers.get("Retry-After"), now)

    def is_daily_limit(self, response: httpx.Response) -> bool:
        """A 429 that waiting minutes will not cure."""
        return False

    def token_expired(self, response: httpx.Response) -> bool:
        """A 401 that one token refresh may cure (as opposed to revoked consent or a missing scope)."""
        return response.status_code == 401

    def error_message(self, response: httpx.Response) -> str:
        """The platform's own explanation from an error body, short and safe to show."""
        return short_text(response.text)

    def error_for(self, response: httpx.Response, connection: str) -> DunningError:
        """Map a failed response onto the error hierarchy; override for platforms with special codes."""
        status = response.status_code
        detail = self.error_message(response)
        what = f"{response.request.method} {response.request.url.path}"
        if status == 401:
            return AuthorizationExpired(
                f"the platform no longer accepts this connection's authorisation ({detail})", connection=connection
            )
        if status == 403:
            return PlatformError(
                f"access refused for {what}: {detail}. Check the app's rights and that the company is still "
                "connected",
                connection=connection,
                status=status,
            )
        if status == 404:
            return NotFound(f"not found: {what} ({detail})", connection=connection, status=status)
        if status >= 500:
            return PlatformError(
                f"the platform failed ({status}) on {what}: {detail}", connection=connection, status=status,
                retryable=status in (500, 502, 503, 504),
            )
        return PlatformError(f"the platform refused {what} ({status}): {detail}", connection=connection, status=status)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Read Retry-After as delta seconds, an epoch timestamp (values above 10^9, as Moneybird's docs say) or a date."""
    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - now)
    if number > 1e9:
        return max(0.0, number - now)
    return max(0.0, number)


def short_text(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return redact(text[:limit] + ("…" if len(text) > limit else "")) or "no details given"


def authlib_client() -> tuple[Any, type[Exception]]:
    """authlib's httpx OAuth2 client, imported without its nudge towards the httpx2 fork (noise in a cron log)."""
    with warnings.catch_warnings():
        import authlib.deprecate  # noqa: F401  (it installs an "always" filter; ours must come after it)

        warnings.simplefilter("ignore", DeprecationWarning)
        from authlib.integrations.base_client import OAuthError
        from authlib.integrations.httpx_client import OAuth2Client
    return OAuth2Client, OAuthError


def oauth_client(settings: ConnectionSettings, endpoints: OAuthEndpoints, *,
                 transport: httpx.BaseTransport | None = None, authorize: bool = False) -> Any:
    """The one authlib OAuth2 client for a connection: refreshing tokens here, and (with `authorize`, adding the
    scopes, redirect URI and PKCE) the consent URL and code exchange of `dunning setup`."""
    OAuth2Client, _ = authlib_client()
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    consent: dict[str, Any] = {}
    if authorize:
        consent = {"scope": " ".join(endpoints.scopes) or None, "redirect_uri": settings.redirect_uri,
                   "code_challenge_method": "S256" if endpoints.pkce else None}
    return OAuth2Client(
        client_id=settings.client_id,
        client_secret=secret,
        token_endpoint_auth_method=endpoints.token_auth if secret else "none",
        transport=transport,
        timeout=30.0,
        **consent,
    )


# --- tokens -------------------------------------------------------------------------------------------------------

_REAUTHORISE_ERRORS = {"invalid_grant", "unauthorized_client", "invalid_request"}


class TokenKeeper:
    """Hands out a valid access token, refreshing it safely when rotating refresh tokens are involved.

    The sequence protects against losing a rotated refresh token: take the per-connection cross-process lock,
    reload (another process may have refreshed already), spend the refresh token, *persist the new token*, and only
    then use it. authlib does the token-endpoint mechanics.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        oauth: OAuthEndpoints,
        store: TokenStore,
        *,
        clock: Ticks,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.settings = settings
        self.oauth = oauth
        self.store = store
        self._clock = clock
        self._transport = transport
        self._token: Token | None = None
        self._refused_early_until: datetime | None = None
        self._lock = threading.RLock()
        """One refresher per connection within this process too (the store's lock is per process)."""
        self.refreshes = 0

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def current(self) -> Token:
        with self._lock:
            return self._current()

    def _current(self) -> Token:
        if self._token is None:
            self._token = self.store.load(self.settings.token_name)
        if self._token is None:
            raise AuthorizationExpired("no authorisation is stored for this connection", connection=self.settings.name)
        now = self._now()
        told_too_early = self._refused_early_until is not None and now < self._refused_early_until
        if self._token.expires_within(self.oauth.refresh_before_expiry, now=now) and not told_too_early:
            self.refresh(stale=self._token)
        return self._token

    def refresh(self, *, stale: Token) -> Token:
        """A fresh token in place of `stale`, kept for the calls that follow (also when a 401 asked for it)."""
        with self._lock:
            self._token = self._refresh(stale)
            return self._token

    def _refresh(self, stale: Token) -> Token:
        name = self.settings.token_name
        with self.store.lock(name):  # the caller holds `_lock`
            stored = self.store.load(name)
            if stored is not None and stored.access_token != stale.access_token:
                return stored  # another process refreshed while we waited for the lock
            token = stored or stale
            if token.refresh_token is None:
                raise AuthorizationExpired(
                    "the access token expired and the platform gave no refresh token", connection=name
                )
            self.store.begin_refresh(name, token, now=self._now())
            try:
                payload = self._call_token_endpoint(token)
            except AuthorizationExpired as exc:
                refused = self.store.refresh_refused(name, exc)  # names an interrupted earlier refresh
                self.store.cancel_refresh(name)  # a definite answer, not an interruption: the next run must not say so
                raise refused from None
            except PlatformError as exc:
                if not exc.retryable:  # a definite refusal: nothing was spent
                    self.store.cancel_refresh(name)
                raise
            if payload is None:  # the platform says the current token is still good (Exact's 570 s rule)
                self.store.cancel_refresh(name)
                # Not again before it expires: every call in the refresh window would otherwise ask once more.
                self._refused_early_until = token.expires_at
                return token
            self._refused_early_until = None
            new = Token.from_response(payload, now=self._now())
            if new.refresh_token is None:  # a platform that does not rotate keeps the old refresh token valid
                new = new.model_copy(update={"refresh_token": token.refresh_token})
            self.store.save(name, new)
            self.store.finish_refresh(name, new)
            self.refreshes += 1
            log.info("refreshed the access token", extra={"connection": name})
            return new

    def _call_token_endpoint(self, token: Token) -> dict[str, Any] | None:
        _, OAuthError = authlib_client()
        client = oauth_client(self.settings, self.oauth, transport=self._transport)
        assert token.refresh_token is not None
        try:
            with client:
                return dict(
                    client.refresh_token(self.oauth.token_url, refresh_token=token.refresh_token.get_secret_value())
                )
        except OAuthError as exc:
            description = exc.description or ""
            # Exact refuses a refresh within 570 s of the last with `access_denied` ("Rate limit exceeded:
            # access_token not expired", header `Reason: TooEarlyToRefreshTokens`): while the access token is still
            # good, any `access_denied` is taken for that (the wording is the platform's, not a contract)
            if exc.error == "access_denied" and (
                    "not expired" in description or not token.expires_within(timedelta(0), now=self._now())):
                return None
            if exc.error == "invalid_client":  # the app's credentials, not the authorisation: reconnecting won't help
                raise PlatformError(
                    "the platform did not accept this app's client_id and client secret (invalid_client); check "
                    "client_id in the config and the secret in the environment variable client_secret_env names",
                    connection=self.settings.name,
                ) from None
            if exc.error in _REAUTHORISE_ERRORS:
                raise AuthorizationExpired(
                    f"the platform refused to renew the authorisation ({exc.error}: {short_text(description)})",
                    connection=self.settings.name,
                ) from None
            raise PlatformError(
                f"the token endpoint refused a refresh ({exc.error}: {short_text(description)})",
                connection=self.settings.name,
            ) from None
        except (httpx.HTTPStatusError, httpx.TransportError, ValueError) as exc:
            raise PlatformError(
                f"the token endpoint failed ({type(exc).__name__}); try again later",
                connection=self.settings.name,
                retryable=True,
            ) from None


class _BearerAuth(httpx.Auth):
    """Adds the access token; on a 401 that a refresh may cure, refreshes once and repeats the call."""

    requires_response_body = True  # the platform's 401 body says whether the token expired or consent is gone

    def __init__(self, keeper: TokenKeeper, profile: HttpProfile) -> None:
        self.keeper = keeper
        self.profile = profile

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        token = self.keeper.current()
        request.headers["Authorization"] = f"Bearer {token.access_token.get_secret_value()}"
        response = yield request
        if response.status_code == 401 and self.profile.token_expired(response):
            fresh = self.keeper.refresh(stale=token)
            if fresh.access_token != token.access_token:
                request.headers["Authorization"] = f"Bearer {fresh.access_token.get_secret_value()}"
                yield request


# --- paging -------------------------------------------------------------------------------------------------------


class Paginator:
    """Says where the next page is, given the current page's response (singer-sdk style)."""

    def next_page(self, response: httpx.Response, params: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
        raise NotImplementedError

    def further_pages(self, response: httpx.Response, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The parameters of every further page, when the first answer tells how many there are (Xero's
        `pageCount`): those pages can then be read in parallel. None: only `next_page` knows what follows."""
        return None


@dataclass
class PageNumberPaginator(Paginator):
    """`?page=N`: stop on a short page, or when `is_last` says so (e.g. Xero's pageCount)."""

    page_size: int
    records: Callable[[httpx.Response], Sequence[Any]]
    page_param: str = "page"
    is_last: Callable[[httpx.Response], bool] | None = None

    def next_page(self, response: httpx.Response, params: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
        if self.is_last is not None and self.is_last(response):
            return None
        if len(self.records(response)) < self.page_size:
            return None
        return str(response.request.url.copy_with(query=None)), {**params, self.page_param: int(params.get(self.page_param, 1)) + 1}


@dataclass
class NextUrlPaginator(Paginator):
    """An absolute next-page URL in the body (OData's `__next`) or the `Link: rel="next"` header."""

    next_url: Callable[[httpx.Response], str | None] = lambda response: response.links.get("next", {}).get("url")

    def next_page(self, response: httpx.Response, params: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
        url = self.next_url(response)
        return (url, None) if url else None


# --- the client ---------------------------------------------------------------------------------------------------


class ApiClient:
    """One per connection: an httpx client with the connection's auth, limits, retries and error mapping."""

    def __init__(
        self,
        *,
        settings: ConnectionSettings,
        profile: HttpProfile,
        oauth: OAuthEndpoints,
        tokens: TokenStore,
        transport: httpx.BaseTransport | None = None,
        clock: Ticks | None = None,
        sleep: Sleep | None = None,
        on_wait: OnWait | None = None,
    ) -> None:
        self.settings = settings
        self.profile = profile
        self.calls = 0
        self._calls_lock = threading.Lock()
        self._clock = clock or time.time
        self._sleep = sleep or time.sleep
        self.limiter = RateLimiter(
            profile.windows, clock=self._clock, sleep=self._sleep, max_wait=profile.max_wait, connection=settings.name,
            max_in_flight=profile.max_in_flight, on_wait=on_wait, reason=f"{profile.platform}'s rate limit",
            budget=shared_budget(tokens, settings.token_name, profile.windows, profile.max_in_flight)
            if profile.limit_per_authorisation else None,
        )
        self.tokens = TokenKeeper(settings, oauth, tokens, clock=self._clock, transport=transport)
        self._auth = _BearerAuth(self.tokens, profile)
        self._http = httpx.Client(
            base_url=profile.base_url,
            headers=dict(profile.headers),
            timeout=profile.timeout,
            transport=transport,
            follow_redirects=False,
            event_hooks={"request": [self._count]},
        )

    def _count(self, request: httpx.Request) -> None:
        with self._calls_lock:
            self.calls += 1
        log.debug("%s %s", request.method, request.url.path, extra={"connection": self.settings.name})

    def close(self) -> None:
        self._http.close()

    def now(self) -> datetime:
        """The client's (injectable) time as an aware UTC datetime, for receipts and cursors."""
        return datetime.fromtimestamp(self._clock(), UTC)

    # public calls

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        off_platform: bool = False,
        accept_redirect: bool = False,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one logical call, with the retries the policy allows; returns a 2xx (or 3xx if accepted) response.

        `idempotent` marks a call safe to repeat after an outage; by default reads are, and writes only when they
        carry an idempotency key. Pass True for a POST that only reads (e.g. Moneybird's synchronization POST).
        `off_platform` is a signed link on another host (Moneybird's PDF): sent without our token, and outside the
        platform's call windows, which it does not count against and must not wait behind (it expires in seconds).
        """
        if idempotent is None:
            idempotent = method.upper() in {"GET", "HEAD", "OPTIONS"} or idempotency_key is not None
        retrying = Retrying(
            stop=stop_after_attempt(self.profile.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: self._worth_retrying(exc, idempotent)),
            sleep=self._backoff,
            reraise=True,
        )
        call_headers = dict(headers or {})
        if idempotency_key is not None:
            call_headers["Idempotency-Key"] = idempotency_key
        return retrying(
            self._send_once, method, url, params=params, json=json, content=content, headers=call_headers,
            off_platform=off_platform, accept_redirect=accept_redirect,
        )

    def get_json(self, url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> Any:
        return self.json_of(self.request("GET", url, params=params, headers=headers))

    def pages(
        self,
        url: str,
        paginator: Paginator,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """Every page of a listing, one call each, handed over in order.

        Where the first answer tells how many pages follow (`Paginator.further_pages`) and the platform allows
        several calls at once, the further pages are read in parallel; a next-link or cursor is followed one page
        at a time (Exact's `__next`, which must not be read in parallel)."""
        first_params = dict(params or {})
        response = self.request("GET", url, params=first_params, headers=headers)
        further = paginator.further_pages(response, first_params) if self.profile.max_in_flight > 1 else None
        if further is not None:
            page_url = str(response.request.url.copy_with(query=None))
            rest = self.in_order(  # under way while the first page is being stored
                lambda page_params=page_params: self.request("GET", page_url, params=page_params, headers=headers)
                for page_params in further
            )
            try:
                yield response
                yield from rest
            finally:
                rest.close()
            return
        yield response
        next_call = paginator.next_page(response, first_params)
        while next_call is not None:
            page_url, page_params = next_call
            response = self.request("GET", page_url, params=page_params, headers=headers)
            yield response
            next_call = paginator.next_page(response, dict(page_params or {}))

    def in_order(self, calls: Iterable[Callable[[], T]]) -> InOrder[T]:
        """Independent calls (id batches, known pages) made as many at once as the platform allows, their
        answers handed over in the order given (`providers.parallel.in_order`)."""
        return in_order(calls, at_once=self.profile.max_in_flight)

    def started(self, call: Callable[[], T]) -> Callable[[], T]:
        """An independent call started now, beside the ones to come, where the platform allows several at once;
        returns a function that hands over its answer (`providers.parallel.started`)."""
        return started(call, at_once=self.profile.max_in_flight)

    def first_started(self, pages: Iterator[T]) -> Iterator[T]:
        """A listing whose first page is asked for now, beside the calls to come (`parallel.first_started`)."""
        return first_started(pages, at_once=self.profile.max_in_flight)

    def json_of(self, response: httpx.Response) -> Any:
        return json_body(response, connection=self.settings.name)

    # machinery

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        content: bytes | None,
        headers: Mapping[str, str],
        off_platform: bool,
        accept_redirect: bool,
    ) -> httpx.Response:
        name = self.settings.name
        with (nullcontext(None) if off_platform else self.limiter.call()) as ticket:
            try:
                response = self._http.request(
                    method, url, params=params, json=json, content=content, headers=headers,
                    auth=None if off_platform else self._auth,
                )
            except httpx.TimeoutException:
                raise PlatformError(f"{method} {_path(url)} timed out", connection=name, retryable=True) from None
            except httpx.TransportError as exc:
                raise PlatformError(
                    f"could not reach the platform for {method} {_path(url)} ({type(exc).__name__})",
                    connection=name,
                    retryable=True,
                ) from None
        if ticket is not None:
            self.limiter.observe(self.profile.read_limits(response), ticket=ticket)
        if response.status_code == 429:
            response.read()
            daily = self.profile.is_daily_limit(response)
            raise RateLimited(
                "the platform's daily call limit is used up; this connection stops for this run"
                if daily
                else "the platform asked to slow down",
                connection=name,
                retry_after=self.profile.retry_after(response, self._clock()),
                for_the_day=daily,
            )
        if response.is_success or (accept_redirect and response.is_redirect):
            return response
        response.read()
        raise self.profile.error_for(response, name)

    def _worth_retrying(self, exc: BaseException, idempotent: bool) -> bool:
        if isinstance(exc, RateLimited):
            return not exc.for_the_day and (exc.retry_after is None or exc.retry_after <= self.profile.max_wait)
        if isinstance(exc, PlatformError):
            return exc.retryable and idempotent
        return False

    def _backoff(self, seconds: float) -> None:
        """Tenacity's sleep: a rate-limit wait is the limiter's (it reports it), only outage backoffs sleep here."""
        if seconds > 0:
            self._sleep(seconds)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            self.limiter.hold(exc.retry_after)  # every caller waits, and the limiter says so before sleeping
            return 0.0
        return wait_random_exponential(multiplier=0.5, max=30)(state)


def json_body(response: httpx.Response, *, connection: str | None = None) -> Any:
    """The response's JSON with every number that has a fraction as `Decimal` (money never passes a float).

    Parsed once per response: a paginator and the adapter may both read the same page.
    """
    if response not in _parsed:
        try:
            _parsed[response] = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise BadPlatformData(
                f"the platform answered {response.request.method} {response.request.url.path} with something "
                f"that is not JSON ({response.headers.get('Content-Type', 'no content type')}): "
                f"{short_text(response.text, 120)}",
                connection=connection,
            ) from None
    return _parsed[response]


def _path(url: str) -> str:
    return httpx.URL(url).path or url
