"""Shared machinery of the platform simulators: one OAuth server, fault injection, rate windows, loopback serving.

Every platform simulator is a werkzeug WSGI app built on `SimulatorBase`. Tests, the demo and the benchmarks use
it in-process through `SimulatorBase.transport()` (no sockets, no real sleeping: time is a `VirtualClock`); the
browser test serves it on 127.0.0.1 with `serve()`. Platform specifics (paths, bodies, headers) stay in
`providers/<platform>/simulator.py`; what differs between the three OAuth servers is data (`OAuthPolicy`).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import html
import json
import re
import secrets
import threading
import time as _time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal, Protocol, Self, runtime_checkable
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import httpx
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

# --- time ---------------------------------------------------------------------------------------------------------


class VirtualClock:
    """Simulated time: tests and benchmarks advance it instead of sleeping.

    `time` and `sleep` fit the `Clock`/`Sleep` hooks of `providers.http.ApiClient`, so a client driven by this clock
    "waits" for a rate-limit reset by moving the clock, not by blocking.
    """

    def __init__(self, start: datetime = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime")
        self._now = start.timestamp()
        self._lock = threading.Lock()

    def time(self) -> float:
        """Seconds since the epoch, like `time.time()`."""
        with self._lock:
            return self._now

    def now(self) -> datetime:
        """The current moment as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        with self._lock:
            self._now += seconds

    sleep = advance


# --- the OAuth authorization server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenError:
    """One error answer of the token endpoint. String values in `body` may use `{expired_at}` and `{now}`."""

    status: int
    body: Mapping[str, str]
    headers: Mapping[str, str] = field(default_factory=dict)


def _rfc6749_errors() -> dict[str, TokenError]:
    plain = {name: TokenError(400, {"error": name}) for name in ("invalid_request", "invalid_client", "invalid_grant",
                                                                 "unsupported_grant_type", "unauthorized_client")}
    return plain | {
        "old_refresh_token": plain["invalid_grant"],
        "refresh_expired": plain["invalid_grant"],
        "too_early": TokenError(400, {"error": "access_denied"}),
    }


@dataclass(frozen=True)
class OAuthPolicy:
    """What differs between the platforms' authorization servers. Presets: `XERO_OAUTH`, `EXACT_OAUTH`,
    `MONEYBIRD_OAUTH`; `dataclasses.replace` one for a variation."""

    code_lifetime: float = 600.0
    code_with_bang: bool = False
    """Exact's codes contain `!` (sent as `%21`), which catches clients that do not URL-decode them."""
    https_redirect_only: bool = False
    access_lifetime: int | None = 3600
    """None: the token response has no `expires_in` and access tokens never expire (Moneybird)."""
    expires_in_as_string: bool = False
    token_type: str = "Bearer"
    extra_token_fields: tuple[Literal["scope", "created_at"], ...] = ("scope",)
    access_token_format: Literal["opaque", "jwt"] = "opaque"
    rotation: Literal["grace", "immediate"] = "immediate"
    """How a spent refresh token behaves: usable again for `refresh_grace` seconds (Xero), or dead at once."""
    refresh_grace: float = 0.0
    refresh_idle_lifetime: float | None = None
    """A refresh token unused this long is refused with `refresh_expired`."""
    revoke_access_on_refresh: bool = False
    min_token_interval: float | None = None
    """Refuse a refresh sooner than this after the previous token request of the same grant (Exact: 570 s)."""
    refresh_requires_scope: str | None = None
    """A refresh token is issued only when this scope was granted (Xero: `offline_access`)."""
    default_scope: str | None = None
    uses_scopes: bool = True
    """False where the platform has no OAuth scopes (Exact: an app's rights are set in the app centre)."""
    pkce: Literal["supported", "ignored"] = "supported"
    client_auth: frozenset[Literal["basic", "post"]] = frozenset({"basic", "post"})
    errors: Mapping[str, TokenError] = field(default_factory=_rfc6749_errors)


XERO_OAUTH = OAuthPolicy(
    code_lifetime=300.0,  # unconfirmed: Xero documents "5 minutes" for the code in its guides
    access_lifetime=1800,
    access_token_format="jwt",
    rotation="grace",
    refresh_grace=30 * 60,
    refresh_idle_lifetime=60 * 86400,
    refresh_requires_scope="offline_access",
    pkce="supported",
)
"""Xero: 30-minute JWT access tokens; refresh tokens rotate, the previous one may be retried for 30 minutes."""

