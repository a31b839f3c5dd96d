"""The shared HTTP machinery: retries, rate limiting, token refresh and error hygiene (respx, virtual clock)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr

from providers.base import ConnectionSettings, OAuthEndpoints, Token
from providers.errors import AuthorizationExpired, PlatformError, RateLimited
from providers.http import (
    ApiClient,
    HttpProfile,
    LimitReading,
    NextUrlPaginator,
    PageNumberPaginator,
    parse_retry_after,
)
from providers.tokens import MemoryTokenStore

API = "https://api.example.test"
TOKEN_URL = "https://id.example.test/token"
ACCESS = "access-secret-0123456789"
REFRESH = "refresh-secret-0123456789"


class Clock:
    """A virtual clock: sleeping advances it, nothing really waits."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds




def token(clock: Clock, *, lifetime: int = 1800, access: str = ACCESS, refresh: str = REFRESH) -> Token:
    issued = datetime.fromtimestamp(clock(), UTC)
    return Token(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh),
        expires_at=issued + timedelta(seconds=lifetime),
        issued_at=issued,
    )


SETTINGS = ConnectionSettings(name="acme", provider="test", tenant="t1", client_id="cid", client_secret=SecretStr("shh-client-secret"))
OAUTH = OAuthEndpoints(authorize_url="https://id.example.test/auth", token_url=TOKEN_URL, scopes=("read",), pkce=False)


def client(clock: Clock, tokens: MemoryTokenStore, *, windows=(), attempts: int = 4) -> ApiClient:
    profile = HttpProfile(base_url=API, windows=windows, max_attempts=attempts)
    return ApiClient(settings=SETTINGS, profile=profile, oauth=OAUTH, tokens=tokens, clock=clock, sleep=clock.sleep)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@respx.mock
def test_429_waits_for_retry_after_then_succeeds(clock: Clock) -> None:
    route = respx.get(f"{API}/items").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "17"}), httpx.Response(200, json={"ok": True})]
    )
    api = client(clock, MemoryTokenStore({"acme": token(clock)}))
    assert api.get_json("/items") == {"ok": True}
    assert route.call_count == 2
    assert clock.slept == [17.0]
    assert api.calls == 2


@respx.mock
def test_500_is_retried_with_backoff_for_reads(clock: Clock) -> None:
    route = respx.get(f"{API}/items").mock(side_effect=[httpx.Response(500), httpx.Response(503), httpx.Response(200, json=[])])
    api = client(clock, MemoryTokenStore({"acme": token(clock)}))
    assert api.get_json("/items") == []
    assert route.call_count == 3
    assert len(clock.slept) == 2 and all(0 <= s <= 30 for s in clock.slept)


@respx.mock
def test_400_is_never_retried(clock: Clock) -> None:
    route = respx.get(f"{API}/items").mock(return_value=httpx.Response(400, text="bad filter"))
    api = client(clock, MemoryTokenStore({"acme": token(clock)}))
    with pytest.raises(PlatformError, match="bad filter") as caught:
        api.get_json("/items")
    assert caught.value.status == 400
    assert route.call_count == 1


@respx.mock
def test_attempts_are_bounded(clock: Clock) -> None:
    route = respx.get(f"{API}/items").mock(return_value=httpx.Response(502))
    api = client(clock, MemoryTokenStore({"acme": token(clock)}), attempts=4)
    with pytest.raises(PlatformError):
        api.get_json("/items")
    assert route.call_count == 4


@respx.mock
def test_a_write_without_idempotency_key_is_not_retried_after_an_outage(clock: Clock) -> None:
    route = respx.post(f"{API}/send").mock(side_effect=httpx.ReadTimeout("slow"))
    api = client(clock, MemoryTokenStore({"acme": token(clock)}))
    with pytest.raises(PlatformError, match="timed out"):
        api.request("POST", "/send", json={})
    assert route.call_count == 1


@respx.mock
def test_a_write_with_idempotency_key_is_retried_and_keeps_its_key(clock: Clock) -> None:
    route = respx.post(f"{API}/send").mock(side_effect=[httpx.ReadTimeout("slow"), httpx.Response(204)])
    api = client(clock, MemoryTokenStore({"acme": token(clock)}))
    assert api.request("POST", "/send", json={}, idempotency_key="key-12345678").status_code == 204
    assert [c.request.headers["Idempotency-Key"] for c in route.calls] == ["key-12345678"] * 2


