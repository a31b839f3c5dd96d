"""The provider contract: the one interface every platform adapter implements.

Only platform-neutral types cross this seam (the canonical models, pages, receipts, capabilities), so the core
(`connector/`) can drive any adapter it finds by name through the `dunning.providers` entry-point group without
importing a platform. An adapter declares its differences (endpoints, scopes, limits, capabilities) and leaves the
HTTP mechanics (retries, rate limiting, token refresh) to `providers.http`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connector.capabilities import Capabilities, DeliveryMethod
from connector.models import Debtor, Invoice
from providers.errors import AuthorizationExpired

if TYPE_CHECKING:
    from providers.http import ApiClient, HttpProfile
    from providers.streams import Batch, Known, Stream


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- what the core hands an adapter -------------------------------------------------------------------------------


class ConnectionSettings(_Frozen):
    """One connected administration, as configured in a `[[connections]]` table (secret already resolved)."""

    name: str
    provider: str
    tenant: str | None = None
    """Xero tenant id / Moneybird administration id / Exact division; None only while setting up."""
    client_id: str
    client_secret: SecretStr | None = None
    redirect_uri: str = "http://localhost:8765/callback"
    api_url: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    scopes: tuple[str, ...] | None = None
    """Overrides the platform's default scopes (e.g. Xero apps created before March 2026)."""
    options: Mapping[str, Any] = Field(default_factory=dict)
    """Platform-specific settings, validated by the adapter's `Options` model."""
    token_key: str | None = None
    """The connection whose stored tokens this one shares (one authorisation reaching several tenants): a rotating
    refresh token can only be spent once, so such connections must keep one token set, not copies."""

    @property
    def token_name(self) -> str:
        """Under which name this connection's tokens are stored and locked."""
        return self.token_key or self.name


class NoOptions(_Frozen):
    """For adapters that take no platform-specific settings."""


# --- OAuth and tokens ---------------------------------------------------------------------------------------------


class OAuthEndpoints(_Frozen):
    """How to obtain and refresh this platform's tokens; the wizard and `providers.http` both read it."""

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    pkce: bool
    """Send an S256 code challenge (Xero supports it; harmless elsewhere only if the platform ignores it)."""
    token_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_post"
    refresh_before_expiry: timedelta = timedelta(minutes=2)
    """Refresh proactively once less than this is left. Exact refuses refreshes earlier than 30 s before expiry."""
    extra_authorize_params: Mapping[str, str] = Field(default_factory=dict)


