"""Exact's HTTP profile with respx: rate-limit headers in epoch milliseconds, 429 waits, OData error mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr

from providers.base import Token
from providers.errors import AuthorizationExpired, NotFound, PlatformError, RateLimited
from providers.exact import ExactProvider, mapping
from providers.exact.client import ExactProfile

from .conftest import memory_tokens, settings

BASE = "https://start.exactonline.nl/api/v1/"
URL = f"{BASE}123456/crm/Accounts"
NOW = 1_800_000_030.0  # half a minute past a full minute


class Clock:
    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def provider(clock: Clock, *, age: float = 0.0) -> ExactProvider:
    """An adapter whose token was obtained `age` seconds ago and, as far as our clock knows, lives 600 s from now."""
    now = datetime.fromtimestamp(clock(), UTC)
    tokens = memory_tokens(Token(access_token=SecretStr("access-0123456789"), refresh_token=SecretStr("refresh-012345"),
                                expires_at=now + timedelta(seconds=600), issued_at=now - timedelta(seconds=age)))
    return ExactProvider.connect(settings(), tokens=tokens, clock=clock, sleep=clock.sleep)


def odata_error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": "", "message": {"lang": "", "value": message}}})


def minute_reset_ms() -> str:
    return str(int((NOW // 60 + 1) * 60 * 1000))


def test_limit_headers_are_read_in_epoch_milliseconds() -> None:
    response = httpx.Response(200, headers={
        "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4321", "X-RateLimit-Reset": "1800057600000",
        "X-RateLimit-Minutely-Limit": "60", "X-RateLimit-Minutely-Remaining": "0",
        "X-RateLimit-Minutely-Reset": "1800000060000"})
    minute, day = ExactProfile(base_url=BASE).read_limits(response)
    assert (minute.window, minute.remaining, minute.reset_at, minute.daily) == ("minute", 0, 1_800_000_060.0, False)
    assert (day.window, day.remaining, day.reset_at, day.daily) == ("day", 4321, 1_800_057_600.0, True)


@respx.mock
def test_every_call_asks_for_json_with_the_bearer_token() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(200, json={"d": {"results": []}}))
    provider(Clock()).exact.all(mapping.ACCOUNTS_BY_ID, "ID eq guid'00000000-0000-0000-0000-000000000001'")
    sent = route.calls[0].request
    assert sent.headers["Accept"] == "application/json"  # Exact's default answer is Atom XML
    assert sent.headers["Authorization"] == "Bearer access-0123456789"
    assert sent.url.params["$select"] == ",".join(mapping.ACCOUNTS_BY_ID.select)


@pytest.mark.parametrize("link", [f"{URL}?$skiptoken=guid'x'", "/api/v1/123456/crm/Accounts?$skiptoken=guid'x'"])
@respx.mock
def test_next_links_are_followed_as_given_and_a_relative_one_from_the_answered_url(link: str) -> None:
    route = respx.get(URL).mock(side_effect=[
        httpx.Response(200, json={"d": {"results": [{"ID": 1}], "__next": link}}),
        httpx.Response(200, json={"d": {"results": [{"ID": 2}]}}),
    ])
    rows = provider(Clock()).exact.all(mapping.ACCOUNTS_BY_ID, "ID eq guid'00000000-0000-0000-0000-000000000001'")
    assert rows == [{"ID": 1}, {"ID": 2}]
    second = route.calls[1].request.url
    assert second.params["$skiptoken"] == "guid'x'" and "$select" not in second.params  # the link alone


@respx.mock
def test_an_api_url_with_a_path_prefix_keeps_it_for_api_and_token_calls() -> None:
    prefixed = settings(api_url="http://127.0.0.1:8080/exact/")
    assert ExactProvider.oauth(prefixed).token_url == "http://127.0.0.1:8080/exact/api/oauth2/token"
    assert ExactProvider.oauth(prefixed).authorize_url == "http://127.0.0.1:8080/exact/api/oauth2/auth"
    route = respx.get("http://127.0.0.1:8080/exact/api/v1/current/Me").mock(return_value=httpx.Response(
        200, json={"d": {"results": [{"CurrentDivision": 7}]}}))
    clock = Clock()
    issued = datetime.fromtimestamp(clock(), UTC)
    tokens = memory_tokens(Token(access_token=SecretStr("a"), expires_at=issued + timedelta(seconds=600), issued_at=issued))
    assert ExactProvider.connect(prefixed, tokens=tokens, clock=clock, sleep=clock.sleep).exact.me() == {"CurrentDivision": 7}
    assert route.call_count == 1


@respx.mock
def test_a_429_waits_until_the_minutely_reset_then_succeeds() -> None:
    clock = Clock()
    route = respx.get(URL).mock(side_effect=[
        httpx.Response(429, headers={"X-RateLimit-Minutely-Limit": "60", "X-RateLimit-Minutely-Remaining": "0",
                                     "X-RateLimit-Minutely-Reset": minute_reset_ms()}),
        httpx.Response(200, json={"d": {"results": []}}),
    ])
    assert provider(clock).exact.all(mapping.ACCOUNTS_BY_ID, "ID eq 1") == []
    assert route.call_count == 2 and clock.now - NOW == pytest.approx(30)


@respx.mock
def test_an_exhausted_minute_on_a_success_pauses_the_next_call_until_the_reset() -> None:
    clock = Clock()
    respx.get(URL).mock(return_value=httpx.Response(200, json={"d": []}, headers={
        "X-RateLimit-Minutely-Remaining": "0", "X-RateLimit-Minutely-Reset": minute_reset_ms()}))
    api = provider(clock).api
    api.request("GET", "123456/crm/Accounts")
    api.request("GET", "123456/crm/Accounts")
    assert clock.slept and clock.now - NOW == pytest.approx(30)


@respx.mock
def test_a_429_with_both_families_waits_for_the_spent_one() -> None:
    clock = Clock()
    route = respx.get(URL).mock(side_effect=[
        httpx.Response(429, headers={"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4000",
                                     "X-RateLimit-Reset": str(int(NOW + 20 * 3600) * 1000),
                                     "X-RateLimit-Minutely-Remaining": "0", "X-RateLimit-Minutely-Reset": minute_reset_ms()}),
        httpx.Response(200, json={"d": []}),
    ])
    provider(clock).api.request("GET", "123456/crm/Accounts")
    assert route.call_count == 2 and clock.now - NOW == pytest.approx(30)


@respx.mock
def test_a_429_with_neither_family_spent_waits_for_the_minute_not_the_day() -> None:
    clock = Clock()
    respx.get(URL).mock(side_effect=[
        httpx.Response(429, headers={"X-RateLimit-Remaining": "4000", "X-RateLimit-Reset": str(int(NOW + 3600) * 1000),
                                     "X-RateLimit-Minutely-Remaining": "3", "X-RateLimit-Minutely-Reset": minute_reset_ms()}),
        httpx.Response(200, json={"d": []}),
    ])
    provider(clock).api.request("GET", "123456/crm/Accounts")
    assert clock.now - NOW == pytest.approx(30)


@respx.mock
def test_a_reset_in_epoch_seconds_or_a_bare_retry_after_is_understood_too() -> None:
    clock = Clock()
    respx.get(URL).mock(side_effect=[
        httpx.Response(429, headers={"X-RateLimit-Minutely-Remaining": "0",
                                     "X-RateLimit-Minutely-Reset": str(int(NOW // 60 + 1) * 60)}),
        httpx.Response(429, headers={"Retry-After": "5"}),
        httpx.Response(200, json={"d": []}),
    ])
    provider(clock).api.request("GET", "123456/crm/Accounts")
    assert clock.now - NOW == pytest.approx(30 + 5)


@respx.mock
def test_a_spent_day_stops_the_connection_even_with_the_minute_family_present() -> None:
    clock = Clock()
    route = respx.get(URL).mock(return_value=httpx.Response(429, headers={
        "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW + 20 * 3600) * 1000),
        "X-RateLimit-Minutely-Remaining": "0", "X-RateLimit-Minutely-Reset": minute_reset_ms()}))
    with pytest.raises(RateLimited) as stopped:
        provider(clock).api.request("GET", "123456/crm/Accounts")
    assert stopped.value.for_the_day and clock.slept == [] and route.call_count == 1


@respx.mock
def test_a_spent_day_stops_the_connection_instead_of_waiting() -> None:
    clock = Clock()
    respx.get(URL).mock(return_value=httpx.Response(429, headers={
        "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW + 20 * 3600) * 1000)}))
    with pytest.raises(RateLimited) as stopped:
        provider(clock).api.request("GET", "123456/crm/Accounts")
    assert stopped.value.for_the_day and clock.slept == []


@respx.mock
def test_the_odata_error_message_is_shown() -> None:
    respx.get(URL).mock(return_value=odata_error(400, "Operator 'eq' incompatible with operand types 'System.Guid' "
                                                      "and 'System.Int32' at position 3."))
    with pytest.raises(PlatformError, match="incompatible with operand types") as failed:
        provider(Clock()).api.request("GET", "123456/crm/Accounts")
    assert failed.value.status == 400 and not failed.value.retryable


@respx.mock
def test_a_business_rule_500_is_final_and_not_retried() -> None:
    route = respx.post(f"{BASE}123456/activities/CommunicationNotes").mock(return_value=odata_error(500,
                                                                                                    "Verplicht: Relatie"))
    with pytest.raises(PlatformError, match="Verplicht: Relatie") as failed:
        provider(Clock()).api.request("POST", "123456/activities/CommunicationNotes", json={})
    assert not failed.value.retryable and route.call_count == 1


@respx.mock
def test_a_business_rule_500_on_a_read_is_not_retried_either() -> None:
    route = respx.get(URL).mock(return_value=odata_error(500, "Ongeldig: filter"))
    with pytest.raises(PlatformError):
        provider(Clock()).api.request("GET", "123456/crm/Accounts")
    assert route.call_count == 1


@respx.mock
def test_maintenance_503_is_retried_for_reads() -> None:
    route = respx.get(URL).mock(side_effect=[httpx.Response(503), httpx.Response(200, json={"d": []})])
    provider(Clock()).api.request("GET", "123456/crm/Accounts")
    assert route.call_count == 2


@respx.mock
def test_maintenance_says_so_when_it_lasts() -> None:
    respx.get(URL).mock(return_value=httpx.Response(503))
    with pytest.raises(PlatformError, match="maintenance") as failed:
        provider(Clock()).api.request("GET", "123456/crm/Accounts")
    assert failed.value.retryable


@respx.mock
def test_403_explains_missing_app_rights() -> None:
    respx.get(URL).mock(return_value=odata_error(403, "Forbidden"))
    with pytest.raises(PlatformError, match="App Center") as failed:
        provider(Clock()).api.request("GET", "123456/crm/Accounts")
    assert failed.value.status == 403 and "crm/Accounts" in str(failed.value)


@respx.mock
def test_404_is_not_found() -> None:
    respx.get(URL).mock(return_value=odata_error(404, "Resource not found for the segment."))
    with pytest.raises(NotFound):
        provider(Clock()).api.request("GET", "123456/crm/Accounts")


@respx.mock
def test_a_401_refreshes_once_then_asks_for_reauthorisation() -> None:
    clock = Clock()
    respx.get(URL).mock(return_value=httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}))
    token = respx.post("https://start.exactonline.nl/api/oauth2/token").mock(return_value=httpx.Response(
        400, json={"error": "unauthorized_client", "error_description": "Old refresh token used."}))
    with pytest.raises(AuthorizationExpired, match="reconnect"):
        provider(clock, age=575).api.request("GET", "123456/crm/Accounts")  # our clock ran behind Exact's
    assert token.call_count == 1
    sent = token.calls[0].request.content.decode()
    assert "client_secret=s3cret" in sent and "refresh_token=refresh-012345" in sent  # client_secret_post


@respx.mock
def test_a_401_within_570_seconds_of_the_last_token_request_asks_no_new_token() -> None:
    api = respx.get(URL).mock(return_value=httpx.Response(401))
    token = respx.post("https://start.exactonline.nl/api/oauth2/token").mock(return_value=httpx.Response(400, json={
        "error": "access_denied", "error_description": "Rate limit exceeded: access_token not expired"}))
    with pytest.raises(AuthorizationExpired):
        provider(Clock(), age=569).api.request("GET", "123456/crm/Accounts")
    assert token.call_count == 0 and api.call_count == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404])
@respx.mock
def test_any_refusal_of_system_divisions_falls_back_to_hrm_divisions(status: int) -> None:
    respx.get(f"{BASE}current/Me").mock(return_value=httpx.Response(200, json={"d": {"results": [
        {"CurrentDivision": 123456, "FullName": "Anna"}]}}))
    system = respx.get(f"{BASE}123456/system/Divisions").mock(return_value=odata_error(status, "Forbidden"))
    hrm = respx.get(f"{BASE}123456/hrm/Divisions").mock(return_value=httpx.Response(200, json={"d": {"results": [
        {"Code": 123456, "Description": "Bakkerij", "Main": True}]}}))
    tenants = provider(Clock()).list_tenants()
    assert [t.id for t in tenants] == ["123456"] and system.call_count == 1 and hrm.call_count == 1
    assert "$select" in hrm.calls[0].request.url.params


@respx.mock
def test_the_bearer_token_is_never_sent_to_another_host() -> None:
    elsewhere = respx.get(url__startswith="https://files.example.test/").mock(return_value=httpx.Response(200))
    with pytest.raises(PlatformError, match="another host"):
        provider(Clock()).exact.download("https://files.example.test/docs/SysAttachment.aspx?ID=1")
    assert elsewhere.call_count == 0
