"""The Xero client against canned answers (respx): requests as Xero wants them, error bodies mapped to the hierarchy."""

from __future__ import annotations

import base64
import email.utils
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import SecretStr

from connector.models import Debtor, DebtorKind, Invoice
from providers.base import ConnectionSettings, ReminderRequest, SyncState, Token
from providers.errors import (
    AuthorizationExpired,
    BadPlatformData,
    NotFound,
    PlatformError,
    RateLimited,
    ReminderRefused,
)
from providers.xero import XeroProvider

API = "https://api.xero.com/api.xro/2.0"
TOKEN_URL = "https://identity.xero.com/connect/token"
TENANT = "fe79f7dd-b6d4-4a92-ba7b-538af6289c58"
INVOICE_ID = "a03ffcd2-5d91-4c7e-b483-318584e9e439"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_provider(clock: Clock, tokens) -> XeroProvider:
    settings = ConnectionSettings(name="acme-xero", provider="xero", tenant=TENANT, client_id="app",
                                  client_secret=SecretStr("secret"))
    issued = datetime.fromtimestamp(clock(), UTC)
    tokens.save("acme-xero", Token(access_token=SecretStr("access-1-abcdefgh"), refresh_token=SecretStr("refresh-1"),
                                   expires_at=issued + timedelta(minutes=30), issued_at=issued))
    return XeroProvider.connect(settings, tokens=tokens, clock=clock, sleep=clock.sleep)


@pytest.fixture(name="xero")
def _xero(clock: Clock, tokens) -> XeroProvider:
    provider = make_provider(clock, tokens)
    yield provider
    provider.close()


def envelope(**content: object) -> dict:
    return {"Id": "x", "Status": "OK", "ProviderName": "test", "DateTimeUTC": "/Date(1795424400000)/", **content}


def limits(**extra: str) -> dict[str, str]:
    return {"X-DayLimit-Remaining": "4990", "X-MinLimit-Remaining": "59", "X-AppMinLimit-Remaining": "9999"} | extra


def problem(status: int, detail: str) -> httpx.Response:
    return httpx.Response(status, json={"Type": None, "Title": "Unauthorized", "Status": status, "Detail": detail,
                                        "Instance": "i", "Extensions": {}}, headers=limits())


def invoice() -> Invoice:
    return Invoice(connection="acme-xero", platform_id=INVOICE_ID, number="INV-0006", debtor_id="c1",
                   issue_date=datetime(2026, 10, 1).date(), due_date=datetime(2026, 10, 15).date(), currency="EUR",
                   total="575.00", amount_paid="0", outstanding="575.00", status="AUTHORISED")


def reminder() -> ReminderRequest:
    debtor = Debtor(connection="acme-xero", platform_id="c1", name="Bouw B.V.", kind=DebtorKind.BUSINESS,
                    emails=("debiteuren@bouw.example",))
    return ReminderRequest(step="first_reminder", debtor=debtor, invoices=(invoice(),), message="-",
                           idempotency_key="outbox-0001-first")


EMPTY_PAGE = envelope(pagination={"page": 1, "pageSize": 1000, "pageCount": 0, "itemCount": 0}, Invoices=[],
                      Contacts=[])


@respx.mock
def test_a_full_read_asks_for_open_sales_invoices_in_pages_of_1000_with_the_tenant_header(xero) -> None:
    route = respx.get(f"{API}/Invoices").mock(return_value=httpx.Response(200, json=EMPTY_PAGE, headers=limits()))

    list(xero.sync(SyncState()))

    sent = route.calls.last.request
    assert sent.headers["Xero-tenant-id"] == TENANT
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Authorization"] == "Bearer access-1-abcdefgh"
    assert dict(sent.url.params) == {"where": 'Type=="ACCREC"', "order": "UpdatedDateUTC ASC",
                                     "Statuses": "AUTHORISED", "page": "1", "pageSize": "1000"}
    assert "If-Modified-Since" not in sent.headers