class Token(_Frozen):
    """An OAuth token set. Secrets are `SecretStr` so they never print; persist with `.secrets()`."""

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    token_type: str = "Bearer"
    expires_at: datetime | None = None
    """None when the platform gives no lifetime (Moneybird: access tokens do not expire today)."""
    issued_at: datetime
    scope: str | None = None

    @classmethod
    def from_response(cls, payload: Mapping[str, Any], *, now: datetime | None = None) -> Token:
        """Read a token endpoint's JSON, tolerating `expires_in` as a string (Exact) or absent (Moneybird)."""
        now = now or datetime.now(UTC)
        expires_in = payload.get("expires_in")
        expires_at = now + timedelta(seconds=int(expires_in)) if expires_in not in (None, "") else None
        refresh = payload.get("refresh_token")
        return cls(
            access_token=SecretStr(str(payload["access_token"])),
            refresh_token=SecretStr(str(refresh)) if refresh else None,
            token_type=str(payload.get("token_type") or "Bearer"),
            expires_at=expires_at,
            issued_at=now,
            scope=payload.get("scope"),
        )

    def expires_within(self, margin: timedelta, *, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at - margin <= now

    def secrets(self) -> dict[str, Any]:
        """The plain form, for the encrypted token store only."""
        return {
            "access_token": self.access_token.get_secret_value(),
            "refresh_token": self.refresh_token.get_secret_value() if self.refresh_token else None,
            "token_type": self.token_type,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "issued_at": self.issued_at.isoformat(),
            "scope": self.scope,
        }


class RefreshJournal(Protocol):
    """A durable note that a rotating refresh token is being spent (Exact and Xero kill the old one at once), so a
    crash between spending it and saving its successor is explained on the next run instead of found as a dead
    authorisation. `providers.http.TokenKeeper` writes it; `dunning status` reads it."""

    def begin_refresh(self, connection: str, token: Token, *, now: datetime) -> None:
        """`token`'s refresh token is about to be spent (under `lock`, before the request)."""

    def finish_refresh(self, connection: str, new_token: Token) -> None:
        """`new_token` is saved: the entry is closed."""

    def cancel_refresh(self, connection: str) -> None:
        """The endpoint answered without spending the refresh token: undo `begin_refresh`."""

    def interrupted_refresh(self, connection: str, token: Token | None = None) -> datetime | None:
        """When an unfinished refresh began spending the stored (or given) token's refresh token; else None."""

    def refresh_refused(self, connection: str, error: AuthorizationExpired) -> AuthorizationExpired:
        """The error to raise for a refused refresh token, naming an interrupted earlier refresh when there was one."""


class TokenStore(RefreshJournal, Protocol):
    """Where a connection's tokens live between runs (encrypted; see `providers.tokens`), with its refresh journal."""

    def load(self, connection: str) -> Token | None: ...

    def save(self, connection: str, token: Token) -> None:
        """Persist atomically: after it returns, a crash cannot lose this token."""

    def lock(self, connection: str) -> AbstractContextManager[None]:
        """A cross-process lock, held while a rotating refresh token is spent and its successor saved."""

    def delete(self, connection: str) -> None: ...


# --- what an adapter hands back -----------------------------------------------------------------------------------


class Tenant(_Frozen):
    """A company/administration/division the token can reach; `id` goes into `[[connections]] tenant`."""

    id: str
    name: str
    detail: str | None = None


class SyncState(_Frozen):
    """What the store knows, so an adapter fetches only what changed."""

    cursor: str | None = None
    """The adapter's own opaque bookmark from the last page of the previous sync (None: never synced)."""
    open_invoices: Mapping[str, str | None] = Field(default_factory=dict)
    """Platform id → version of every invoice the store holds as open: to skip unchanged ones and close leavers."""
    debtors: Mapping[str, str | None] = Field(default_factory=dict)
    """Platform id → version of every debtor the store holds."""
    debtors_missing: frozenset[str] = frozenset()
    """Debtors the stored open invoices name that the store does not hold (an interrupted sync stored invoices
    before their debtors): the next sync completes them."""
    full: bool = False
    """Ignore the cursor and re-read the whole open set (`dunning sync --full`, or a periodic re-read)."""


class SyncPage(_Frozen):
    """One unit of sync progress, written to the store in one transaction together with its cursor."""

    invoices: tuple[Invoice, ...] = ()
    debtors: tuple[Debtor, ...] = ()
    closed_invoice_ids: tuple[str, ...] = ()
    """Invoices that left the open set (paid, voided, deleted, credited): marked closed, never deleted."""
    deleted_invoice_ids: tuple[str, ...] = ()
    """Invoices the platform answered as deleted when read directly: closed like the others, their history saying
    they were deleted on the platform."""
    cursor: str | None = None
    """The bookmark to store once this page is written; None keeps the previous one."""
    problems: tuple[str, ...] = ()
    """Records skipped as bad platform data, each naming the record (reported, never silently dropped)."""
    compared: bool = False
    """The invoices were compared with the store already (the sync machine hands over only what differs), so the
    store writes them without comparing again."""
    anomalies: tuple[str, ...] = ()
    """Invoices the platform no longer lists but did not return when asked by id: kept open, each named; the sync
    ends with exit 1 so a person looks."""


class ReminderRequest(_Frozen):
    """One reminder to one debtor, possibly covering several invoices (when the platform can consolidate)."""

    step: str
    debtor: Debtor
    invoices: tuple[Invoice, ...] = Field(min_length=1)
    subject: str | None = None
    message: str
    """Our rendered text; used only where `Capabilities.custom_message` is True."""
    idempotency_key: str = Field(min_length=8, max_length=128)
    delivery: DeliveryMethod = "email"


class FreshInvoice(_Frozen):
    """An invoice as the platform has it right before sending (the batched re-check)."""

    invoice: Invoice | None
    """None: the platform no longer lists it as open (paid, voided, deleted)."""
    trace: int | tuple[str, ...] | None = None
    """What the platform shows of mails sent on it, where it tells (Moneybird's reminder count, the ids of Exact's
    documents of the invoice): kept with a row's claim, so `Provider.reminder_trace` can compare after a crash."""


class Receipt(_Frozen):
    """Proof that the platform accepted a write: kept on the outbox row and in the invoice history."""

    platform_reference: str | None = None
    """The platform's id for what it created (note id, document id), where it gives one."""
    sent_at: datetime
    recipients: tuple[str, ...] = ()
    detail: str = ""


# --- the contract -------------------------------------------------------------------------------------------------

Ticks = Callable[[], float]
"""Seconds since the epoch (`time.time`, or a virtual clock's): what the HTTP machinery counts rate-limit windows,
Retry-After and token lifetimes in. The application's clock is `connector.clock.Clock` (an aware datetime)."""
Sleep = Callable[[float], None]


class Provider(abc.ABC):
    """A platform adapter. Subclasses live in `providers/<platform>/` and declare their differences."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    streams: ClassVar[tuple[Stream, ...]] = ()
    """What the adapter lists and how (`providers.streams.Stream`); the first one's page size pages the store."""
    numbered_invoices: ClassVar[bool] = True
    """Every open invoice has a number on this platform (one without is bad data, kept out of the store)."""
    Options: ClassVar[type[BaseModel]] = NoOptions
    replay_window: ClassVar[timedelta | None] = None
    """How long a mail repeated with the same idempotency key is answered without mailing again (Xero's
    Idempotency-Key): within it delivery may resend a reminder a crash left in doubt; after it, it must not."""
    mailing_refused: str | None = None
    """Set when the platform refused its own mailing mechanism as such (not one reminder): delivery remembers it per
    connection and goes around it (our mail server, or a task) instead of asking again."""
    trace_lost: str | None = None
    """Set when the platform showed that its mailing leaves no trace `reminder_trace` can read: delivery remembers it
    per connection, and from then on a mail a crash left in doubt is checked by hand."""
    https_redirect: ClassVar[bool] = False
    """The platform accepts only https redirect URIs (Exact): setup's default redirect is then https, which the
    loopback listener serves with a self-signed certificate (cli.md)."""
    refresh_token_lifetime: ClassVar[timedelta | None] = None
    """How long the platform keeps a refresh token nobody uses (Xero 60 days, Exact 30; None: no such limit is
    documented): an authorisation the job has not renewed within it must be given again (`dunning status` warns)."""
    confirms_by_mail: ClassVar[bool] = False
    """The platform's mailing can carry a written confirmation (our text) without counting as a reminder: Exact's
    re-sent invoice does. Moneybird's `send_reminders` would count one (state `reminded`, reminder_count + 1) and
    Xero's mail carries no text of ours, so they confirm by our mail server or a letter."""

    def __init__(self, settings: ConnectionSettings, api: ApiClient) -> None:
        self.settings = settings
        self.api = api
        self.options = self.Options.model_validate(dict(settings.options))

    @classmethod
    def connect(
        cls,
        settings: ConnectionSettings,
        *,
        tokens: TokenStore,
        transport: httpx.BaseTransport | None = None,
        clock: Ticks | None = None,
        sleep: Sleep | None = None,
        on_wait: Callable[[float, str], None] | None = None,
    ) -> Self:
        """Build the adapter with its own HTTP client (`transport` plugs in a simulator for tests and the demo).

        `on_wait(seconds, reason)` is told before a call waits for the platform's rate limit."""
        from providers.http import ApiClient

        api = ApiClient(
            settings=settings,
            profile=cls.http_profile(settings),
            oauth=cls.oauth(settings),
            tokens=tokens,
            transport=transport,
            clock=clock,
            sleep=sleep,
            on_wait=on_wait,
        )
        return cls(settings, api)

    def close(self) -> None:
        self.api.close()

    # declared per platform
    @classmethod
    @abc.abstractmethod
    def oauth(cls, settings: ConnectionSettings) -> OAuthEndpoints:
        """The platform's OAuth endpoints and scopes (honouring the connection's URL overrides)."""

    @classmethod
    @abc.abstractmethod
    def http_profile(cls, settings: ConnectionSettings) -> HttpProfile:
        """Base URL, headers, rate limits and error mapping for `providers.http.ApiClient`."""

    # calls
    @abc.abstractmethod
    def list_tenants(self) -> list[Tenant]:
        """What the current token can reach (Xero tenants, Moneybird administrations, Exact divisions)."""

    def sync(self, state: SyncState) -> Iterator[SyncPage]:
        """Open receivables and their debtors, incrementally, in pages the caller stores one by one.

        The shared machine (`providers.streams`) does the work; an adapter declares its `streams` and answers
        `read` and `confirm` with mapped records."""
        from providers.streams import run

        return run(self, state, page_size=self.streams[0].page_size,  # type: ignore[arg-type]
                   numbered=self.numbered_invoices)

    def read(self, known: Known) -> Iterator[Batch]:
        """The platform's answers for this sync, mapped (see `providers.streams.Source`)."""
        raise NotImplementedError(f"{type(self).__name__} declares no sync streams")

    def confirm(self, invoice_ids: Sequence[str], known: Known) -> Iterator[Batch]:
        """The invoices asked for by id, in whatever state the platform has them: the evidence before closing."""
        raise NotImplementedError(f"{type(self).__name__} cannot read invoices by id")

    @property
    def calls(self) -> int:
        """Platform calls made so far (for the sync summary and the benches), without handing out the client."""
        return self.api.calls

    @abc.abstractmethod
    def fetch_pdf(self, invoice: Invoice) -> bytes:
        """The invoice document as PDF bytes."""

    @abc.abstractmethod
    def send_reminder(self, request: ReminderRequest) -> Receipt:
        """Send through the platform's own mailing and record the step on each invoice.

        Raises `ReminderRefused` with a reason a bookkeeper can act on when the platform will not send it.
        """

    @abc.abstractmethod
    def add_note(self, invoice: Invoice, text: str, *, idempotency_key: str) -> Receipt:
        """Record a note (step, idempotency key) on the invoice (or its account) on the platform."""

    def payment_url(self, invoice: Invoice) -> str | None:
        """The debtor's payment link for this invoice, for a text that should carry it.

        Most platforms deliver it with the invoice (`Invoice.payment_url`); one that charges a call per invoice
        for it (Xero's online invoice) answers here, when a text actually needs it, instead of during sync.
        """
        return invoice.payment_url

    def find_note(self, invoice: Invoice, idempotency_key: str) -> Receipt | None:
        """Reconciliation after a crash: the note carrying this key, if the platform already has it.

        Returns None when the platform cannot be asked (then the outbox relies on its own records).
        """
        return None

    # delivery: the outbox calls these, so a crash between the mail and its note can be told apart
    def mail_reminder(self, request: ReminderRequest) -> Receipt:
        """The mail alone (the first of a reminder's two writes); `record_reminder` writes the note after it.

        Adapters that cannot split the two do both here (then `record_reminder` has nothing left to do).
        """
        return self.send_reminder(request)

    def record_reminder(self, request: ReminderRequest, mailed: Receipt) -> Receipt:
        """Record a mailed reminder on the platform (the note carrying the key); never raises once mailed."""
        return mailed

    def recheck(self, invoices: Sequence[Invoice]) -> Mapping[str, FreshInvoice]:
        """A fresh, batched read of these invoices right before sending (platform id → what the platform has).

        An invoice missing from the answer was not checked; the default checks nothing.
        """
        return {}

    def reminder_trace(self, request: ReminderRequest, before: Mapping[str, Any],
                       fresh: Mapping[str, FreshInvoice]) -> bool | None:
        """After a crash: did the platform send this reminder? `before` holds each invoice's `FreshInvoice.trace`
        read when the row was claimed (as stored: lists for tuples), `fresh` the invoices now. None: the platform
        cannot tell."""
        return None

    def warnings(self) -> list[str]:
        """Things the user should fix on the platform side (e.g. its own automatic reminders are on)."""
        return []