EXACT_OAUTH = OAuthPolicy(
    code_lifetime=180.0,
    code_with_bang=True,
    https_redirect_only=True,
    uses_scopes=False,
    access_lifetime=600,
    expires_in_as_string=True,
    extra_token_fields=(),
    rotation="immediate",
    refresh_idle_lifetime=30 * 86400,
    min_token_interval=570.0,
    pkce="ignored",  # unconfirmed whether Exact verifies PKCE; its docs do not mention it
    client_auth=frozenset({"post"}),
    errors=_rfc6749_errors() | {
        "old_refresh_token": TokenError(
            401, {"error": "unauthorized_client", "error_description": "Old refresh token used."}
        ),
        "too_early": TokenError(
            400,
            {"error": "access_denied", "error_description": "Rate limit exceeded: access_token not expired"},
            {"Reason": "TooEarlyToRefreshTokens: the access token is still valid"},
        ),
        "refresh_expired": TokenError(
            400,
            {
                "error": "invalid_request",
                "error_description": "The refresh token expired at {expired_at} and it is now {now}.",
            },
        ),
    },
)
"""Exact Online: 600 s access tokens (`expires_in` a string), rotation kills the old refresh token at once,
no token request within 570 s of the previous one."""

_DOORKEEPER_INVALID_GRANT = TokenError(
    400,
    {
        "error": "invalid_grant",
        "error_description": "The provided authorization grant is invalid, expired, revoked, does not match the "
        "redirection URI used in the authorization request, or was issued to another client.",
    },
)
MONEYBIRD_OAUTH = OAuthPolicy(
    code_lifetime=600.0,  # unconfirmed: Doorkeeper's default (10 minutes)
    access_lifetime=None,
    token_type="bearer",
    extra_token_fields=("scope", "created_at"),
    rotation="immediate",
    revoke_access_on_refresh=True,  # assumption: Doorkeeper revokes the old pair on refresh
    default_scope="sales_invoices",
    pkce="supported",  # unconfirmed: Doorkeeper verifies PKCE when the app sends it
    errors=_rfc6749_errors() | {
        "invalid_grant": _DOORKEEPER_INVALID_GRANT,
        "old_refresh_token": _DOORKEEPER_INVALID_GRANT,
        "refresh_expired": _DOORKEEPER_INVALID_GRANT,
    },
)
"""Moneybird: access tokens without expiry; a refresh issues a new pair (error bodies as Doorkeeper's)."""


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...]


@dataclass
class Grant:
    """One consent: the chain of tokens that follows from one authorization."""

    id: str
    client_id: str
    scope: str
    tenant_ids: tuple[str, ...] | None
    """Tenants the user ticked on the consent page; None when the consent page offers no choice."""
    created_at: float
    last_token_request: float
    revoked: bool = False


@dataclass
class _Code:
    code: str
    grant: Grant
    redirect_uri: str | None
    code_challenge: str | None
    expires_at: float
    used: bool = False


@dataclass
class _AccessToken:
    grant: Grant
    expires_at: float | None
    revoked: bool = False


@dataclass
class _RefreshToken:
    grant: Grant
    access_token: str
    issued_at: float
    superseded_at: float | None = None
    revoked: bool = False


BearerState = Literal["valid", "expired", "revoked", "unknown"]


@dataclass(frozen=True)
class BearerCheck:
    """What an API call's bearer token is; the platform writes its own 401 for anything but `valid`."""

    state: BearerState
    grant: Grant | None = None

    @property
    def valid(self) -> bool:
        return self.state == "valid"


@dataclass
class _PendingConsent:
    client_id: str
    redirect_uri: str
    state: str | None
    scope: str
    code_challenge: str | None