@respx.mock
def test_an_incremental_read_sends_if_modified_since_and_no_status_filter(xero) -> None:
    invoices = respx.get(f"{API}/Invoices").mock(return_value=httpx.Response(200, json=EMPTY_PAGE, headers=limits()))
    contacts = respx.get(f"{API}/Contacts").mock(return_value=httpx.Response(200, json=EMPTY_PAGE, headers=limits()))
    cursor = json.dumps({"invoices": "2026-11-22T10:00:00.500Z", "contacts": "2026-11-22T09:00:00Z"})

    list(xero.sync(SyncState(cursor=cursor)))

    sent = invoices.calls.last.request
    assert sent.headers["If-Modified-Since"] == "2026-11-22T09:59:59Z"  # a second early: see if_modified_since
    assert "Statuses" not in sent.url.params
    assert dict(sent.url.params) == {"where": 'Type=="ACCREC"', "order": "UpdatedDateUTC ASC", "page": "1",
                                     "pageSize": "1000"}
    assert contacts.calls.last.request.headers["If-Modified-Since"] == "2026-11-22T08:59:59Z"
    assert len(respx.calls) == 2


@respx.mock
def test_an_expired_token_is_refreshed_once_and_the_call_repeated(xero, tokens) -> None:
    token = respx.post(TOKEN_URL).mock(return_value=httpx.Response(200, json={
        "access_token": "access-2-abcdefgh", "refresh_token": "refresh-2", "expires_in": 1800, "token_type": "Bearer"}))
    respx.get(f"{API}/InvoiceReminders/Settings").mock(side_effect=[
        problem(401, "TokenExpired: token expired at 11/23/2026 08:59:00"),
        httpx.Response(200, json=envelope(InvoiceReminders=[{"Enabled": False}]), headers=limits()),
    ])

    assert xero.warnings() == []
    assert token.call_count == 1
    assert respx.calls.last.request.headers["Authorization"] == "Bearer access-2-abcdefgh"
    assert tokens.load("acme-xero").refresh_token.get_secret_value() == "refresh-2"


@respx.mock
def test_a_missing_scope_asks_for_reauthorisation_without_refreshing(xero) -> None:
    token = respx.post(TOKEN_URL)
    respx.get(f"{API}/Invoices").mock(return_value=problem(401, "AuthorizationUnsuccessful"))

    with pytest.raises(AuthorizationExpired, match="scopes") as refused:
        list(xero.sync(SyncState()))
    assert token.call_count == 0
    assert "dunning setup --reconnect acme-xero" in str(refused.value)


@respx.mock
def test_a_missing_scope_in_rfc7807_casing_is_not_refreshed_either(xero) -> None:
    token = respx.post(TOKEN_URL)
    respx.get(f"{API}/Invoices").mock(return_value=httpx.Response(401, json={
        "type": None, "title": "Unauthorized", "status": 401, "detail": "AuthorizationUnsuccessful"}))

    with pytest.raises(AuthorizationExpired, match="scopes"):
        list(xero.sync(SyncState()))
    assert token.call_count == 0


@respx.mock
def test_a_disconnected_organisation_is_named_and_needs_reconnecting(xero) -> None:
    respx.get(f"{API}/Invoices").mock(return_value=problem(403, "AuthenticationUnsuccessful"))

    with pytest.raises(AuthorizationExpired, match=TENANT) as refused:
        list(xero.sync(SyncState()))
    assert "no longer connected" in str(refused.value)


@respx.mock
def test_validation_errors_on_email_become_a_refusal_with_xeros_words(xero) -> None:
    respx.post(f"{API}/Invoices/{INVOICE_ID}/Email").mock(return_value=httpx.Response(400, json={
        "ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
        "Elements": [{"InvoiceID": INVOICE_ID, "ValidationErrors": [{"Message": "Contact has no email address"}]}]},
        headers=limits()))

    with pytest.raises(ReminderRefused) as refused:
        xero.send_reminder(reminder())

    assert "INV-0006" in refused.value.reason and "Contact has no email address" in refused.value.reason
    assert len(respx.calls) == 1  # a 400 is final: never retried, no history written


