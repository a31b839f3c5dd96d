"""The shared simulator machinery: OAuth rules per platform, fault injection, rate windows, loopback serving."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from providers.base import Token
from providers.simkit import (
    EXACT_OAUTH,
    MONEYBIRD_OAUTH,
    XERO_OAUTH,
    OAuthPolicy,
    OAuthServer,
    RateWindows,
    SimulatorBase,
    VirtualClock,
    Window,
    serve,
)

REDIRECT = "http://localhost:8765/callback"
HTTPS_REDIRECT = "https://localhost:8765/callback"


class TinySimulator(SimulatorBase):
    """A platform with OAuth and one API list, enough to exercise the base."""

    url_map = Map([
        Rule("/oauth/authorize", endpoint="oauth_authorize", methods=["GET", "POST"]),
        Rule("/oauth/token", endpoint="oauth_token", methods=["POST"]),
        Rule("/oauth/revoke", endpoint="oauth_revoke", methods=["POST"]),
        Rule("/api/things", endpoint="things", methods=["GET", "POST"]),
    ])

    def __init__(self, policy: OAuthPolicy, clock: VirtualClock | None = None, secret: str | None = "s3cret",
                 redirect: str = REDIRECT, tenants: list[tuple[str, str]] | None = None) -> None:
        super().__init__(clock)
        self.oauth = OAuthServer(policy, self.clock, consent_tenants=(lambda: tenants) if tenants else None)
        self.oauth.register_client("app", secret, [redirect])
        self.created = 0

    def things(self, request: Request) -> Response:
        check = self.oauth.check_bearer(request.headers.get("Authorization"))
        if not check.valid:
            return Response(json.dumps({"error": check.state}), 401, mimetype="application/json")
        if request.method == "POST":
            self.created += 1
        return Response(json.dumps({"Things": [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]}),
                        mimetype="application/json")


def client_for(sim: SimulatorBase) -> httpx.Client:
    return httpx.Client(transport=sim.transport(), base_url="https://sim.test", follow_redirects=False)


def consent(http: httpx.Client, *, decision: str = "allow", redirect: str = REDIRECT, state: str = "xyz",
            **extra: str) -> dict[str, list[str]]:
    """Open the consent page, press a button, return the query the browser would be redirected with."""
    params = {"client_id": "app", "redirect_uri": redirect, "response_type": "code", "state": state,
              "scope": "offline_access accounting.invoices"} | extra
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    assert 'id="allow"' in page.text and 'id="deny"' in page.text
    txn = page.text.split('name="txn" value="')[1].split('"')[0]
    answer = http.post("/oauth/authorize", params=params, data={"txn": txn, "decision": decision})
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    return parse_qs(location.query)


def exchange(http: httpx.Client, code: str, *, redirect: str = REDIRECT, basic: bool = True,
             **extra: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect} | extra
    if basic:
        return http.post("/oauth/token", data=data, auth=("app", "s3cret"))
    return http.post("/oauth/token", data=data | {"client_id": "app", "client_secret": "s3cret"})


def refresh(http: httpx.Client, refresh_token: str, *, basic: bool = True) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if basic:
        return http.post("/oauth/token", data=data, auth=("app", "s3cret"))
    return http.post("/oauth/token", data=data | {"client_id": "app", "client_secret": "s3cret"})


# --- authorization --------------------------------------------------------------------------------------------


def test_consent_allow_redirects_with_code_and_state_and_code_works_once() -> None:
    sim = TinySimulator(XERO_OAUTH)
    with client_for(sim) as http:
        query = consent(http)
        assert query["state"] == ["xyz"]
        first = exchange(http, query["code"][0])
        assert first.status_code == 200
        body = first.json()
        assert body["expires_in"] == 1800 and body["token_type"] == "Bearer" and body["refresh_token"]
        assert body["access_token"].count(".") == 2  # a JWT, like Xero's
        reused = exchange(http, query["code"][0])
        assert (reused.status_code, reused.json()) == (400, {"error": "invalid_grant"})
        assert sim.oauth.stats["code_exchanges"] == 1 and sim.oauth.token_requests == 2


def test_consent_deny_redirects_with_access_denied_and_state() -> None:
    sim = TinySimulator(XERO_OAUTH)
    with client_for(sim) as http:
        query = consent(http, decision="deny", state="s-1")
    assert query == {"error": ["access_denied"], "state": ["s-1"]}


def test_unregistered_redirect_uri_is_shown_not_followed() -> None:
    sim = TinySimulator(XERO_OAUTH)
    with client_for(sim) as http:
        page = http.get("/oauth/authorize", params={"client_id": "app", "redirect_uri": "http://evil.test/cb",
                                                    "response_type": "code", "scope": "x"})
    assert page.status_code == 400 and "Location" not in page.headers


def test_code_expires_after_its_lifetime_and_redirect_uri_must_match() -> None:
    sim = TinySimulator(EXACT_OAUTH, redirect=HTTPS_REDIRECT)
    with client_for(sim) as http:
        code = consent(http, redirect=HTTPS_REDIRECT)["code"][0]
        assert "!" in code  # Exact's codes contain "!" and arrive as %21
        wrong_uri = exchange(http, code, redirect="https://localhost:9999/cb", basic=False)
        assert (wrong_uri.status_code, wrong_uri.json()["error"]) == (400, "invalid_grant")
        code = consent(http, redirect=HTTPS_REDIRECT)["code"][0]
        sim.clock.advance(181)
        late = exchange(http, code, redirect=HTTPS_REDIRECT, basic=False)
        assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")
        code = consent(http, redirect=HTTPS_REDIRECT)["code"][0]
        sim.clock.advance(179)
        assert exchange(http, code, redirect=HTTPS_REDIRECT, basic=False).status_code == 200


def test_exact_refuses_http_redirect_uris_at_registration() -> None:
    with pytest.raises(ValueError, match="https"):
        TinySimulator(EXACT_OAUTH)


def test_pkce_s256_verifier_is_checked() -> None:
    sim = TinySimulator(XERO_OAUTH)
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    with client_for(sim) as http:
        code = consent(http, code_challenge=challenge, code_challenge_method="S256")["code"][0]
        assert exchange(http, code, code_verifier="w" * 50).json() == {"error": "invalid_grant"}
        code = consent(http, code_challenge=challenge, code_challenge_method="S256")["code"][0]
        assert exchange(http, code).json() == {"error": "invalid_grant"}  # verifier missing
        code = consent(http, code_challenge=challenge, code_challenge_method="S256")["code"][0]
        assert exchange(http, code, code_verifier=verifier).status_code == 200


def test_public_client_without_pkce_is_refused() -> None:
    sim = TinySimulator(XERO_OAUTH, secret=None)
    with client_for(sim) as http:
        answer = http.get("/oauth/authorize", params={"client_id": "app", "redirect_uri": REDIRECT,
                                                      "response_type": "code", "scope": "x", "state": "s"})
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["error"] == ["invalid_request"]


def test_consent_page_tenant_choice_is_kept_on_the_grant() -> None:
    sim = TinySimulator(XERO_OAUTH, tenants=[("t1", "Acme BV"), ("t2", "Beta BV")])
    with client_for(sim) as http:
        params = {"client_id": "app", "redirect_uri": REDIRECT, "response_type": "code", "scope": "x"}
        page = http.get("/oauth/authorize", params=params)
        assert "Acme BV" in page.text
        txn = page.text.split('name="txn" value="')[1].split('"')[0]
        http.post("/oauth/authorize", data={"txn": txn, "decision": "allow", "tenant": ["t2"]})
    (grant,) = sim.oauth.grants.values()
    assert grant.tenant_ids == ("t2",)


def test_wrong_client_secret_and_disallowed_auth_method_are_invalid_client() -> None:
    sim = TinySimulator(EXACT_OAUTH, redirect=HTTPS_REDIRECT)
    with client_for(sim) as http:
        code = consent(http, redirect=HTTPS_REDIRECT)["code"][0]
        basic = exchange(http, code, redirect=HTTPS_REDIRECT)  # Exact: secret in the body only
        assert basic.json()["error"] == "invalid_client"
        wrong = http.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                "redirect_uri": HTTPS_REDIRECT, "client_id": "app",
                                                "client_secret": "nope"})
        assert wrong.json()["error"] == "invalid_client"


# --- tokens and rotation --------------------------------------------------------------------------------------


def test_token_shapes_per_platform() -> None:
    exact = TinySimulator(EXACT_OAUTH, redirect=HTTPS_REDIRECT).oauth.grant_tokens("app")
    assert exact["expires_in"] == "600" and set(exact) == {"access_token", "token_type", "expires_in",
                                                            "refresh_token"}
    moneybird = TinySimulator(MONEYBIRD_OAUTH).oauth.grant_tokens("app")
    assert "expires_in" not in moneybird and moneybird["scope"] == "sales_invoices"
    assert isinstance(moneybird["created_at"], int) and moneybird["token_type"] == "bearer"
    xero_without_offline = TinySimulator(XERO_OAUTH).oauth.grant_tokens("app", scope="accounting.invoices")
    assert "refresh_token" not in xero_without_offline
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert Token.from_response(exact, now=now).expires_at == datetime(2026, 11, 23, 8, 10, tzinfo=UTC)


def test_bearer_check_valid_then_expired_then_unknown() -> None:
    sim = TinySimulator(XERO_OAUTH)
    token = sim.oauth.grant_tokens("app", scope="offline_access")["access_token"]
    assert sim.oauth.check_bearer(f"bearer {token}").state == "valid"
    sim.clock.advance(1800)
    assert sim.oauth.check_bearer(f"Bearer {token}").state == "expired"
    assert sim.oauth.check_bearer("Bearer nonsense").state == "unknown"
    assert sim.oauth.check_bearer(None).state == "unknown"


def test_xero_previous_refresh_token_may_be_retried_within_30_minutes() -> None:
    sim = TinySimulator(XERO_OAUTH)
    first = sim.oauth.grant_tokens("app", scope="offline_access")
    with client_for(sim) as http:
        second = refresh(http, first["refresh_token"])
        assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
        sim.clock.advance(29 * 60)
        retry = refresh(http, first["refresh_token"], basic=False)  # the SDK's way: secret in the body
        assert retry.status_code == 200
        sim.clock.advance(2 * 60)
        too_late = refresh(http, first["refresh_token"])
        assert (too_late.status_code, too_late.json()) == (400, {"error": "invalid_grant"})
        assert refresh(http, retry.json()["refresh_token"]).status_code == 200
    assert sim.oauth.refreshes == 3


def test_xero_refresh_token_unused_for_60_days_is_invalid_grant() -> None:
    sim = TinySimulator(XERO_OAUTH)
    first = sim.oauth.grant_tokens("app", scope="offline_access")
    sim.clock.advance(60 * 86400 + 1)
    with client_for(sim) as http:
        answer = refresh(http, first["refresh_token"])
    assert answer.json() == {"error": "invalid_grant"}


def test_exact_refresh_within_570_seconds_is_too_early_and_tokens_stay_valid() -> None:
    sim = TinySimulator(EXACT_OAUTH, redirect=HTTPS_REDIRECT)
    first = sim.oauth.grant_tokens("app")
    with client_for(sim) as http:
        sim.clock.advance(569)
        early = refresh(http, first["refresh_token"], basic=False)
        assert early.status_code == 400
        assert early.json() == {"error": "access_denied",
                                "error_description": "Rate limit exceeded: access_token not expired"}
        assert early.headers["Reason"].startswith("TooEarlyToRefreshTokens:")
        assert sim.oauth.check_bearer(f"Bearer {first['access_token']}").valid
        sim.clock.advance(1)
        second = refresh(http, first["refresh_token"], basic=False)
        assert second.status_code == 200 and second.json()["expires_in"] == "600"
        sim.clock.advance(600)
        reused = refresh(http, first["refresh_token"], basic=False)
        assert reused.status_code == 401
        assert reused.json() == {"error": "unauthorized_client", "error_description": "Old refresh token used."}
        assert refresh(http, second.json()["refresh_token"], basic=False).status_code == 200
    assert sim.oauth.refreshes == 2


def test_exact_refresh_token_idle_for_30_days_names_its_expiry() -> None:
    sim = TinySimulator(EXACT_OAUTH, redirect=HTTPS_REDIRECT)
    first = sim.oauth.grant_tokens("app")
    sim.clock.advance(31 * 86400)
    with client_for(sim) as http:
        answer = refresh(http, first["refresh_token"], basic=False)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    assert answer.json()["error_description"].startswith("The refresh token expired at 2026-12-23")


def test_moneybird_refresh_issues_a_new_pair_and_retires_the_old() -> None:
    sim = TinySimulator(MONEYBIRD_OAUTH)
    first = sim.oauth.grant_tokens("app")
    with client_for(sim) as http:
        second = refresh(http, first["refresh_token"], basic=False)
        assert second.status_code == 200 and "expires_in" not in second.json()
        assert sim.oauth.check_bearer(f"Bearer {first['access_token']}").state == "revoked"
        assert sim.oauth.check_bearer(f"Bearer {second.json()['access_token']}").valid
        again = refresh(http, first["refresh_token"], basic=False)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_revoked_consent_stops_tokens_and_refresh() -> None:
    sim = TinySimulator(XERO_OAUTH)
    first = sim.oauth.grant_tokens("app", scope="offline_access")
    with client_for(sim) as http:
        assert http.post("/oauth/revoke", data={"token": first["refresh_token"]}, auth=("app", "s3cret")).is_success
        assert refresh(http, first["refresh_token"]).json() == {"error": "invalid_grant"}
        assert http.get("/api/things", headers={"Authorization": f"Bearer {first['access_token']}"}).status_code == 401


def test_expire_access_tokens_forces_a_401_on_api_calls() -> None:
    sim = TinySimulator(MONEYBIRD_OAUTH)
    token = sim.oauth.grant_tokens("app")["access_token"]
    sim.oauth.expire_access_tokens()
    assert sim.oauth.check_bearer(f"Bearer {token}").state == "expired"


# --- faults ---------------------------------------------------------------------------------------------------


def authorised(sim: TinySimulator) -> httpx.Client:
    token = sim.oauth.grant_tokens("app", scope="offline_access")["access_token"]
    http = client_for(sim)
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def test_fault_plan_serves_n_errors_then_recovers_per_path() -> None:
    sim = TinySimulator(XERO_OAUTH)
    sim.faults.server_error("/api/*", times=2, status=503)
    with authorised(sim) as http:
        assert http.get("/oauth/nowhere").status_code == 404  # other paths are untouched
        assert [http.get("/api/things").status_code for _ in range(3)] == [503, 503, 200]
    assert sim.faults.pending() == [] and sim.call_count("/api/things") == 3


def test_fault_plan_timeout_raises_httpx_read_timeout_in_process() -> None:
    sim = TinySimulator(XERO_OAUTH)
    sim.faults.timeout("/api/things", method="POST")
    with authorised(sim) as http:
        assert http.get("/api/things").status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            http.post("/api/things")
    assert sim.created == 0


def test_timeout_after_processing_loses_the_answer_but_not_the_effect() -> None:
    sim = TinySimulator(XERO_OAUTH)
    sim.faults.timeout("/api/things", method="POST", after_processing=True)
    with authorised(sim) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/api/things")
    assert sim.created == 1


def test_fault_plan_expired_token_rate_limit_and_malformed() -> None:
    sim = TinySimulator(XERO_OAUTH)
    sim.faults.expired_token("/api/things")
    sim.faults.rate_limited("/api/things", retry_after=7)
    sim.faults.malformed("/api/things")
    with authorised(sim) as http:
        assert http.get("/api/things").status_code == 401
        limited = http.get("/api/things")
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
        spoiled = http.get("/api/things").json()["Things"]
        assert spoiled[0] == {"id": "1", "name": None} and spoiled[1] == {"id": "2", "name": "b"}
        assert http.get("/api/things").json()["Things"][0]["name"] == "a"


# --- rate windows ---------------------------------------------------------------------------------------------


def test_rate_windows_count_per_key_and_reset_on_the_minute() -> None:
    clock = VirtualClock(datetime(2026, 11, 23, 8, 0, 30, tzinfo=UTC))
    windows = RateWindows(clock, [Window("minute", 3, 60), Window("day", 5, 86400)])
    decisions = [windows.hit("tenant-a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[2].window("minute").remaining == 0 and decisions[2].window("day").remaining == 2
    assert decisions[3].exceeded is not None and decisions[3].exceeded.name == "minute"
    assert decisions[3].retry_after == 30
    assert decisions[3].window("minute").reset_at == datetime(2026, 11, 23, 8, 1, tzinfo=UTC).timestamp()
    assert windows.hit("tenant-b").allowed  # another tenant has its own counters
    clock.advance(30)
    assert [windows.hit("tenant-a").allowed for _ in range(3)] == [True, True, False]
    day = windows.peek("tenant-a")
    assert day.exceeded is not None and day.exceeded.name == "day"
    assert day.window("day").reset_at == datetime(2026, 11, 24, tzinfo=UTC).timestamp()


# --- serving --------------------------------------------------------------------------------------------------


def test_serve_runs_the_simulator_on_loopback_and_stops() -> None:
    sim = TinySimulator(replace(XERO_OAUTH))
    with serve(sim) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        page = httpx.get(f"{base_url}/oauth/authorize", params={"client_id": "app", "redirect_uri": REDIRECT,
                                                                "response_type": "code", "scope": "x"})
        assert page.status_code == 200 and "Allow access" in page.text
        sim.faults.timeout("/api/things", served_delay=0.3)
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{base_url}/api/things", timeout=0.1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/oauth/authorize", timeout=1)


def test_virtual_clock_advances_without_sleeping() -> None:
    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.sleep(90)
    assert clock.now() == datetime(2026, 1, 1, 0, 1, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        clock.advance(-1)