class OAuthServer:
    """An authorization-code OAuth2 server with a consent page, configured per platform by an `OAuthPolicy`.

    Mount `authorize_endpoint` (GET shows the consent page, POST is the user's answer), `token_endpoint` and
    optionally `revoke_endpoint` on the platform's paths; call `check_bearer` on every API request.
    """

    def __init__(
        self,
        policy: OAuthPolicy,
        clock: VirtualClock,
        *,
        title: str = "Simulated platform",
        consent_tenants: Callable[[], Sequence[tuple[str, str]]] | None = None,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.title = title
        self.consent_tenants = consent_tenants
        """(id, name) pairs offered as tick boxes on the consent page (Xero lets the user pick organisations)."""
        self.clients: dict[str, OAuthClient] = {}
        self.grants: dict[str, Grant] = {}
        self.stats: Counter[str] = Counter()
        """`token_requests` (every call of the token endpoint), `code_exchanges`, `refreshes` (successful)."""
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._pending: dict[str, _PendingConsent] = {}
        self._lock = threading.RLock()

    @property
    def token_requests(self) -> int:
        return self.stats["token_requests"]

    @property
    def refreshes(self) -> int:
        return self.stats["refreshes"]

    # -- setup and fault injection ----------------------------------------------------------------------------

    def register_client(self, client_id: str, client_secret: str | None, redirect_uris: Sequence[str]) -> OAuthClient:
        """Register an app as on the platform's developer portal (redirect URIs match exactly)."""
        if self.policy.https_redirect_only:
            for uri in redirect_uris:
                if urlsplit(uri).scheme != "https":
                    raise ValueError(f"this platform accepts https redirect URIs only, not {uri}")
        client = OAuthClient(client_id, client_secret, tuple(redirect_uris))
        with self._lock:
            self.clients[client_id] = client
        return client

    def grant_tokens(self, client_id: str, *, scope: str | None = None,
                     tenant_ids: Sequence[str] | None = None) -> dict[str, Any]:
        """Tokens as if the user had consented and the code was exchanged: seeds end-to-end tests without a browser.

        Returns the token endpoint's JSON answer (feed it to `Token.from_response`).
        """
        with self._lock:
            if client_id not in self.clients:
                raise KeyError(f"unknown client {client_id}")
            grant = self._new_grant(client_id, scope or self.policy.default_scope or "",
                                    tuple(tenant_ids) if tenant_ids is not None else None)
            return self._issue(grant)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now expired (API calls get the platform's 401)."""
        now = self.clock.time()
        with self._lock:
            for token in self._access.values():
                token.expires_at = now

    def revoke(self, grant_id: str | None = None) -> None:
        """The user withdrew consent (one grant, or all): every token of it stops working."""
        with self._lock:
            for grant in self.grants.values():
                if grant_id is None or grant.id == grant_id:
                    grant.revoked = True

    def expire_refresh_tokens(self) -> None:
        """Every refresh token is past its idle lifetime (or revoked when the platform has none)."""
        with self._lock:
            lifetime = self.policy.refresh_idle_lifetime
            for token in self._refresh.values():
                if lifetime is None:
                    token.revoked = True
                else:
                    token.issued_at = min(token.issued_at, self.clock.time() - lifetime - 1)

    # -- API side ---------------------------------------------------------------------------------------------

    def check_bearer(self, authorization: str | None) -> BearerCheck:
        """Classify the `Authorization` header of an API call (the scheme is case-insensitive)."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return BearerCheck("unknown")
        with self._lock:
            token = self._access.get(value.strip())
            if token is None:
                return BearerCheck("unknown")
            if token.revoked or token.grant.revoked:
                return BearerCheck("revoked", token.grant)
            if token.expires_at is not None and token.expires_at <= self.clock.time():
                return BearerCheck("expired", token.grant)
            return BearerCheck("valid", token.grant)

    # -- the authorize endpoint -------------------------------------------------------------------------------

    def authorize_endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            return self._consent_answer(request)
        args = request.args
        client = self.clients.get(args.get("client_id", ""))
        redirect_uri = args.get("redirect_uri")
        if client is None:
            return self._error_page("Unknown client_id: this app is not registered.")
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        if redirect_uri not in client.redirect_uris:
            # Never redirect to an unregistered URI (RFC 6749 §4.1.2.1): show the error to the user instead.
            return self._error_page(f"The redirect_uri {redirect_uri!r} does not match the app's registered URIs.")
        state = args.get("state")
        if args.get("response_type") != "code":
            return self._redirect(redirect_uri, {"error": "unsupported_response_type"}, state)
        challenge = None
        if self.policy.pkce == "supported" and "code_challenge" in args:
            if args.get("code_challenge_method") != "S256":
                return self._redirect(redirect_uri, {"error": "invalid_request",
                                                     "error_description": "code_challenge_method must be S256"}, state)
            challenge = args["code_challenge"]
        elif self.policy.pkce == "supported" and client.client_secret is None:
            return self._redirect(redirect_uri, {"error": "invalid_request",
                                                 "error_description": "code_challenge required"}, state)
        scope = args.get("scope") or self.policy.default_scope or ""
        if not scope and self.policy.uses_scopes:
            return self._redirect(redirect_uri, {"error": "invalid_scope"}, state)
        txn = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[txn] = _PendingConsent(client.client_id, redirect_uri, state, scope, challenge)
        return self._consent_page(txn, client, scope)

    def _consent_answer(self, request: Request) -> Response:
        with self._lock:
            pending = self._pending.pop(request.form.get("txn", ""), None)
        if pending is None:
            return self._error_page("This consent request has expired or was already answered.")
        if request.form.get("decision") != "allow":
            return self._redirect(pending.redirect_uri, {"error": "access_denied"}, pending.state)
        tenant_ids = tuple(request.form.getlist("tenant")) if self.consent_tenants else None
        with self._lock:
            grant = self._new_grant(pending.client_id, pending.scope, tenant_ids)
            code = secrets.token_urlsafe(24)
            if self.policy.code_with_bang:
                code = f"stampNL001.{code[:8]}!{code[8:]}"
            self._codes[code] = _Code(code, grant, pending.redirect_uri, pending.code_challenge,
                                      self.clock.time() + self.policy.code_lifetime)
        return self._redirect(pending.redirect_uri, {"code": code}, pending.state)

    def _consent_page(self, txn: str, client: OAuthClient, scope: str) -> Response:
        tenants = ""
        if self.consent_tenants:
            boxes = "".join(
                f'<label><input type="checkbox" name="tenant" value="{html.escape(tid)}" checked> '
                f"{html.escape(name)}</label><br>"
                for tid, name in self.consent_tenants()
            )
            tenants = f"<fieldset><legend>Organisations</legend>{boxes}</fieldset>"
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}: authorise access</title></head>
<body>
<h1>{html.escape(self.title)}</h1>
<p>The app <strong>{html.escape(client.client_id)}</strong> asks for access: <code>{html.escape(scope)}</code></p>
<form method="post" action="">
<input type="hidden" name="txn" value="{txn}">
{tenants}
<button type="submit" name="decision" value="allow" id="allow">Allow access</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
</body></html>"""
        return Response(page, 200, mimetype="text/html")

    @staticmethod
    def _error_page(message: str) -> Response:
        page = f"<!doctype html><html><body><h1>Authorisation error</h1><p>{html.escape(message)}</p></body></html>"
        return Response(page, 400, mimetype="text/html")

    @staticmethod
    def _redirect(redirect_uri: str, params: dict[str, str], state: str | None) -> Response:
        if state is not None:
            params = params | {"state": state}
        parts = urlsplit(redirect_uri)
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        return Response(status=302, headers={"Location": urlunsplit(parts._replace(query=query))})

    # -- the token endpoint -----------------------------------------------------------------------------------

    def token_endpoint(self, request: Request) -> Response:
        with self._lock:
            self.stats["token_requests"] += 1
            if request.method != "POST":
                return Response(status=405, headers={"Allow": "POST"})
            client = self._authenticate(request)
            if client is None:
                return self._token_error("invalid_client")
            grant_type = request.form.get("grant_type")
            if grant_type == "authorization_code":
                return self._exchange_code(request, client)
            if grant_type == "refresh_token":
                return self._refresh_grant(request, client)
            return self._token_error("unsupported_grant_type")

    def _authenticate(self, request: Request) -> OAuthClient | None:
        form = request.form
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            if "basic" not in self.policy.client_auth:
                return None
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
            except ValueError:
                return None
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
            if form.get("client_id", client_id) != client_id:
                return None
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            if secret and "post" not in self.policy.client_auth:
                return None
        client = self.clients.get(client_id)
        if client is None:
            return None
        if client.client_secret is not None and not secrets.compare_digest(secret, client.client_secret):
            return None
        return client

    def _exchange_code(self, request: Request, client: OAuthClient) -> Response:
        form = request.form
        code = self._codes.get(form.get("code", ""))
        if code is None or code.used or code.expires_at <= self.clock.time() or code.grant.client_id != client.client_id:
            return self._token_error("invalid_grant")
        if code.redirect_uri is not None and form.get("redirect_uri") != code.redirect_uri:
            return self._token_error("invalid_grant")
        if code.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not verifier or not secrets.compare_digest(digest, code.code_challenge):
                return self._token_error("invalid_grant")
        code.used = True
        self.stats["code_exchanges"] += 1
        return self._json(self._issue(code.grant))

    def _refresh_grant(self, request: Request, client: OAuthClient) -> Response:
        now = self.clock.time()
        value = request.form.get("refresh_token", "")
        token = self._refresh.get(value)
        if token is None or token.revoked or token.grant.revoked or token.grant.client_id != client.client_id:
            return self._token_error("invalid_grant")
        if token.superseded_at is not None and (
            self.policy.rotation == "immediate" or now - token.superseded_at > self.policy.refresh_grace
        ):
            return self._token_error("old_refresh_token")
        lifetime = self.policy.refresh_idle_lifetime
        if lifetime is not None and now - token.issued_at > lifetime:
            return self._token_error("refresh_expired", expired_at=_iso(token.issued_at + lifetime), now=_iso(now))
        interval = self.policy.min_token_interval
        if interval is not None and now - token.grant.last_token_request < interval:
            return self._token_error("too_early")
        if token.superseded_at is None:
            token.superseded_at = now
        if self.policy.revoke_access_on_refresh and token.access_token in self._access:
            self._access[token.access_token].revoked = True
        self.stats["refreshes"] += 1
        return self._json(self._issue(token.grant))

    def _new_grant(self, client_id: str, scope: str, tenant_ids: tuple[str, ...] | None) -> Grant:
        now = self.clock.time()
        grant = Grant(secrets.token_hex(8), client_id, scope, tenant_ids, created_at=now, last_token_request=now)
        self.grants[grant.id] = grant
        return grant

    def _issue(self, grant: Grant) -> dict[str, Any]:
        now = self.clock.time()
        grant.last_token_request = now
        lifetime = self.policy.access_lifetime
        access = self._access_token_value(grant, now)
        self._access[access] = _AccessToken(grant, now + lifetime if lifetime is not None else None)
        answer: dict[str, Any] = {"access_token": access, "token_type": self.policy.token_type}
        if lifetime is not None:
            answer["expires_in"] = str(lifetime) if self.policy.expires_in_as_string else lifetime
        needed = self.policy.refresh_requires_scope
        if needed is None or needed in grant.scope.split():
            refresh = secrets.token_urlsafe(32)
            self._refresh[refresh] = _RefreshToken(grant, access, issued_at=now)
            answer["refresh_token"] = refresh
        if "scope" in self.policy.extra_token_fields:
            answer["scope"] = grant.scope
        if "created_at" in self.policy.extra_token_fields:
            answer["created_at"] = int(now)
        return answer

    def _access_token_value(self, grant: Grant, now: float) -> str:
        if self.policy.access_token_format == "opaque":
            return secrets.token_urlsafe(32)

        def part(payload: Mapping[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()

        claims = {"iss": "simulator", "client_id": grant.client_id, "authentication_event_id": grant.id,
                  "scope": grant.scope.split(), "iat": int(now), "jti": secrets.token_hex(16)}
        if self.policy.access_lifetime is not None:
            claims["exp"] = int(now) + self.policy.access_lifetime
        signature = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{signature}"

    def _token_error(self, kind: str, **values: str) -> Response:
        error = self.policy.errors[kind]
        body = {key: text.format(**values) if values else text for key, text in error.body.items()}
        return Response(json.dumps(body), error.status, headers=dict(error.headers), mimetype="application/json")

    @staticmethod
    def _json(payload: Mapping[str, Any]) -> Response:
        return Response(json.dumps(payload), 200, mimetype="application/json",
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # -- revocation -------------------------------------------------------------------------------------------

    def revoke_endpoint(self, request: Request) -> Response:
        """RFC 7009 revocation (Xero's "disconnect"): revoking a refresh token ends its whole grant."""
        with self._lock:
            client = self._authenticate(request)
            if client is None:
                return self._token_error("invalid_client")
            value = request.form.get("token", "")
            record = self._refresh.get(value) or self._access.get(value)
            if record is not None and record.grant.client_id == client.client_id:
                record.grant.revoked = True
            return Response(status=200)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- fault injection ----------------------------------------------------------------------------------------------

FaultKind = Literal["server_error", "timeout", "expired_token", "rate_limited", "malformed"]


@dataclass
class Fault:
    kind: FaultKind
    path: str
    """A glob on the request path (`fnmatch`), e.g. `/api/v2/*/sales_invoices*`."""
    method: str | None = None
    times: int = 1
    status: int = 500
    retry_after: int | None = None
    after_processing: bool = False
    """For timeouts: the platform did the work but the answer is lost (the classic double-send trap)."""
    served_delay: float = 1.0
    """When served on a socket, a timeout holds the request this many real seconds, then answers 504."""


class FaultPlan:
    """Faults to inject into the next matching responses, consumed first-in first-out."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def server_error(self, path: str = "*", *, times: int = 1, status: int = 500, method: str | None = None) -> Fault:
        return self._add(Fault("server_error", path, method, times, status=status))

    def timeout(self, path: str = "*", *, times: int = 1, method: str | None = None,
                after_processing: bool = False, served_delay: float = 1.0) -> Fault:
        return self._add(Fault("timeout", path, method, times, after_processing=after_processing,
                               served_delay=served_delay))

    def expired_token(self, path: str = "*", *, times: int = 1, method: str | None = None) -> Fault:
        return self._add(Fault("expired_token", path, method, times, status=401))

    def rate_limited(self, path: str = "*", *, times: int = 1, retry_after: int | None = 60,
                     method: str | None = None) -> Fault:
        return self._add(Fault("rate_limited", path, method, times, status=429, retry_after=retry_after))

    def malformed(self, path: str = "*", *, times: int = 1, method: str | None = None) -> Fault:
        return self._add(Fault("malformed", path, method, times, status=200))

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if one is planned (one use of it is consumed)."""
        with self._lock:
            for fault in self._faults:
                if (fault.method is None or fault.method.upper() == method.upper()) and fnmatch.fnmatchcase(
                    path, fault.path
                ):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return replace(fault)
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, fault: Fault) -> Fault:
        if fault.times < 1:
            raise ValueError("a fault must apply at least once")
        with self._lock:
            self._faults.append(fault)
        return fault


class SimulatedTimeout(Exception):
    """Raised inside the app; `SimulatorTransport` turns it into `httpx.ReadTimeout`, `serve()` into a slow 504."""

    def __init__(self, delay: float = 1.0) -> None:
        super().__init__("simulated timeout")
        self.delay = delay


class SimulatorTransport(httpx.BaseTransport):
    """`httpx.WSGITransport` around a simulator, turning simulated timeouts into the real httpx exception."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self._inner = httpx.WSGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._inner.handle_request(request)
        except SimulatedTimeout:
            raise httpx.ReadTimeout("simulated read timeout", request=request) from None

    def close(self) -> None:
        self._inner.close()


# --- rate windows -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A fixed window aligned to the epoch (a minute starts at :00, a day at 00:00 UTC)."""

    name: str
    limit: int
    seconds: int


@dataclass(frozen=True)
class WindowState:
    name: str
    limit: int
    remaining: int
    reset_at: float
    """Epoch seconds when this window starts afresh."""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    windows: tuple[WindowState, ...]
    exceeded: WindowState | None = None
    now: float = 0.0

    def window(self, name: str) -> WindowState:
        return next(w for w in self.windows if w.name == name)

    @property
    def retry_after(self) -> int | None:
        """Whole seconds until the exceeded window resets (None when allowed)."""
        if self.exceeded is None:
            return None
        return max(1, int(-(-(self.exceeded.reset_at - self.now) // 1)))


class RateWindows:
    """Fixed-window counters per key (tenant) on the virtual clock; the platform writes its own headers from them.

    A refused call does not count against the windows.
    """

    def __init__(self, clock: VirtualClock, windows: Sequence[Window]) -> None:
        self.clock = clock
        self.windows = tuple(windows)
        self._counts: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> RateDecision:
        """Count one call for `key` if every window has room; say which window is full otherwise."""
        with self._lock:
            decision = self._decide(key, self.clock.time(), counting=True)
        return decision

    def peek(self, key: str) -> RateDecision:
        with self._lock:
            return self._decide(key, self.clock.time(), counting=False)

    def _decide(self, key: str, now: float, *, counting: bool) -> RateDecision:
        slots = [(w, int(now // w.seconds)) for w in self.windows]
        used = [self._counts.get((key, w.name, slot), 0) for w, slot in slots]
        full = next((i for i, (w, _) in enumerate(slots) if used[i] >= w.limit), None)
        if counting and full is None:
            for w, slot in slots:
                self._counts[(key, w.name, slot)] = self._counts.get((key, w.name, slot), 0) + 1
            used = [n + 1 for n in used]
        states = tuple(
            WindowState(w.name, w.limit, max(0, w.limit - n), (slot + 1) * w.seconds)
            for (w, slot), n in zip(slots, used, strict=True)
        )
        return RateDecision(full is None, states, states[full] if full is not None else None, now)


# --- the simulator base -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    query: str
    at: float


@dataclass(frozen=True)
class SentMail:
    """A mail the platform sent on our request (what a test checks instead of an inbox)."""

    tenant: str
    recipients: tuple[str, ...]
    invoice_ids: tuple[str, ...]
    kind: str
    text: str | None
    at: datetime


# --- the Simulator protocol: what the demo, the job's tests and the benchmarks drive, never naming a platform ------


@dataclass(frozen=True)
class BookInvoice:
    """One sales invoice of a seeded book, in the platform's neutral terms (each simulator books it its own way)."""

    key: str
    """The book's own name for the invoice (e.g. `pays-after-second-reminder`), mapped to a platform id on seeding."""
    net: Decimal
    issued: date
    due_days: int = 30
    vat_rate: Decimal = Decimal("0.21")
    currency: str = "EUR"
    paid: Decimal = Decimal("0")
    """Part already paid when the book is seeded (a partial payment)."""
    credited: Decimal = Decimal("0")
    """A credit note for this much, issued to the same debtor (Xero allocates it; the others book it beside)."""

    @property
    def total(self) -> Decimal:
        return (self.net * (1 + self.vat_rate)).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class BookDebtor:
    key: str
    name: str
    kind: Literal["business", "consumer"]
    country: str
    """ISO 3166 alpha-2 (NL, BE, GB)."""
    email: str | None
    street: str
    postcode: str
    city: str
    phone: str | None = None
    kvk: str | None = None
    vat_number: str | None = None
    contact_person: str | None = None
    invoices: tuple[BookInvoice, ...] = ()


@dataclass(frozen=True)
class Book:
    """A realistic receivables book to seed a simulator with (`Simulator.seed`)."""

    organisation: str
    debtors: tuple[BookDebtor, ...]


@dataclass(frozen=True)
class SeededBook:
    """Where a seeded book landed: the tenant to connect and each invoice's platform id by its book key."""

    tenant: str
    invoices: Mapping[str, str]


@runtime_checkable
class Simulator(Protocol):
    """A platform simulator as the demo and the tests drive it, whatever the platform.

    Implemented by every `dunning.simulators` entry point (through `SimulatorBase` and three platform hooks:
    `empty`, `seed`, `record_payment`).
    """

    platform: ClassVar[str]
    clock: VirtualClock
    mail: list[SentMail]
    faults: FaultPlan

    @property
    def https_redirect_only(self) -> bool:
        """Whether the platform accepts https redirect URIs only (Exact)."""
        ...

    @classmethod
    def empty(cls, clock: VirtualClock) -> Self:
        """A simulator with no books yet, on `clock` (shared when several simulators make one world)."""
        ...

    def seed(self, book: Book) -> SeededBook:
        """Book `book` as this platform holds it: debtors, invoices, partial payments and credit notes."""
        ...

    def record_payment(self, invoice_id: str, amount: Decimal | None = None) -> None:
        """The debtor paid `amount` (the rest when None) today, and the bookkeeper matched it."""
        ...

    def advance_to(self, moment: datetime) -> None:
        """Move the (possibly shared) clock on to `moment` and do the platform's overnight work."""
        ...

    def sent_mail(self, since: datetime | None = None) -> list[SentMail]:
        """Every mail the platform sent on our request (at or after `since`)."""
        ...

    def register_app(self, client_id: str, client_secret: str | None, redirect_uri: str) -> None:
        """Register an OAuth app as on the platform's developer portal."""
        ...

    def consent_tokens(self, client_id: str, *, scope: str | None, tenant: str) -> dict[str, Any]:
        """The token endpoint's answer as if the user had consented to `tenant` (tests and benches, no browser)."""
        ...

    def call_count(self, path_glob: str = "*", method: str | None = None) -> int:
        """API calls received so far (matching a path glob and method)."""
        ...

    def withdraw_consent(self) -> None:
        """The user withdrew every consent given to apps (every token stops working; only a new consent helps)."""
        ...

    def connection_urls(self, base_url: str) -> dict[str, str]:
        """The config overrides (`api_url`, `authorize_url`, `token_url`) that point a connection at `base_url`."""
        ...

    def approve(self, authorize_url: str) -> str:
        """Play the user on the consent page: allow every tenant; returns where the platform redirects to."""
        ...

    def transport(self) -> SimulatorTransport:
        ...

    def serving(self) -> Any:
        """A context manager serving the simulator on 127.0.0.1 in a thread; yields its base URL."""
        ...

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        ...


class SimulatorBase:
    """A WSGI app with routing, call recording, fault injection and a sent-mail log.

    Subclasses set `url_map` (werkzeug `Rule`s whose endpoint is the name of a method taking `(request, **values)`)
    and override the response hooks to answer in the platform's own words.
    """

    url_map: Map = Map([])

    def __init__(self, clock: VirtualClock | None = None) -> None:
        self.clock = clock or VirtualClock()
        self.faults = FaultPlan()
        self.calls: list[RecordedCall] = []
        self.mail: list[SentMail] = []
        self._calls_lock = threading.Lock()

    # -- for tests --------------------------------------------------------------------------------------------

    def transport(self) -> SimulatorTransport:
        """The in-process transport to hand to `Provider.connect(transport=…)` or `httpx.Client`."""
        return SimulatorTransport(self)

    def call_count(self, path_glob: str = "*", method: str | None = None) -> int:
        with self._calls_lock:
            return sum(1 for c in self.calls if fnmatch.fnmatchcase(c.path, path_glob)
                       and (method is None or c.method == method.upper()))

    def record_mail(self, *, tenant: str, recipients: Sequence[str], invoice_ids: Sequence[str], kind: str,
                    text: str | None = None) -> SentMail:
        mail = SentMail(tenant, tuple(recipients), tuple(invoice_ids), kind, text, self.clock.now())
        self.mail.append(mail)
        return mail

    # -- the Simulator protocol (platform hooks: `empty`, `seed`, `record_payment`, `connection_urls`) ---------

    platform: ClassVar[str] = ""

    def advance_to(self, moment: datetime) -> None:
        now = self.clock.now()
        if moment > now:
            self.clock.advance((moment - now).total_seconds())
        self.overnight()

    def advance_day(self, days: int = 1) -> None:
        self.advance_to(self.clock.now() + timedelta(days=days))

    def overnight(self) -> None:
        """What the platform does by itself when a day passes (e.g. marking invoices late); nothing by default."""

    def sent_mail(self, since: datetime | None = None) -> list[SentMail]:
        return [m for m in list(self.mail) if since is None or m.at >= since]

    def register_app(self, client_id: str, client_secret: str | None, redirect_uri: str) -> None:
        self.oauth.register_client(client_id, client_secret, [redirect_uri])

    @property
    def https_redirect_only(self) -> bool:
        return self.oauth.policy.https_redirect_only

    def consent_tokens(self, client_id: str, *, scope: str | None, tenant: str) -> dict[str, Any]:
        return self.oauth.grant_tokens(client_id, scope=scope, tenant_ids=[tenant])

    def withdraw_consent(self) -> None:
        for grant in list(self.oauth.grants.values()):
            grant.revoked = True

    def approve(self, authorize_url: str) -> str:
        with httpx.Client(transport=self.transport(), timeout=10) as http:
            page = http.get(authorize_url)
            found = re.search(r'name="txn" value="([^"]+)"', page.text)
            if page.status_code != 200 or found is None:
                raise RuntimeError(f"the simulated consent page did not open ({page.status_code})")
            tenants = [html.unescape(t) for t in re.findall(r'name="tenant" value="([^"]*)"', page.text)]
            form: dict[str, Any] = {"txn": found.group(1), "decision": "allow", "tenant": tenants}
            answer = http.post(authorize_url, data=form)
        if answer.status_code != 302:
            raise RuntimeError(f"the simulated consent was not accepted ({answer.status_code})")
        return answer.headers["Location"]

    def browser(self) -> Callable[[str], bool]:
        """A stand-in for the user's browser (the setup wizard's `open_browser`): consents on the platform's page,
        then follows the redirect to the wizard's loopback listener, accepting its self-signed certificate."""

        def open_browser(url: str) -> bool:
            location = self.approve(url)
            with httpx.Client(verify=False, timeout=10) as http:  # noqa: S501 (the wizard's own loopback certificate)
                http.get(location)
            return True

        return open_browser

    @contextmanager
    def serving(self) -> Iterator[str]:
        with serve(self) as base_url:
            self.served_at(base_url)
            yield base_url

    def served_at(self, base_url: str) -> None:
        """Told the loopback URL it is served on (platforms that write absolute links use it)."""

    # -- response hooks (override with the platform's bodies) -------------------------------------------------

    def server_error_response(self, status: int) -> Response:
        return Response("Service Unavailable" if status == 503 else "Internal Server Error", status,
                        mimetype="text/plain")

    def expired_token_response(self) -> Response:
        return Response(json.dumps({"error": "token expired"}), 401, mimetype="application/json")

    def rate_limited_response(self, retry_after: int | None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Response("Retry later", 429, headers=headers, mimetype="text/plain")

    def not_found_response(self, request: Request) -> Response:
        return Response("Not Found", 404, mimetype="text/plain")

    def malform(self, payload: Any) -> Any:
        """Spoil the first record of a JSON answer (a list, or the first list inside an object)."""
        records = payload if isinstance(payload, list) else next(
            (v for v in payload.values() if isinstance(v, list) and v), None) if isinstance(payload, dict) else None
        if records and isinstance(records[0], dict):
            first = records[0]
            keep = next(iter(first), None)
            records[0] = {k: (v if k == keep else None) for k, v in first.items()}
        return payload

    # -- OAuth routes: point Rules at these, with `self.oauth` an `OAuthServer` ---------------------------

    oauth: OAuthServer

    def oauth_authorize(self, request: Request) -> Response:
        return self.oauth.authorize_endpoint(request)

    def oauth_token(self, request: Request) -> Response:
        return self.oauth.token_endpoint(request)

    def oauth_revoke(self, request: Request) -> Response:
        return self.oauth.revoke_endpoint(request)

    # -- WSGI -------------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        with self._calls_lock:
            self.calls.append(RecordedCall(request.method, request.path, request.query_string.decode(),
                                           self.clock.time()))
        fault = self.faults.take(request.method, request.path)
        if fault is not None and not fault.after_processing:
            if fault.kind == "timeout":
                raise SimulatedTimeout(fault.served_delay)
            if fault.kind == "server_error":
                return self.server_error_response(fault.status)
            if fault.kind == "expired_token":
                return self.expired_token_response()
            if fault.kind == "rate_limited":
                return self.rate_limited_response(fault.retry_after)
        response = self._route(request)
        if fault is not None and fault.kind == "timeout":
            raise SimulatedTimeout(fault.served_delay)
        if fault is not None and fault.kind == "malformed" and response.mimetype == "application/json":
            response.set_data(json.dumps(self.malform(json.loads(response.get_data()))))
        return response

    def _route(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except HTTPException as exc:
            if exc.code == 404:
                return self.not_found_response(request)
            return exc.get_response(request.environ)  # type: ignore[return-value]
        return getattr(self, endpoint)(request, **values)


# --- loopback serving ---------------------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    """No access log: request lines carry authorization codes and state."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _SlowTimeouts:
    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            return self.app(environ, start_response)
        except SimulatedTimeout as timeout:
            _time.sleep(timeout.delay)
            return Response("Gateway Timeout", 504)(environ, start_response)


@contextmanager
def serve(app: Callable[..., Any], *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve a WSGI app on loopback in a thread; yields its base URL (`http://127.0.0.1:PORT`) and stops cleanly."""
    server = make_server(host, port, _SlowTimeouts(app), threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"simulator:{server.port}", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


__all__ = [
    "EXACT_OAUTH", "MONEYBIRD_OAUTH", "XERO_OAUTH", "BearerCheck", "Book", "BookDebtor", "BookInvoice", "Fault",
    "FaultPlan", "Grant", "OAuthClient", "OAuthPolicy", "OAuthServer", "RateDecision", "RateWindows", "RecordedCall",
    "SeededBook", "SentMail", "SimulatedTimeout", "Simulator", "SimulatorBase", "SimulatorTransport", "TokenError",
    "VirtualClock", "Window", "WindowState", "serve",
]