@respx.mock
def test_email_sends_the_idempotency_key_and_an_empty_body(xero) -> None:
    email = respx.post(f"{API}/Invoices/{INVOICE_ID}/Email").mock(return_value=httpx.Response(204, headers=limits()))
    history = respx.put(f"{API}/Invoices/{INVOICE_ID}/History").mock(return_value=httpx.Response(
        200, json=envelope(HistoryRecords=[{"DateUTC": "/Date(1795424400000+0000)/", "Details": "x"}]),
        headers=limits()))
    online = respx.get(f"{API}/Invoices/{INVOICE_ID}/OnlineInvoice").mock(return_value=httpx.Response(
        200, json=envelope(OnlineInvoices=[{"OnlineInvoiceUrl": "https://in.xero.com/abc"}]), headers=limits()))

    receipt = xero.send_reminder(reminder())

    assert email.calls.last.request.headers["Idempotency-Key"] == "outbox-0001-first"
    assert email.calls.last.request.content == b"{}"
    assert json.loads(history.calls.last.request.content) == {
        "HistoryRecords": [{"Details": "Dunning Connector: first_reminder [outbox-0001-first]"}]}
    assert history.calls.last.request.headers["Idempotency-Key"] != "outbox-0001-first"
    # two calls per reminder (the free tier's 1,000 a day): the online invoice link is not read while sending
    assert not online.called and len(respx.calls) == 2
    assert receipt.recipients and "INV-0006" in receipt.detail


@respx.mock
def test_a_bad_where_is_reported_as_our_bug(xero) -> None:
    respx.get(f"{API}/Invoices").mock(return_value=httpx.Response(400, json={
        "ErrorNumber": 16, "Type": "QueryParseException", "Message": "No property or field 'Foo' exists"},
        headers=limits()))

    with pytest.raises(PlatformError, match="bug in Dunning Connector"):
        list(xero.sync(SyncState()))


@respx.mock
def test_a_missing_invoice_is_not_found(xero) -> None:
    respx.get(f"{API}/Invoices/{INVOICE_ID}").mock(return_value=httpx.Response(
        404, text="The resource you're looking for cannot be found", headers=limits()))

    with pytest.raises(NotFound):
        xero.fetch_pdf(invoice())


@respx.mock
def test_the_pdf_is_asked_for_with_accept_pdf(xero) -> None:
    route = respx.get(f"{API}/Invoices/{INVOICE_ID}").mock(return_value=httpx.Response(
        200, content=b"%PDF-1.4 ...", headers=limits() | {"Content-Type": "application/pdf"}))

    assert xero.fetch_pdf(invoice()).startswith(b"%PDF")
    assert route.calls.last.request.headers["Accept"] == "application/pdf"


@respx.mock
def test_a_minute_429_waits_for_retry_after_then_succeeds(xero, clock: Clock) -> None:
    started = clock()
    respx.get(f"{API}/InvoiceReminders/Settings").mock(side_effect=[
        httpx.Response(429, headers=limits(**{"Retry-After": "23", "X-Rate-Limit-Problem": "minute"})),
        httpx.Response(200, json=envelope(InvoiceReminders=[{"Enabled": True}]), headers=limits()),
    ])

    assert xero.warnings()
    assert clock() - started >= 23


@respx.mock
def test_a_day_429_stops_the_connection_for_this_run_at_once(xero) -> None:
    respx.get(f"{API}/Invoices").mock(return_value=httpx.Response(
        429, headers=limits(**{"Retry-After": "43000", "X-Rate-Limit-Problem": "day", "X-DayLimit-Remaining": "0"})))

    with pytest.raises(RateLimited) as refused:
        list(xero.sync(SyncState()))
    assert refused.value.for_the_day and "acme-xero" in str(refused.value)
    assert len(respx.calls) == 1


@respx.mock
def test_a_spent_minute_budget_makes_the_next_call_wait(xero, clock: Clock) -> None:
    respx.get(f"{API}/InvoiceReminders/Settings").mock(return_value=httpx.Response(
        200, json=envelope(InvoiceReminders=[{"Enabled": False}]), headers=limits(**{"X-MinLimit-Remaining": "0"})))
    xero.warnings()
    started = clock()

    xero.warnings()

    assert clock() - started >= 59