@respx.mock
def test_a_daily_limit_is_not_waited_for(clock: Clock) -> None:
    class Daily(HttpProfile):
        def is_daily_limit(self, response: httpx.Response) -> bool:
            return response.headers.get("X-Rate-Limit-Problem") == "day"

    route = respx.get(f"{API}/items").mock(return_value=httpx.Response(429, headers={"Retry-After": "40000", "X-Rate-Limit-Problem": "day"}))
    api = ApiClient(settings=SETTINGS, profile=Daily(base_url=API), oauth=OAUTH, tokens=MemoryTokenStore({"acme": token(clock)}), clock=clock, sleep=clock.sleep)
    with pytest.raises(RateLimited, match="daily call limit") as caught:
        api.get_json("/items")
    assert caught.value.for_the_day
    assert route.call_count == 1 and clock.slept == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [("12", 12.0), ("1800000030", 30.0), ("Thu, 15 Jan 2027 08:00:10 GMT", None), (None, None), ("soon", None)],
)
def test_retry_after_forms(header: str | None, expected: float | None) -> None:
    now = 1_800_000_000.0
    value = parse_retry_after(header, now)
    if header and header.startswith("Thu"):
        assert value is not None and value > 0
    else:
        assert value == expected


@respx.mock
def test_expired_token_is_refreshed_persisted_before_use(clock: Clock) -> None:
    tokens = MemoryTokenStore({"acme": token(clock, lifetime=60)})  # within the 2-minute proactive window
    order: list[str] = []
    original_save = tokens.save

    def save(connection: str, new: Token) -> None:
        order.append("saved")
        original_save(connection, new)

    tokens.save = save  # type: ignore[method-assign]
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(200, json={"access_token": "new-access-9876543210", "refresh_token": "new-refresh-9876543210", "expires_in": "600", "token_type": "bearer"})
    )

    def api_call(request: httpx.Request) -> httpx.Response:
        order.append(request.headers["Authorization"])
        return httpx.Response(200, json={})

    respx.get(f"{API}/items").mock(side_effect=api_call)
    api = client(clock, tokens)
    api.get_json("/items")
    assert order == ["saved", "Bearer new-access-9876543210"]
    assert tokens.tokens["acme"].refresh_token.get_secret_value() == "new-refresh-9876543210"
    assert tokens.tokens["acme"].expires_at == datetime.fromtimestamp(clock(), UTC) + timedelta(seconds=600)


@respx.mock
def test_401_token_expired_refreshes_once_and_repeats(clock: Clock) -> None:
    tokens = MemoryTokenStore({"acme": token(clock)})
    refresh = respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(200, json={"access_token": "second-access-12345", "refresh_token": "second-refresh-12345", "expires_in": 1800})
    )
    route = respx.get(f"{API}/items").mock(side_effect=[httpx.Response(401, json={"Detail": "TokenExpired"}),
                                                        httpx.Response(200, json=[1]), httpx.Response(200, json=[2])])
    api = client(clock, tokens)
    assert api.get_json("/items") == [1]
    assert refresh.call_count == 1 and route.call_count == 2
    assert route.calls[1].request.headers["Authorization"] == "Bearer second-access-12345"
    # the calls that follow carry the new token at once (a clock behind the platform's: no 401 on each of them)
    assert api.get_json("/items") == [2]
    assert route.call_count == 3 and route.calls[2].request.headers["Authorization"] == "Bearer second-access-12345"


@respx.mock
def test_revoked_refresh_token_asks_for_reauthorisation_without_leaking_it(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = MemoryTokenStore({"acme": token(clock, lifetime=10)})
    respx.post(TOKEN_URL).mock(return_value=httpx.Response(400, json={"error": "invalid_grant"}))
    api = client(clock, tokens)
    with pytest.raises(AuthorizationExpired) as caught:
        api.get_json("/items")
    message = str(caught.value)
    assert "dunning setup --reconnect acme" in message
    for secret in (ACCESS, REFRESH, "shh-client-secret"):
        assert secret not in message
        assert all(secret not in record.getMessage() for record in caplog.records)


@respx.mock
def test_another_process_refresh_is_reused_not_repeated(clock: Clock) -> None:
    stale = token(clock, lifetime=10)
    tokens = MemoryTokenStore({"acme": stale})
    api = client(clock, tokens)
    api.tokens._token = stale
    tokens.tokens["acme"] = token(clock, access="other-process-access-1", refresh="other-process-refresh-1")
    refresh = respx.post(TOKEN_URL).mock(return_value=httpx.Response(500))
    respx.get(f"{API}/items").mock(return_value=httpx.Response(200, json={}))
    api.get_json("/items")
    assert refresh.call_count == 0


@respx.mock
@pytest.mark.parametrize("description", ["Rate limit exceeded: access_token not expired", "Too early"])
def test_too_early_refresh_keeps_the_current_token(clock: Clock, description: str) -> None:
    # with the usual wording, or any other while the access token is still good
    tokens = MemoryTokenStore({"acme": token(clock, lifetime=60)})
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(400, json={"error": "access_denied", "error_description": description},
                                    headers={"Reason": "TooEarlyToRefreshTokens"})
    )
    route = respx.get(f"{API}/items").mock(return_value=httpx.Response(200, json={}))
    client(clock, tokens).get_json("/items")
    assert route.calls[0].request.headers["Authorization"] == f"Bearer {ACCESS}"
    assert tokens.saved == []


