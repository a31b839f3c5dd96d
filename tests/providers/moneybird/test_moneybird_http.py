"""Moneybird's HTTP profile with respx: error bodies onto the hierarchy, Retry-After as delta or epoch, pacing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
import respx
from pydantic import SecretStr

from connector.models import Invoice
from providers.base import ConnectionSettings, SyncState, Token
from providers.errors import AuthorizationExpired, BadPlatformData, NotFound, PlatformError
from providers.moneybird import MoneybirdProvider
from providers.moneybird.client import BARE_429_WAIT, RETRY_AFTER_CAP, MoneybirdProfile, RecordNotFound
from providers.ratelimit import ARRIVAL_MARGIN
from providers.tokens import MemoryTokenStore

API = "https://moneybird.com/api/v2/"
ADMIN = "123"
START = 1_800_000_000.0


class Clock:
    """Virtual time: sleeping moves it on."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds




@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def adapter(clock):
    settings = ConnectionSettings(name="mb", provider="moneybird", tenant=ADMIN, client_id="app",
                                  client_secret=SecretStr("secret"))
    token = Token(access_token=SecretStr("access-0123456789"), refresh_token=SecretStr("refresh-0123456789"),
                  issued_at=datetime.fromtimestamp(START, UTC))
    provider = MoneybirdProvider.connect(settings, tokens=MemoryTokenStore({"mb": token}), clock=clock,
                                         sleep=clock.sleep)
    yield provider
    provider.close()


def profile() -> MoneybirdProfile:
    return MoneybirdProvider.http_profile(ConnectionSettings(name="mb", provider="moneybird", client_id="app"))


def answer(status: int, body: object = None, *, text: str | None = None, headers: dict | None = None):
    request = httpx.Request("GET", f"{API}{ADMIN}/sales_invoices/1.json")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_retry_after_is_read_as_seconds_or_as_an_epoch_timestamp():
    assert profile().retry_after(answer(429, text="Retry later", headers={"Retry-After": "42"}), START) == 42
    epoch = answer(429, text="Retry later", headers={"Retry-After": str(int(START) + 90)})
    assert profile().retry_after(epoch, START) == 90


def test_without_retry_after_the_window_reset_is_used_and_every_wait_is_capped():
    reset_only = answer(429, text="Retry later", headers={"RateLimit-Reset": str(int(START) + 120)})
    far = answer(429, text="Retry later", headers={"Retry-After": str(int(START) + 86_400)})
    bare = answer(429, text="<html><h1>429 Too Many Requests</h1></html>")

    assert profile().retry_after(reset_only, START) == 120
    assert profile().retry_after(far, START) == RETRY_AFTER_CAP
    assert profile().retry_after(bare, START) == BARE_429_WAIT


def test_rate_headers_on_a_429_are_read_and_absent_ones_are_not_required():
    readings = profile().read_limits(answer(429, text="Retry later", headers={
        "RateLimit-Limit": "150", "RateLimit-Remaining": "0", "RateLimit-Reset": str(int(START) + 60)}))

    assert [(r.remaining, r.reset_at) for r in readings] == [(0, START + 60)]
    assert profile().read_limits(answer(200, [])) == []


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (404, {"error": "record not found", "symbolic": {"id": "not_found"}}, RecordNotFound, "record not found"),
        (404, {"error": "Not Found"}, NotFound, "Not Found"),  # not Moneybird's own answer: no evidence of deletion
        (422, {"error": {"note": ["can't be blank"]}, "details": {"note": [{"error": "blank"}]}}, PlatformError,
         "note can't be blank"),
        (402, {"error": "Plan limit reached"}, PlatformError, "plan"),
        (403, {"error": "Feature not active"}, PlatformError, "Feature not active"),
        (400, {"error": "per_page does not have a valid value"}, PlatformError, "per_page"),
    ],
)
def test_moneybird_error_bodies_map_onto_the_hierarchy(status, body, kind, words):
    error = profile().error_for(answer(status, body), "mb")

    assert type(error) is kind and words in str(error) and error.status == status
    assert str(error).startswith("mb: ")


def test_a_missing_scope_is_not_a_token_to_refresh():
    scope = answer(401, {"error": "No access to [:settings]"})
    invalid = answer(401, {"error": "token is invalid", "symbolic": {"request": "invalid_grant"}})

    assert not profile().token_expired(scope) and profile().token_expired(invalid)
    error = profile().error_for(scope, "mb")
    assert isinstance(error, AuthorizationExpired) and "`settings` scope" in str(error)