@respx.mock
def test_a_spent_minute_budget_waits_only_until_the_next_minute_by_xeros_clock(xero, clock: Clock) -> None:
    clock.now += 40
    answered_at = email.utils.format_datetime(datetime.fromtimestamp(clock(), UTC), usegmt=True)
    respx.get(f"{API}/InvoiceReminders/Settings").mock(return_value=httpx.Response(
        200, json=envelope(InvoiceReminders=[{"Enabled": False}]),
        headers=limits(**{"X-MinLimit-Remaining": "0", "Date": answered_at})))
    xero.warnings()
    started = clock()

    xero.warnings()

    assert 19 <= clock() - started <= 21  # Xero's clock said :40, so its minute window resets in 20 s


@respx.mock
def test_without_the_settings_scope_the_reminder_check_is_a_warning_not_a_failure(xero) -> None:
    respx.get(f"{API}/InvoiceReminders/Settings").mock(return_value=problem(401, "AuthorizationUnsuccessful"))

    assert "accounting.settings.read" in xero.warnings()[0]


@respx.mock
def test_an_unreadable_reminder_settings_answer_is_a_warning_not_a_failure(xero) -> None:
    respx.get(f"{API}/InvoiceReminders/Settings").mock(return_value=httpx.Response(
        200, json=envelope(), headers=limits()))

    assert "Invoice reminders in Xero yourself" in xero.warnings()[0]


@respx.mock
def test_an_offline_organisation_is_retried_then_reported(xero) -> None:
    respx.get(f"{API}/Invoices/{INVOICE_ID}").mock(return_value=httpx.Response(
        503, text="The Organisation is offline", headers=limits()))

    with pytest.raises(PlatformError, match="offline") as failed:
        xero.fetch_pdf(invoice())
    assert failed.value.retryable and len(respx.calls) == 5


@respx.mock
def test_an_xml_answer_is_bad_platform_data(xero) -> None:
    respx.get(f"{API}/Invoices/{INVOICE_ID}/History").mock(return_value=httpx.Response(
        200, text="<Response><Status>OK</Status></Response>", headers=limits() | {"Content-Type": "text/xml"}))

    with pytest.raises(BadPlatformData, match="not JSON"):
        xero.find_note(invoice(), "outbox-0001-first")


def test_oauth_asks_for_granular_scopes_with_pkce_and_honours_overrides() -> None:
    settings = ConnectionSettings(name="a", provider="xero", client_id="app")
    oauth = XeroProvider.oauth(settings)
    assert oauth.scopes == ("offline_access", "accounting.invoices", "accounting.contacts.read",
                            "accounting.settings.read")
    assert oauth.pkce and oauth.authorize_url == "https://login.xero.com/identity/connect/authorize"
    assert oauth.token_url == TOKEN_URL
    legacy = settings.model_copy(update={"scopes": ("offline_access", "accounting.transactions")})
    assert XeroProvider.oauth(legacy).scopes == ("offline_access", "accounting.transactions")


def test_the_starter_tier_has_a_smaller_day_budget() -> None:
    settings = ConnectionSettings(name="a", provider="xero", client_id="app", api_url="http://proxy/xero/",
                                  options={"starter_tier": True})
    profile = XeroProvider.http_profile(settings)
    assert {w.name: w.limit for w in profile.windows} == {"minute": 60, "day": 1000}
    assert profile.base_url == "http://proxy/xero"


def sales_invoice(n: int, *, status: str = "AUTHORISED", kind: str = "ACCREC", updated_ms: int = 1795420000000,
                  **changes: object) -> dict:
    """A sales invoice as a listing returns it."""
    return {"Type": kind, "InvoiceID": f"00000000-0000-4000-8000-{n:012d}", "InvoiceNumber": f"INV-{n:05d}",
            "Contact": {"ContactID": "5b96e86b-418e-48e8-8949-308c14aec278", "Name": "Bouw B.V."},
            "DateString": "2026-10-20T00:00:00", "Date": "/Date(1792454400000+0000)/",
            "DueDateString": "2026-11-03T00:00:00", "DueDate": "/Date(1793664000000+0000)/", "Status": status,
            "Total": 121.0, "AmountDue": 121.0, "AmountPaid": 0, "AmountCredited": 0, "CurrencyCode": "EUR",
            "UpdatedDateUTC": f"/Date({updated_ms + n}+0000)/"} | changes


