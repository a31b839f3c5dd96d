"""OAuth against the simulated Exact: strict rotation, the 570-second rule, and an adapter that never breaks them."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from providers.base import SyncState, Token
from providers.errors import AuthorizationExpired
from providers.exact import ExactProvider
from providers.exact.simulator import ExactSimulator
from providers.simkit import VirtualClock
from providers.tokens import MemoryTokenStore

from .conftest import REDIRECT, connect, memory_tokens, settings


def token_endpoint(sim: ExactSimulator, refresh: str) -> httpx.Response:
    with httpx.Client(transport=sim.transport()) as http:
        return http.post("https://start.exactonline.nl/api/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": refresh, "client_id": "app", "client_secret": "s3cret"})


def granted(sim: ExactSimulator) -> MemoryTokenStore:
    sim.oauth.register_client("app", "s3cret", [REDIRECT])
    return memory_tokens(Token.from_response(sim.oauth.grant_tokens("app"), now=sim.clock.now()))


def test_a_reused_refresh_token_fails_in_the_simulator(sim: ExactSimulator, clock: VirtualClock) -> None:
    refresh = granted(sim).tokens["bakkerij"].refresh_token.get_secret_value()
    clock.advance(600)
    assert token_endpoint(sim, refresh).status_code == 200
    clock.advance(600)
    again = token_endpoint(sim, refresh)
    assert again.status_code == 401
    assert again.json() == {"error": "unauthorized_client", "error_description": "Old refresh token used."}


def test_a_refresh_within_570_seconds_is_refused_with_reason(sim: ExactSimulator, clock: VirtualClock) -> None:
    tokens = granted(sim)
    clock.advance(500)
    early = token_endpoint(sim, tokens.tokens["bakkerij"].refresh_token.get_secret_value())
    assert early.status_code == 400 and early.json()["error"] == "access_denied"
    assert early.headers["Reason"].startswith("TooEarlyToRefreshTokens")
    assert early.json()["error_description"] == "Rate limit exceeded: access_token not expired"


def test_expires_in_is_a_string_and_read_as_seconds(sim: ExactSimulator) -> None:
    tokens = granted(sim)
    answer = sim.oauth.grant_tokens("app")
    assert answer["expires_in"] == "600"
    assert tokens.tokens["bakkerij"].expires_at - tokens.tokens["bakkerij"].issued_at == timedelta(seconds=600)


def test_the_adapter_refreshes_only_in_the_last_30_seconds(sim: ExactSimulator, clock: VirtualClock) -> None:
    tokens = granted(sim)
    provider = connect(sim, tokens)
    for _ in range(19):  # 19 × 30 s = 570 s: every call still on the first token
        provider.list_tenants()
        clock.advance(30)
    assert sim.oauth.token_requests == 0
    provider.list_tenants()
    assert sim.oauth.refreshes == 1 and sim.oauth.token_requests == 1  # no refused "too early" attempt


def test_two_refreshes_in_a_row_spend_different_tokens_and_persist_first(sim: ExactSimulator,
                                                                         clock: VirtualClock) -> None:
    tokens = granted(sim)
    provider = connect(sim, tokens)
    spent = [tokens.tokens["bakkerij"].refresh_token.get_secret_value()]
    for _ in range(2):
        clock.advance(590)
        provider.list_tenants()
        spent.append(tokens.tokens["bakkerij"].refresh_token.get_secret_value())
    assert len(set(spent)) == 3 and len(tokens.saved) == 2
    assert sim.oauth.refreshes == 2 and sim.oauth.token_requests == 2


def test_a_second_process_uses_the_refreshed_token_instead_of_spending_the_old_one(
        sim: ExactSimulator, clock: VirtualClock) -> None:
    tokens = granted(sim)
    first, second = connect(sim, tokens), connect(sim, tokens)
    first.list_tenants()
    second.list_tenants()  # both hold the same token in memory now
    clock.advance(590)
    first.list_tenants()
    second.list_tenants()
    assert sim.oauth.refreshes == 1 and sim.oauth.token_requests == 1


def test_a_401_for_an_expired_token_refreshes_once_and_repeats_the_call(sim: ExactSimulator,
                                                                        clock: VirtualClock) -> None:
    tokens = granted(sim)
    # our clock ran 60 s behind when the token arrived: we believe it lives a minute longer than it does
    current = tokens.tokens["bakkerij"]
    tokens.tokens["bakkerij"] = current.model_copy(update={"expires_at": current.expires_at + timedelta(seconds=60)})
    provider = connect(sim, tokens)
    clock.advance(600)
    pages = list(provider.sync(SyncState()))
    assert pages[-1].cursor is not None
    assert sim.oauth.refreshes == 1


def test_a_revoked_consent_asks_for_reauthorisation(sim: ExactSimulator, clock: VirtualClock) -> None:
    tokens = granted(sim)
    provider = connect(sim, tokens)
    sim.oauth.revoke()
    clock.advance(600)
    with pytest.raises(AuthorizationExpired, match="dunning setup --reconnect bakkerij"):
        provider.list_tenants()


def test_oauth_follows_api_url_unless_overridden() -> None:
    endpoints = ExactProvider.oauth(settings(api_url="https://start.exactonline.be"))
    assert endpoints.authorize_url == "https://start.exactonline.be/api/oauth2/auth"
    assert endpoints.token_url == "https://start.exactonline.be/api/oauth2/token"
    assert endpoints.token_auth == "client_secret_post" and not endpoints.pkce
    assert endpoints.refresh_before_expiry == timedelta(seconds=30)
    default = ExactProvider.oauth(settings(api_url=None))
    assert default.token_url == "https://start.exactonline.nl/api/oauth2/token"
    override = ExactProvider.oauth(settings().model_copy(update={"token_url": "https://proxy/token"}))
    assert override.token_url == "https://proxy/token"


def test_the_consent_page_answers_on_every_country_host_with_a_bang_in_the_code(sim: ExactSimulator) -> None:
    sim.oauth.register_client("app", "s3cret", [REDIRECT])
    with httpx.Client(transport=sim.transport(), base_url="https://start.exactonline.co.uk") as http:
        page = http.get("/api/oauth2/auth", params={"client_id": "app", "redirect_uri": REDIRECT,
                                                     "response_type": "code", "state": "xyz"})
        assert page.status_code == 200 and "Exact Online" in page.text
        txn = page.text.split('name="txn" value="')[1].split('"')[0]
        answer = http.post("/api/oauth2/auth", data={"txn": txn, "decision": "allow"})
    location = answer.headers["Location"]
    assert "%21" in location  # the code's "!" arrives URL-encoded
    code = parse_qs(urlsplit(location).query)["code"][0]
    assert "!" in code and "start.exactonline.co.uk" in sim.hosts


def test_a_401_before_570_seconds_is_not_cured_by_hammering_the_token_endpoint(sim: ExactSimulator,
                                                                                clock: VirtualClock) -> None:
    tokens = granted(sim)
    provider = connect(sim, tokens)
    clock.advance(100)
    sim.faults.expired_token("*/current/Me")
    with pytest.raises(AuthorizationExpired):
        provider.list_tenants()
    assert sim.oauth.token_requests == 0  # Exact would refuse any token request this early
    assert tokens.saved == []
    assert provider.list_tenants()  # the current token still works


class _StoreThatCannotSave(MemoryTokenStore):
    def save(self, connection: str, token: Token) -> None:
        raise OSError("disk full")


def test_a_rotated_token_that_could_not_be_stored_is_never_used(sim: ExactSimulator, clock: VirtualClock) -> None:
    sim.oauth.register_client("app", "s3cret", [REDIRECT])
    tokens = _StoreThatCannotSave({"bakkerij": Token.from_response(sim.oauth.grant_tokens("app"), now=clock.now())})
    provider = connect(sim, tokens)
    clock.advance(590)
    with pytest.raises(OSError):
        provider.list_tenants()
    assert sim.oauth.refreshes == 1  # the old refresh token is spent ...
    assert not [c for c in sim.calls if c.path.startswith("/api/v1/")]  # ... but the unsaved new one was not used


def test_a_refresh_token_spent_elsewhere_asks_for_reauthorisation(sim: ExactSimulator, clock: VirtualClock) -> None:
    tokens = granted(sim)
    stale_copy = MemoryTokenStore(dict(tokens.tokens))  # e.g. a restored backup of the token file
    connect(sim, tokens).list_tenants()
    clock.advance(590)
    connect(sim, tokens).list_tenants()  # rotates: the copy's refresh token is dead now
    clock.advance(600)
    with pytest.raises(AuthorizationExpired, match="Old refresh token used") as refused:
        connect(sim, stale_copy).list_tenants()
    assert "dunning setup --reconnect bakkerij" in str(refused.value)
    assert sim.oauth.refreshes == 1