@respx.mock
def test_a_rejected_token_is_refreshed_once_then_reported_as_needing_reconnection(adapter):
    listing = respx.get(f"{API}{ADMIN}/workflows.json").mock(return_value=httpx.Response(
        401, json={"error": "token is invalid", "symbolic": {"request": "invalid_grant"}}))
    refresh = respx.post("https://moneybird.com/oauth/token").mock(return_value=httpx.Response(200, json={
        "access_token": "access-new-0123456789", "token_type": "bearer", "refresh_token": "refresh-new-0123",
        "scope": "sales_invoices", "created_at": int(START)}))

    with pytest.raises(AuthorizationExpired, match="dunning setup --reconnect mb"):
        adapter.client.workflows()

    assert refresh.call_count == 1 and listing.call_count == 2
    assert listing.calls[-1].request.headers["Authorization"] == "Bearer access-new-0123456789"
    assert "refresh_token=refresh-0123456789" in refresh.calls[0].request.content.decode()


@respx.mock
def test_a_429_waits_as_told_then_succeeds(adapter, clock):
    route = respx.get(f"{API}{ADMIN}/workflows.json").mock(side_effect=[
        httpx.Response(429, text="Retry later", headers={"Retry-After": str(int(START) + 61),
                                                         "RateLimit-Remaining": "0",
                                                         "RateLimit-Reset": str(int(START) + 61)}),
        httpx.Response(200, json=[]),
    ])

    assert adapter.client.workflows() == []
    assert route.call_count == 2 and clock.now >= START + 61


@respx.mock
def test_the_window_s_budget_goes_at_once_and_the_next_call_waits_for_the_window(adapter, clock):
    respx.get(f"{API}{ADMIN}/workflows.json").mock(return_value=httpx.Response(200, json=[]))

    for _ in range(150):
        adapter.client.workflows()
    assert clock.now == START  # 150 calls in 5 minutes: no reason to space them out

    adapter.client.workflows()
    assert clock.now == START + 300 + ARRIVAL_MARGIN  # the 151st waits until the first has left the window


@respx.mock
def test_the_synchronization_post_is_retried_after_an_outage_but_send_reminders_is_not(adapter):
    batch = respx.post(f"{API}{ADMIN}/sales_invoices/synchronization.json").mock(
        side_effect=[httpx.Response(503, json={"error": "Service unavailable"}), httpx.Response(200, json=[])])
    send = respx.post(f"{API}{ADMIN}/sales_invoices/send_reminders.json").mock(
        return_value=httpx.Response(503, json={"error": "Service unavailable"}))

    assert adapter.client.invoices(["1", "2"]) == []
    with pytest.raises(PlatformError) as failed:
        adapter.client.send_reminders([{"contact_id": "1"}])

    assert batch.call_count == 2 and send.call_count == 1 and failed.value.retryable


@respx.mock
def test_the_pdf_redirect_is_followed_without_the_authorization_header(adapter):
    respx.get(f"{API}{ADMIN}/sales_invoices/9/download_pdf.json").mock(return_value=httpx.Response(
        302, headers={"Location": "https://storage.example/abc/download"}, text="moved"))
    signed = respx.get("https://storage.example/abc/download").mock(
        return_value=httpx.Response(200, content=b"%PDF-1.4 x"))
    invoice = _invoice("9")

    assert adapter.fetch_pdf(invoice) == b"%PDF-1.4 x"
    assert "Authorization" not in signed.calls[0].request.headers


def test_the_api_url_override_moves_the_api_and_the_oauth_endpoints():
    settings = ConnectionSettings(name="mb", provider="moneybird", client_id="app",
                                  api_url="http://127.0.0.1:9999/mb/")
    endpoints = MoneybirdProvider.oauth(settings)

    assert MoneybirdProvider.http_profile(settings).base_url == "http://127.0.0.1:9999/mb/api/v2/"
    assert endpoints.authorize_url == "http://127.0.0.1:9999/mb/oauth/authorize"
    assert endpoints.token_url == "http://127.0.0.1:9999/mb/oauth/token"
    assert endpoints.scopes == ("sales_invoices",) and not endpoints.pkce


def test_the_settings_scope_is_asked_only_when_configured():
    settings = ConnectionSettings(name="mb", provider="moneybird", client_id="app",
                                  options={"settings_scope": True})

    assert MoneybirdProvider.oauth(settings).scopes == ("sales_invoices", "settings")
    assert MoneybirdProvider.oauth(settings).authorize_url == "https://moneybird.com/oauth/authorize"