KNOWN_CONTACT = {"5b96e86b-418e-48e8-8949-308c14aec278": "2019-11-14T18:10:38.314+00:00"}


def mock_contacts() -> respx.Route:
    """`GET /Contacts`: the one debtor of these invoices (a full sync re-reads it)."""
    contact = {"ContactID": "5b96e86b-418e-48e8-8949-308c14aec278", "Name": "Bouw B.V.",
               "UpdatedDateUTC": "/Date(1573755038314+0000)/"}
    return respx.get(f"{API}/Contacts").mock(return_value=httpx.Response(
        200, json=envelope(Contacts=[contact]), headers=limits()))


@respx.mock
def test_paging_follows_page_count_when_the_server_caps_the_page_size(xero) -> None:
    # a server that honours pageSize only up to 100: a page of 100 out of 1,000 asked is not the end
    pages = [envelope(pagination={"page": n, "pageSize": 100, "pageCount": 2, "itemCount": 150},
                      Invoices=[sales_invoice(i) for i in range(100 * (n - 1), min(150, 100 * n))])
             for n in (1, 2)]
    route = respx.get(f"{API}/Invoices").mock(side_effect=[httpx.Response(200, json=p, headers=limits())
                                                           for p in pages])
    mock_contacts()

    synced = [i for page in xero.sync(SyncState(debtors=KNOWN_CONTACT)) for i in page.invoices]

    assert len(synced) == 150 and route.call_count == 2
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2"]


@respx.mock
def test_without_a_paging_envelope_only_a_page_shorter_than_xeros_default_ends_the_listing(xero) -> None:
    bodies = [envelope(Invoices=[sales_invoice(i) for i in range(100)]),
              envelope(Invoices=[sales_invoice(i) for i in range(100, 120)])]
    route = respx.get(f"{API}/Invoices").mock(side_effect=[httpx.Response(200, json=b, headers=limits())
                                                           for b in bodies])
    mock_contacts()

    synced = [i for page in xero.sync(SyncState(debtors=KNOWN_CONTACT)) for i in page.invoices]

    assert len(synced) == 120 and route.call_count == 2


@respx.mock
def test_records_that_are_not_ours_are_skipped_quietly_and_the_cursor_moves_past_them(xero) -> None:
    # an incremental answer (no status filter) with a new draft without dates and a bill from a lenient server
    draft = sales_invoice(1, status="DRAFT", updated_ms=1795424000000, Date=None, DateString=None, DueDate=None,
                          DueDateString=None)
    bill = sales_invoice(2, kind="ACCPAY", updated_ms=1795425000000)
    respx.get(f"{API}/Invoices").mock(return_value=httpx.Response(200, json=envelope(
        pagination={"page": 1, "pageSize": 1000, "pageCount": 1, "itemCount": 2}, Invoices=[draft, bill]),
        headers=limits()))
    respx.get(f"{API}/Contacts").mock(return_value=httpx.Response(200, json=EMPTY_PAGE, headers=limits()))
    cursor = json.dumps({"invoices": "2026-11-22T10:00:00Z", "contacts": "2026-11-22T09:00:00Z"})

    pages = list(xero.sync(SyncState(cursor=cursor)))

    assert not any(p.problems for p in pages) and not any(p.invoices for p in pages)
    cursor_after = datetime.fromisoformat(json.loads(pages[-1].cursor)["invoices"])
    assert cursor_after == datetime.fromtimestamp(1795425000002 / 1000, UTC)  # the bill's UpdatedDateUTC


@respx.mock
def test_without_a_server_clock_contacts_are_still_checked_by_the_next_sync(xero, clock: Clock) -> None:
    bare = {"Invoices": [sales_invoice(1)], "Contacts": []}  # no DateTimeUTC, no Date header
    respx.get(f"{API}/Invoices").mock(return_value=httpx.Response(200, json=bare, headers=limits()))
    mock_contacts()

    pages = list(xero.sync(SyncState(debtors=KNOWN_CONTACT)))

    contacts_since = datetime.fromisoformat(json.loads(pages[-1].cursor)["contacts"])
    assert contacts_since <= datetime.fromtimestamp(clock(), UTC)
    assert datetime.fromtimestamp(clock(), UTC) - contacts_since <= timedelta(hours=2)