@respx.mock
def test_platform_error_text_is_redacted(clock: Clock) -> None:
    respx.get(f"{API}/items").mock(return_value=httpx.Response(422, text=f'{{"refresh_token": "{REFRESH}", "error": "nope"}}'))
    with pytest.raises(PlatformError) as caught:
        client(clock, MemoryTokenStore({"acme": token(clock)})).get_json("/items")
    assert REFRESH not in str(caught.value)


@respx.mock
def test_page_number_paging_stops_on_a_short_page(clock: Clock) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params["page"])
        return httpx.Response(200, json={"items": list(range(3 if n < 3 else 1))})

    route = respx.get(f"{API}/items").mock(side_effect=page)
    api = client(clock, MemoryTokenStore({"acme": token(clock)}))
    paginator = PageNumberPaginator(page_size=3, records=lambda r: r.json()["items"])
    pages = [r.json()["items"] for r in api.pages("/items", paginator, params={"page": 1})]
    assert pages == [[0, 1, 2], [0, 1, 2], [0]]
    assert route.call_count == 3


@respx.mock
def test_next_url_paging_follows_the_platform_links(clock: Clock) -> None:
    respx.get(f"{API}/items", params={"$skiptoken": "2"}).mock(return_value=httpx.Response(200, json={"d": {"results": [2]}}))
    respx.get(f"{API}/items").mock(return_value=httpx.Response(200, json={"d": {"results": [1], "__next": f"{API}/items?$skiptoken=2"}}))
    api = client(clock, MemoryTokenStore({"acme": token(clock)}))
    paginator = NextUrlPaginator(next_url=lambda r: r.json()["d"].get("__next"))
    assert [r.json()["d"]["results"] for r in api.pages("/items", paginator)] == [[1], [2]]


@respx.mock
def test_connections_sharing_an_authorisation_refresh_one_stored_token(clock: Clock) -> None:
    tokens = MemoryTokenStore({"acme": token(clock, lifetime=10)})  # stored under "acme"
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(200, json={"access_token": "shared-access-12345", "refresh_token": "shared-refresh-12345", "expires_in": 1800})
    )
    respx.get(f"{API}/items").mock(return_value=httpx.Response(200, json={}))
    second = SETTINGS.model_copy(update={"name": "acme-second-division", "token_key": "acme"})
    api = ApiClient(settings=second, profile=HttpProfile(base_url=API), oauth=OAUTH, tokens=tokens, clock=clock, sleep=clock.sleep)
    api.get_json("/items")
    assert set(tokens.tokens) == {"acme"}
    assert tokens.tokens["acme"].refresh_token.get_secret_value() == "shared-refresh-12345"


@respx.mock
def test_the_answer_that_reports_a_spent_day_is_still_used(clock: Clock) -> None:
    class DayHeader(HttpProfile):
        def read_limits(self, response: httpx.Response) -> list[LimitReading]:
            return [LimitReading("day", int(response.headers["X-Day-Remaining"]), daily=True)]

    route = respx.get(f"{API}/items").mock(return_value=httpx.Response(200, json=[7], headers={"X-Day-Remaining": "0"}))
    api = ApiClient(settings=SETTINGS, profile=DayHeader(base_url=API), oauth=OAUTH,
                    tokens=MemoryTokenStore({"acme": token(clock)}), clock=clock, sleep=clock.sleep)
    assert api.get_json("/items") == [7]
    with pytest.raises(RateLimited) as caught:
        api.get_json("/items")
    assert caught.value.for_the_day and route.call_count == 1


@respx.mock
def test_a_too_early_refusal_is_not_asked_again_before_the_token_expires(clock: Clock) -> None:
    tokens = MemoryTokenStore({"acme": token(clock, lifetime=60)})
    refused = respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(400, json={"error": "access_denied", "error_description": "Rate limit exceeded: access_token not expired"})
    )
    respx.get(f"{API}/items").mock(return_value=httpx.Response(200, json={}))
    api = client(clock, tokens)
    for _ in range(5):
        api.get_json("/items")
        clock.now += 5
    assert refused.call_count == 1


@respx.mock
def test_json_amounts_arrive_as_exact_decimals_and_garbage_is_bad_data(clock: Clock) -> None:
    from decimal import Decimal

    from providers.errors import BadPlatformData

    respx.get(f"{API}/amount").mock(return_value=httpx.Response(200, content=b'{"AmountFC": 1210.1, "Count": 3}'))
    respx.get(f"{API}/html").mock(return_value=httpx.Response(200, text="<html>login</html>", headers={"Content-Type": "text/html"}))
    api = client(clock, MemoryTokenStore({"acme": token(clock)}))
    body = api.get_json("/amount")
    assert body == {"AmountFC": Decimal("1210.1"), "Count": 3} and isinstance(body["AmountFC"], Decimal)
    with pytest.raises(BadPlatformData, match=r"acme: .*not JSON \(text/html\)"):
        api.get_json("/html")