def _invoice(platform_id: str) -> Invoice:
    return Invoice(connection="mb", platform_id=platform_id, number="2026-0009", debtor_id="1",
                   issue_date=date(2026, 10, 1), due_date=date(2026, 10, 15), currency="EUR", total=Decimal("10"),
                   amount_paid=Decimal("0"), outstanding=Decimal("10"), status="late")


@respx.mock
def test_a_note_accepted_without_a_readable_answer_still_counts_as_made(adapter):
    route = respx.post(f"{API}{ADMIN}/sales_invoices/9/notes.json").mock(return_value=httpx.Response(201, text=""))

    receipt = adapter.add_note(_invoice("9"), "Gebeld", idempotency_key="note-key-0001")

    assert route.call_count == 1 and receipt.platform_reference is None
    assert route.calls[0].request.content == b'{"note":{"note":"Gebeld dunning-key:note-key-0001","todo":false}}'


@respx.mock
def test_synchronization_ids_and_versions_may_arrive_as_integers_or_strings(adapter):
    listing = respx.get(f"{API}{ADMIN}/sales_invoices/synchronization.json").mock(return_value=httpx.Response(
        200, json=[{"id": 474244266817750840, "version": 1766494598}, {"id": "17", "version": "1766494599"}]))
    respx.get(f"{API}{ADMIN}/contacts/synchronization.json").mock(return_value=httpx.Response(200, json=[]))
    batch = respx.post(f"{API}{ADMIN}/sales_invoices/synchronization.json").mock(
        return_value=httpx.Response(200, json=[]))

    pages = list(adapter.sync(SyncState(open_invoices={"474244266817750840": "1766494598", "17": "1766494599"})))

    assert listing.call_count == 1 and batch.call_count == 0  # both versions match the store's
    assert "filter=state%3Aopen%7Cpending_payment%7Clate%7Creminded" in str(listing.calls[0].request.url)
    assert [i for p in pages for i in p.closed_invoice_ids] == [] and all(not p.invoices for p in pages)


@respx.mock
def test_an_answer_that_is_not_a_pdf_is_never_handed_on_as_the_invoice(adapter):
    respx.get(f"{API}{ADMIN}/sales_invoices/9/download_pdf.json").mock(return_value=httpx.Response(
        302, headers={"Location": "https://storage.example/abc/download"}, text="moved"))
    respx.get("https://storage.example/abc/download").mock(
        return_value=httpx.Response(200, html="<html>Service temporarily unavailable</html>"))

    with pytest.raises(BadPlatformData, match="2026-0009 is not a PDF"):
        adapter.fetch_pdf(_invoice("9"))


@respx.mock
def test_a_pdf_link_refused_by_the_file_host_is_renewed_not_taken_for_a_lost_authorisation(adapter):
    location = respx.get(f"{API}{ADMIN}/sales_invoices/9/download_pdf.json").mock(return_value=httpx.Response(
        302, headers={"Location": "https://storage.example/abc/download"}, text="moved"))
    respx.get("https://storage.example/abc/download").mock(side_effect=[
        httpx.Response(401, text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"),
        httpx.Response(200, content=b"%PDF-1.4 x"),
    ])

    assert adapter.fetch_pdf(_invoice("9")) == b"%PDF-1.4 x"
    assert location.call_count == 2


@respx.mock
def test_the_signed_pdf_link_is_fetched_at_once_not_behind_moneybirds_call_window(adapter, clock):
    def redirect(_request: httpx.Request) -> httpx.Response:
        adapter.api.limiter.hold(120)  # say the window is spent right after this call (a Retry-After elsewhere)
        return httpx.Response(302, headers={"Location": "https://storage.example/abc/download"}, text="moved")

    respx.get(f"{API}{ADMIN}/sales_invoices/9/download_pdf.json").mock(side_effect=redirect)
    download = respx.get("https://storage.example/abc/download").mock(
        return_value=httpx.Response(200, content=b"%PDF-1.4 x"))

    assert adapter.fetch_pdf(_invoice("9")) == b"%PDF-1.4 x"
    # the link lives 30 seconds: waiting out Moneybird's window first would have let it die
    assert clock.now - START < 30 and download.call_count == 1
    assert "Authorization" not in download.calls[0].request.headers