@respx.mock
def test_a_401_in_other_words_than_token_expired_gets_one_refresh_with_basic_client_auth(xero, tokens) -> None:
    token = respx.post(TOKEN_URL).mock(return_value=httpx.Response(200, json={
        "access_token": "access-2-abcdefgh", "refresh_token": "refresh-2", "expires_in": 1800, "token_type": "Bearer"}))
    settings = respx.get(f"{API}/InvoiceReminders/Settings").mock(side_effect=[
        httpx.Response(401, text="Unauthorized", headers=limits()),
        httpx.Response(200, json=envelope(InvoiceReminders=[{"Enabled": False}]), headers=limits()),
    ])

    assert xero.warnings() == []
    assert token.call_count == 1 and settings.call_count == 2
    sent = token.calls.last.request
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"app:secret").decode()
    assert parse_qs(sent.content.decode()) == {"grant_type": ["refresh_token"], "refresh_token": ["refresh-1"]}
    assert tokens.load("acme-xero").refresh_token.get_secret_value() == "refresh-2"


@respx.mock
def test_the_days_last_call_that_mailed_is_not_reported_as_a_failure(xero) -> None:
    email = respx.post(f"{API}/Invoices/{INVOICE_ID}/Email").mock(
        return_value=httpx.Response(204, headers=limits(**{"X-DayLimit-Remaining": "0"})))
    respx.put(f"{API}/Invoices/{INVOICE_ID}/History").mock(return_value=httpx.Response(
        429, headers=limits(**{"X-DayLimit-Remaining": "0", "X-Rate-Limit-Problem": "day", "Retry-After": "50000"})))

    receipt = xero.send_reminder(reminder())

    assert email.call_count == 1
    assert "e-mailed invoice INV-0006" in receipt.detail and "by hand" in receipt.detail


@respx.mock
@pytest.mark.parametrize("problem", ["day", "Daily"])
def test_a_429_that_names_the_day_limit_stops_at_once_even_with_a_short_retry_after(xero, problem: str) -> None:
    respx.get(f"{API}/Invoices").mock(return_value=httpx.Response(
        429, headers=limits(**{"Retry-After": "600", "X-Rate-Limit-Problem": problem})))

    with pytest.raises(RateLimited) as refused:
        list(xero.sync(SyncState()))
    assert refused.value.for_the_day and len(respx.calls) == 1


@respx.mock
def test_a_spent_app_wide_minute_budget_makes_the_next_call_wait(xero, clock: Clock) -> None:
    respx.get(f"{API}/InvoiceReminders/Settings").mock(return_value=httpx.Response(
        200, json=envelope(InvoiceReminders=[{"Enabled": False}]),
        headers=limits(**{"X-AppMinLimit-Remaining": "0"})))
    xero.warnings()
    started = clock()

    xero.warnings()

    assert clock() - started >= 59


@respx.mock
def test_a_debtor_without_any_email_address_is_refused_before_asking_xero(xero) -> None:
    request = reminder()
    request = request.model_copy(update={"debtor": request.debtor.model_copy(update={"emails": ()})})

    with pytest.raises(ReminderRefused) as refused:
        xero.send_reminder(request)

    assert "no e-mail address" in refused.value.reason and "INV-0006" in refused.value.reason
    assert len(respx.calls) == 0  # never a call that could answer 204 and mail no one


@respx.mock
def test_a_history_write_answered_without_an_echo_still_counts_as_recorded(xero, clock: Clock) -> None:
    respx.post(f"{API}/Invoices/{INVOICE_ID}/Email").mock(return_value=httpx.Response(204, headers=limits()))
    respx.put(f"{API}/Invoices/{INVOICE_ID}/History").mock(return_value=httpx.Response(204, headers=limits()))
    respx.get(f"{API}/Invoices/{INVOICE_ID}/OnlineInvoice").mock(return_value=httpx.Response(
        200, json=envelope(OnlineInvoices=[]), headers=limits()))

    receipt = xero.send_reminder(reminder())

    assert "by hand" not in receipt.detail and "[outbox-0001-first]" in receipt.detail
    assert receipt.sent_at == datetime.fromtimestamp(clock(), UTC)


def refusing_the_zoned_form(request: httpx.Request) -> httpx.Response:
    """A server that takes `If-Modified-Since` only without a zone."""
    if request.headers["If-Modified-Since"].endswith("Z"):
        return httpx.Response(400, json={"ErrorNumber": 10, "Type": "ValidationException", "Message": "x",
                                         "Elements": [{"ValidationErrors": [{"Message": "bad date"}]}]})
    return httpx.Response(200, json=EMPTY_PAGE, headers=limits())


INCREMENTAL = json.dumps({"invoices": "2026-11-22T10:00:00Z", "contacts": "2026-11-22T09:00:00Z"})


@respx.mock
def test_a_server_that_refuses_the_zoned_if_modified_since_gets_the_zone_less_form(xero) -> None:
    contacts = respx.get(f"{API}/Contacts").mock(side_effect=refusing_the_zoned_form)
    invoices = respx.get(f"{API}/Invoices").mock(side_effect=refusing_the_zoned_form)

    pages = list(xero.sync(SyncState(cursor=INCREMENTAL)))

    assert pages and not any(p.problems for p in pages)
    # both listings go out at once: each is refused at most once in the zoned form, then read zone-less
    assert [c.request.headers["If-Modified-Since"] for c in contacts.calls][-1:] == ["2026-11-22T08:59:59"]
    assert [c.request.headers["If-Modified-Since"] for c in invoices.calls][-1:] == ["2026-11-22T09:59:59"]
    assert len(contacts.calls) <= 2 and len(invoices.calls) <= 2 and not xero.client.zoned_since
    assert sum(c.request.headers["If-Modified-Since"].endswith("Z") for c in [*contacts.calls, *invoices.calls]) >= 1


@respx.mock
def test_the_accepted_if_modified_since_form_is_kept_with_the_cursor_for_the_next_run(xero) -> None:
    contacts = respx.get(f"{API}/Contacts").mock(side_effect=refusing_the_zoned_form)
    invoices = respx.get(f"{API}/Invoices").mock(side_effect=refusing_the_zoned_form)
    kept = [p.cursor for p in xero.sync(SyncState(cursor=INCREMENTAL)) if p.cursor][-1]
    assert json.loads(kept)["zoned_since"] is False

    xero.client.zoned_since = True  # the next run's process starts afresh
    calls = len(contacts.calls) + len(invoices.calls)
    list(xero.sync(SyncState(cursor=kept)))
    assert len(contacts.calls) + len(invoices.calls) - calls == 2  # one call a listing: nothing refused again


@respx.mock
def test_a_400_that_the_zone_less_form_does_not_cure_is_reported(xero) -> None:
    route = respx.get(f"{API}/Contacts").mock(return_value=httpx.Response(400, json={
        "ErrorNumber": 10, "Type": "ValidationException", "Message": "x",
        "Elements": [{"ValidationErrors": [{"Message": "Something else"}]}]}))
    cursor = json.dumps({"invoices": "2026-11-22T10:00:00Z", "contacts": "2026-11-22T09:00:00Z"})

    with pytest.raises(PlatformError, match="Something else"):
        list(xero.sync(SyncState(cursor=cursor)))
    assert route.call_count == 2 and xero.client.zoned_since


@respx.mock
def test_a_429_with_a_spent_day_budget_but_no_problem_header_stops_for_the_day(xero) -> None:
    route = respx.get(f"{API}/Invoices").mock(return_value=httpx.Response(
        429, headers=limits(**{"Retry-After": "600", "X-DayLimit-Remaining": "0"})))

    with pytest.raises(RateLimited) as refused:
        list(xero.sync(SyncState()))
    assert refused.value.for_the_day and route.call_count == 1
