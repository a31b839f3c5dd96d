"""The OAuth setup wizard against a simulated platform: the real loopback listener, a scripted "browser".

The platform here is a small simkit simulator with a provider written for it, so the wizard's own behaviour is
tested independently of any one adapter; the browser test (`test_setup_browser.py`) drives a real platform
simulator with Chromium.
"""

from __future__ import annotations

import io
import os
import re
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
import tomlkit
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from connector.setup import loopback
from connector.setup import wizard as wizard_code
from connector.setup import SetupFailed, SetupOptions, run_setup, token_key_of
from providers.base import ConnectionSettings, OAuthEndpoints, Provider, Tenant, Token
from providers.http import HttpProfile
from providers.simkit import (
    EXACT_OAUTH,
    MONEYBIRD_OAUTH,
    XERO_OAUTH,
    OAuthPolicy,
    OAuthServer,
    SimulatorBase,
)
from providers.tokens import MemoryTokenStore

API = "https://platform.test"
SECRET = "the-client-secret"
ENV = {"DEMO_SECRET": SECRET}


class DemoPlatform(SimulatorBase):
    """OAuth plus a list of administrations: what the wizard talks to."""

    url_map = Map([
        Rule("/oauth/authorize", endpoint="oauth_authorize", methods=["GET", "POST"]),
        Rule("/oauth/token", endpoint="oauth_token", methods=["POST"]),
        Rule("/api/administrations", endpoint="administrations", methods=["GET"]),
    ])

    def __init__(self, policy: OAuthPolicy = MONEYBIRD_OAUTH,
                 books: tuple[tuple[str, str], ...] = (("100", "Acme B.V."),), pick_on_consent: bool = False) -> None:
        super().__init__()
        self.books = dict(books)
        self.oauth = OAuthServer(policy, self.clock, title="Demo platform",
                                 consent_tenants=(lambda: list(self.books.items())) if pick_on_consent else None)

    def administrations(self, request: Request) -> Response:
        check = self.oauth.check_bearer(request.headers.get("Authorization"))
        if not check.valid or check.grant is None:
            return Response('{"error":"token is invalid"}', 401, mimetype="application/json")
        ids = check.grant.tenant_ids if check.grant.tenant_ids is not None else tuple(self.books)
        import json

        return Response(json.dumps([{"id": i, "name": self.books[i]} for i in ids]), mimetype="application/json")


class DemoProvider(Provider):
    """Just enough of an adapter for setup: endpoints from the settings and `list_tenants`."""

    name = "demo"
    capabilities = None  # type: ignore[assignment]
    pkce = False
    token_auth: Any = "client_secret_post"

    @classmethod
    def oauth(cls, settings: ConnectionSettings) -> OAuthEndpoints:
        base = settings.api_url or API
        return OAuthEndpoints(authorize_url=settings.authorize_url or f"{base}/oauth/authorize",
                              token_url=settings.token_url or f"{base}/oauth/token",
                              scopes=settings.scopes or ("sales_invoices",), pkce=cls.pkce, token_auth=cls.token_auth)

    @classmethod
    def http_profile(cls, settings: ConnectionSettings) -> HttpProfile:
        return HttpProfile(base_url=settings.api_url or API)

    def list_tenants(self) -> list[Tenant]:
        return [Tenant(id=row["id"], name=row["name"]) for row in self.api.get_json("/api/administrations")]

    def sync(self, state: Any) -> Any:
        raise NotImplementedError

    def fetch_pdf(self, invoice: Any) -> bytes:
        raise NotImplementedError

    def send_reminder(self, request: Any) -> Any:
        raise NotImplementedError

    def add_note(self, invoice: Any, text: str, *, idempotency_key: str) -> Any:
        raise NotImplementedError


class PkceProvider(DemoProvider):
    pkce = True

    @classmethod
    def oauth(cls, settings: ConnectionSettings) -> OAuthEndpoints:  # Xero's refresh tokens need offline_access
        return super().oauth(settings.model_copy(update={"scopes": ("offline_access", "sales_invoices")}))




def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ScriptedBrowser:
    """Plays the user's browser: opens the consent page in-process, presses a button, follows the redirect to the
    wizard's real loopback listener. `tamper` may rewrite the redirect (a forged callback)."""

    def __init__(self, platform: DemoPlatform, *, decision: str = "allow", tenants: list[str] | None = None,
                 tamper: Callable[[str], str] | None = None, follow: bool = True) -> None:
        self.platform = platform
        self.decision = decision
        self.tenants = tenants
        self.tamper = tamper
        self.follow = follow
        self.opened: list[str] = []
        self.landed: Landing | None = None
        self.redirected_to: str | None = None

    def consent(self, url: str) -> str:
        with httpx.Client(transport=self.platform.transport()) as http:
            page = http.get(url)
            assert page.status_code == 200, page.text
            txn = page.text.split('name="txn" value="')[1].split('"')[0]
            form: dict[str, Any] = {"txn": txn, "decision": self.decision}
            if self.tenants is not None:
                form["tenant"] = self.tenants
            answer = http.post(url, data=form)
        location = answer.headers["Location"]
        return self.tamper(location) if self.tamper else location

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        self.redirected_to = self.consent(url)
        if self.follow:
            self.landed = land(self.redirected_to)
        return True


@dataclass(frozen=True)
class Landing:
    status_code: int
    text: str


def land(url: str) -> Landing:
    """Load the callback page like a browser (urllib: no client-side request log that would show the code)."""
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # the wizard's self-signed certificate
    try:
        with urllib.request.urlopen(url, timeout=5, context=tls) as answer:
            return Landing(answer.status, answer.read().decode())
    except urllib.error.HTTPError as refused:
        return Landing(refused.code, refused.read().decode())


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    from urllib.parse import urlencode

    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
def redirect_uri() -> str:
    return f"http://localhost:{free_port()}/callback"


def options(redirect_uri: str, **changes: Any) -> SetupOptions:
    base = SetupOptions(provider="demo", name="acme", client_id="app-1", client_secret_env="DEMO_SECRET",
                        redirect_uri=redirect_uri, timeout=10)
    return replace(base, **changes)


def wizard(platform: DemoPlatform, config: Path, store: MemoryTokenStore, opts: SetupOptions,
           browser: Callable[[str], bool], provider: type[Provider] = DemoProvider, **hooks: Any) -> Any:
    return run_setup(opts, config_path=config, tokens=store, open_browser=browser,
                     providers={"demo": lambda: provider}, transport=platform.transport(), environ=ENV,
                     **({"say": lambda text: None} | hooks))


def make_platform(redirect_uri: str, **kwargs: Any) -> DemoPlatform:
    platform = DemoPlatform(**kwargs)
    platform.oauth.register_client("app-1", SECRET, [redirect_uri])
    return platform


# --- the happy paths ------------------------------------------------------------------------------------------


def test_non_interactive_setup_stores_the_token_and_writes_the_connection(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)
    store, config, browser = MemoryTokenStore(), tmp_path / "dunning.toml", ScriptedBrowser(platform)

    result = wizard(platform, config, store, options(redirect_uri), browser)

    assert result.connections == ("acme",) and result.tenants[0].id == "100"
    assert browser.landed is not None and browser.landed.status_code == 200
    assert "Authorisation received" in browser.landed.text
    written = tomlkit.parse(config.read_text())["connections"][0]
    assert dict(written) == {"name": "acme", "provider": "demo", "tenant": "100", "client_id": "app-1",
                             "client_secret_env": "DEMO_SECRET", "redirect_uri": redirect_uri}
    token = store.tokens["acme"]
    assert platform.oauth.check_bearer(f"Bearer {token.access_token.get_secret_value()}").valid
    assert token.access_token.get_secret_value() not in config.read_text() and SECRET not in config.read_text()
    query = parse_qs(urlsplit(browser.opened[0]).query)
    assert query["redirect_uri"] == [redirect_uri] and len(query["state"][0]) >= 32
    assert "code_challenge" not in query  # this platform declares no PKCE


def test_pkce_s256_is_sent_and_verified_for_an_app_without_secret(tmp_path: Path, redirect_uri: str) -> None:
    platform = DemoPlatform(policy=XERO_OAUTH)
    platform.oauth.register_client("app-1", None, [redirect_uri])  # a PKCE app: the simulator demands a challenge
    store, browser = MemoryTokenStore(), ScriptedBrowser(platform)

    wizard(platform, tmp_path / "d.toml", store, options(redirect_uri, client_secret_env=None), browser,
           provider=PkceProvider)

    query = parse_qs(urlsplit(browser.opened[0]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert platform.oauth.stats["code_exchanges"] == 1 and "acme" in store.tokens


def test_https_redirect_gets_a_self_signed_tls_listener_and_exact_codes_with_bang(tmp_path: Path) -> None:
    redirect = f"https://localhost:{free_port()}/exact/callback"
    platform = DemoPlatform(policy=EXACT_OAUTH)
    platform.oauth.register_client("app-1", SECRET, [redirect])
    store, browser = MemoryTokenStore(), ScriptedBrowser(platform)

    wizard(platform, tmp_path / "d.toml", store, options(redirect), browser)

    assert browser.redirected_to is not None and "%21" in browser.redirected_to  # the code's "!" arrived encoded
    assert browser.landed is not None and browser.landed.status_code == 200
    assert store.tokens["acme"].expires_at is not None  # Exact's "600" as a string was understood


def test_no_browser_prints_the_url_alone_and_accepts_the_pasted_redirect(tmp_path: Path) -> None:
    redirect = "https://dunning.example/callback"  # not this machine: no listener, only pasting completes the flow
    platform = make_platform(redirect)
    printed: list[str] = []
    read_end, write_end = os.pipe()
    paste = os.fdopen(read_end, "r")
    browser = ScriptedBrowser(platform, follow=False)

    def show_url(url: str) -> None:
        printed.append(url)
        pasted = browser.consent(url)
        with os.fdopen(write_end, "w") as pipe:
            pipe.write("not a url\n" + pasted + "\n")

    opened: list[str] = []
    said: list[str] = []
    result = wizard(platform, tmp_path / "d.toml", MemoryTokenStore(),
                    options(redirect, no_browser=True, allow_remote_redirect=True), opened.append, show_url=show_url,
                    paste=paste, say=said.append)
    assert any("will be sent to dunning.example" in line and "whoever runs dunning.example" in line for line in said)

    assert opened == [] and len(printed) == 1 and printed[0].startswith(f"{API}/oauth/authorize?")
    assert "\n" not in printed[0] and result.connections == ("acme",)


def test_no_browser_output_on_stdout_is_the_url_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    redirect = "https://dunning.example/callback"
    with pytest.raises(SetupFailed):
        run_setup(options(redirect, no_browser=True, timeout=0.2, allow_remote_redirect=True),
                  config_path=tmp_path / "d.toml",
                  tokens=MemoryTokenStore(), providers={"demo": lambda: DemoProvider}, environ=ENV)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(f"{API}/oauth/authorize?") and "client_id=app-1" in out


def test_several_tenants_become_blocks_sharing_one_stored_authorisation(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("100", "Acme B.V."), ("200", "Acme Holding")))
    store, config = MemoryTokenStore(), tmp_path / "d.toml"

    result = wizard(platform, config, store, options(redirect_uri, all_tenants=True), ScriptedBrowser(platform))

    assert result.connections == ("acme-acme-b-v", "acme-acme-holding")
    blocks = tomlkit.parse(config.read_text())["connections"]
    assert [b["tenant"] for b in blocks] == ["100", "200"]
    assert [token_key_of(b) for b in blocks] == ["acme-acme-b-v", "acme-acme-b-v"]
    assert list(store.tokens) == ["acme-acme-b-v"]  # one refresh-token chain, never two copies of it


def test_tenant_flag_picks_one_of_several(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("100", "Acme B.V."), ("200", "Acme Holding")))
    config = tmp_path / "d.toml"
    wizard(platform, config, MemoryTokenStore(), options(redirect_uri, tenants=("200",)), ScriptedBrowser(platform))
    (block,) = tomlkit.parse(config.read_text())["connections"]
    assert block["tenant"] == "200"


def test_invalid_connection_name_is_refused_before_anything_is_written(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)
    store, config = MemoryTokenStore(), tmp_path / "d.toml"
    browser = ScriptedBrowser(platform)
    with pytest.raises(SetupFailed, match=r"--name 'my shop!': use letters, digits") as failure:
        wizard(platform, config, store, options(redirect_uri, name="my shop!"), browser)
    assert failure.value.exit_code == 2 and browser.opened == []  # refused before the user consents for nothing
    assert_nothing_written(config, store)


def test_interactive_setup_asks_every_question_and_the_tenant(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("100", "Acme B.V."), ("200", "Acme Holding")))
    answers = iter(["demo", "DEMO_SECRET", "shop", redirect_uri, "app-1", "7", "2"])
    questions: list[str] = []

    def ask(question: str, default: str | None) -> str:
        questions.append(question)
        return next(answers)

    config = tmp_path / "d.toml"
    run_setup(SetupOptions(timeout=10), config_path=config, tokens=MemoryTokenStore(), ask=ask,
              open_browser=ScriptedBrowser(platform), providers={"demo": lambda: DemoProvider},
              transport=platform.transport(), environ=ENV, say=lambda text: None)

    assert len(questions) == 7  # five settings, a wrong tenant number, then a valid one
    block = tomlkit.parse(config.read_text())["connections"][0]
    assert (block["name"], block["tenant"]) == ("shop", "200")


def test_all_flags_given_means_no_question(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)

    def ask(question: str, default: str | None) -> str:
        raise AssertionError(f"asked {question!r} although every flag was given")

    wizard(platform, tmp_path / "d.toml", MemoryTokenStore(), options(redirect_uri), ScriptedBrowser(platform),
           ask=ask)


def test_the_readme_form_with_platform_name_id_and_secret_asks_nothing(
    tmp_path: Path, redirect_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wizard_code, "DEFAULT_REDIRECT_URI", redirect_uri)  # a free port, not 8765
    platform = make_platform(redirect_uri)

    def ask(question: str, default: str | None) -> str:
        raise AssertionError(f"asked {question!r} although the scripted flags were given")

    opts = replace(options(redirect_uri, name=None, all_tenants=True), redirect_uri=None)
    result = wizard(platform, tmp_path / "d.toml", MemoryTokenStore(), opts, ScriptedBrowser(platform), ask=ask)
    block = tomlkit.parse((tmp_path / "d.toml").read_text())["connections"][0]
    assert result.connections == ("demo",) and block["redirect_uri"] == redirect_uri


def test_a_mistyped_platform_is_asked_again_and_the_portal_is_named_with_the_redirect_uri(
    tmp_path: Path, redirect_uri: str
) -> None:
    platform = make_platform(redirect_uri)
    answers = iter(["dmeo", "demo", "DEMO_SECRET", "acme", redirect_uri, "app-1"])
    said: list[str] = []
    run_setup(SetupOptions(timeout=10), config_path=tmp_path / "d.toml", tokens=MemoryTokenStore(),
              ask=lambda question, default: next(answers), open_browser=ScriptedBrowser(platform),
              providers={"demo": lambda: DemoProvider}, transport=platform.transport(), environ=ENV, say=said.append)
    assert "There is no platform 'dmeo' here; installed: demo." in said
    assert any(line.startswith("Register an app in demo's developer portal with the redirect URI " + redirect_uri)
               for line in said)


def test_the_developer_portals_of_the_three_platforms_are_named() -> None:
    from connector.setup.answers import register_hint

    assert "developer.xero.com" in register_hint("xero", "http://localhost:8765/callback")
    assert "moneybird.com" in register_hint("moneybird", "http://localhost:8765/callback")
    hint = register_hint("exact", "https://localhost:8765/callback")
    assert "apps.exactonline.com" in hint and "https://localhost:8765/callback" in hint


# --- the config file ------------------------------------------------------------------------------------------

EXISTING = """# Dunning Connector configuration (hand-edited)

[store]
url = "sqlite:///dunning.sqlite"   # keep this next to the config

# Our first shop.
[[connections]]
name = "first"          # do not rename: the history uses it
provider = "demo"
tenant = "999"
client_id = "old"
client_secret_env = "DEMO_SECRET"

[policy]
# reminders start after the due date
first_reminder_after_days = 7
"""


def test_existing_comments_and_layout_are_preserved(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)
    config = tmp_path / "dunning.toml"
    config.write_text(EXISTING)

    wizard(platform, config, MemoryTokenStore(), options(redirect_uri), ScriptedBrowser(platform))

    text = config.read_text()
    for line in EXISTING.splitlines():
        assert line in text.splitlines(), f"lost: {line!r}"
    doc = tomlkit.parse(text)
    assert [c["name"] for c in doc["connections"]] == ["first", "acme"]
    assert doc["policy"]["first_reminder_after_days"] == 7


def test_setup_again_updates_the_block_in_place(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("100", "Acme B.V."),))
    config = tmp_path / "dunning.toml"
    config.write_text(EXISTING.replace('name = "first"', 'name = "acme"').replace('"999"', '"100"'))

    wizard(platform, config, MemoryTokenStore(), options(redirect_uri), ScriptedBrowser(platform))

    text = config.read_text()
    assert 'name = "acme"          # do not rename: the history uses it' in text
    assert 'client_id = "app-1"' in text and "old" not in text
    assert len(tomlkit.parse(text)["connections"]) == 1


def test_reconnect_replaces_the_token_and_keeps_the_file(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("999", "First B.V."),))
    config = tmp_path / "dunning.toml"
    text_before = EXISTING.replace('client_id = "old"', 'client_id = "app-1"').replace(
        "[policy]", f'redirect_uri = "{redirect_uri}"\n\n[policy]', 1)
    config.write_text(text_before)
    store = MemoryTokenStore()
    old = Token.from_response({"access_token": "old-access", "refresh_token": "old-refresh"})
    store.save("first", old)

    result = wizard(platform, config, store, SetupOptions(reconnect="first", timeout=10), ScriptedBrowser(platform))

    assert result.connections == ("first",)
    assert store.tokens["first"].access_token.get_secret_value() != "old-access"
    assert config.read_text() == text_before


def test_reconnect_that_no_longer_reaches_the_tenant_changes_nothing(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("100", "Someone else's books"),))
    config = tmp_path / "dunning.toml"
    text_before = EXISTING.replace('client_id = "old"', 'client_id = "app-1"').replace(
        "[policy]", f'redirect_uri = "{redirect_uri}"\n\n[policy]', 1)
    config.write_text(text_before)
    store = MemoryTokenStore()

    with pytest.raises(SetupFailed, match="does not reach tenant 999"):
        wizard(platform, config, store, SetupOptions(reconnect="first", timeout=10), ScriptedBrowser(platform))
    assert store.saved == [] and config.read_text() == text_before


def test_reconnect_of_an_unknown_connection_is_a_usage_error(tmp_path: Path, redirect_uri: str) -> None:
    config = tmp_path / "dunning.toml"
    config.write_text(EXISTING)
    with pytest.raises(SetupFailed, match="no connection named 'nope'") as failure:
        wizard(make_platform(redirect_uri), config, MemoryTokenStore(), SetupOptions(reconnect="nope"),
               ScriptedBrowser(make_platform(redirect_uri)))
    assert failure.value.exit_code == 2


def test_a_failed_config_write_puts_the_previous_token_back(tmp_path: Path, redirect_uri: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    platform = make_platform(redirect_uri)
    config = tmp_path / "dunning.toml"
    config.write_text(EXISTING)
    store = MemoryTokenStore()
    previous = Token.from_response({"access_token": "previous"})
    store.save("acme", previous)

    def disk_full(path: Path, text: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wizard_code, "write_atomically", disk_full)
    with pytest.raises(SetupFailed, match="could not write"):
        wizard(platform, config, store, options(redirect_uri), ScriptedBrowser(platform))
    assert store.tokens["acme"] == previous and config.read_text() == EXISTING


# --- failure paths: nothing is written ------------------------------------------------------------------------


def assert_nothing_written(config: Path, store: MemoryTokenStore) -> None:
    assert not config.exists() and store.saved == []


@pytest.mark.parametrize("state", ["attacker-state", None], ids=["forged", "missing"])
def test_an_answer_without_this_setups_state_is_refused_with_a_page_and_the_wizard_keeps_waiting(
    tmp_path: Path, redirect_uri: str, state: str | None
) -> None:
    platform = make_platform(redirect_uri)
    store, config, said = MemoryTokenStore(), tmp_path / "d.toml", []
    stray = ScriptedBrowser(platform, tamper=lambda url: with_query(url, state=state))
    real = ScriptedBrowser(platform)

    def browser(url: str) -> bool:  # a forged (or stale) link reaches the port first, then the real answer
        stray(url)
        return real(url)

    result = wizard(platform, config, store, options(redirect_uri), browser, say=said.append)

    assert stray.landed is not None and stray.landed.status_code == 400
    assert "does not belong to the setup" in stray.landed.text and "still waiting" in stray.landed.text
    assert real.landed is not None and real.landed.status_code == 200
    assert result.connections == ("acme",) and "acme" in store.tokens
    assert platform.oauth.stats["code_exchanges"] == 1  # only the real code was spent


def test_a_pasted_url_without_this_setups_state_is_refused_and_the_wizard_keeps_waiting(
    tmp_path: Path, redirect_uri: str
) -> None:
    platform = make_platform(redirect_uri)
    store, config, said = MemoryTokenStore(), tmp_path / "d.toml", []
    browser = ScriptedBrowser(platform, follow=False)
    pasted = io.StringIO()

    def open_browser(url: str) -> bool:
        browser(url)
        assert browser.redirected_to is not None
        pasted.write(with_query(browser.redirected_to, state="old-setup") + "\n" + browser.redirected_to + "\n")
        pasted.seek(0)
        return True

    result = wizard(platform, config, store, options(redirect_uri), open_browser, paste=pasted, say=said.append)
    assert result.connections == ("acme",)
    assert any("possible forgery" in line and "still waiting" in line for line in said)


def test_denied_consent_says_so_and_writes_nothing(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)
    store, config = MemoryTokenStore(), tmp_path / "d.toml"
    browser = ScriptedBrowser(platform, decision="deny")
    with pytest.raises(SetupFailed, match="access was denied"):
        wizard(platform, config, store, options(redirect_uri), browser)
    assert browser.landed is not None and "access was denied" in browser.landed.text
    assert_nothing_written(config, store)


def test_callback_timeout(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)
    store, config = MemoryTokenStore(), tmp_path / "d.toml"
    with pytest.raises(SetupFailed, match="no answer from the platform within 0.3 seconds"):
        wizard(platform, config, store, options(redirect_uri, timeout=0.3), lambda url: True)
    assert_nothing_written(config, store)


def test_port_in_use_is_reported_before_the_browser_opens(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)
    store, config = MemoryTokenStore(), tmp_path / "d.toml"
    opened: list[str] = []
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", urlsplit(redirect_uri).port))
        squatter.listen()
        with pytest.raises(SetupFailed, match="another program uses that port") as failure:
            wizard(platform, config, store, options(redirect_uri), opened.append)
    assert failure.value.exit_code == 2 and opened == []
    assert_nothing_written(config, store)


def test_code_exchange_error_names_the_likely_cause(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)
    store, config = MemoryTokenStore(), tmp_path / "d.toml"
    with pytest.raises(SetupFailed, match="invalid_client.*secret in the environment") as failure:
        run_setup(options(redirect_uri), config_path=config, tokens=store, open_browser=ScriptedBrowser(platform),
                  providers={"demo": lambda: DemoProvider}, transport=platform.transport(),
                  environ={"DEMO_SECRET": "wrong-secret"}, say=lambda text: None)
    assert "wrong-secret" not in str(failure.value)
    assert_nothing_written(config, store)


def test_a_token_that_reaches_no_tenant_is_refused(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, pick_on_consent=True)
    store, config = MemoryTokenStore(), tmp_path / "d.toml"
    with pytest.raises(SetupFailed, match="reaches no administration"):
        wizard(platform, config, store, options(redirect_uri), ScriptedBrowser(platform, tenants=[]))
    assert_nothing_written(config, store)


def test_unknown_tenant_flag_lists_what_is_reachable(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)
    store, config = MemoryTokenStore(), tmp_path / "d.toml"
    with pytest.raises(SetupFailed, match=r"--tenant 555 is not reachable.*100 \(Acme B.V.\)"):
        wizard(platform, config, store, options(redirect_uri, tenants=("555",)), ScriptedBrowser(platform))
    assert_nothing_written(config, store)


def test_several_tenants_without_a_flag_and_no_terminal_is_a_usage_error(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("100", "A"), ("200", "B")))
    store, config = MemoryTokenStore(), tmp_path / "d.toml"
    with pytest.raises(SetupFailed, match="--all-tenants") as failure:
        wizard(platform, config, store, options(redirect_uri), ScriptedBrowser(platform))
    assert failure.value.exit_code == 2
    assert_nothing_written(config, store)


def test_missing_secret_variable_is_a_usage_error_before_anything_happens(tmp_path: Path, redirect_uri: str) -> None:
    opened: list[str] = []
    with pytest.raises(SetupFailed) as failure:
        run_setup(options(redirect_uri, client_secret_env="DEMO_CLIENT_SECRET"), config_path=tmp_path / "d.toml",
                  tokens=MemoryTokenStore(), open_browser=opened.append, providers={"demo": lambda: DemoProvider},
                  environ={})
    assert str(failure.value) == ("acme: the app's client secret is not in the environment: set DEMO_CLIENT_SECRET, "
                                  "then run setup again")  # the variable's name, not mistaken for a secret
    assert failure.value.exit_code == 2 and opened == []


def test_the_listener_only_accepts_the_callback_path(redirect_uri: str) -> None:
    with loopback.callback_listener(redirect_uri, "s") as received:
        base = redirect_uri.rsplit("/", 1)[0]
        assert httpx.get(f"{base}/favicon.ico").status_code == 404
        assert received.empty()
        done = threading.Event()
        threading.Thread(target=lambda: (httpx.get(f"{redirect_uri}?code=c&state=s"), done.set())).start()
        assert received.get(timeout=5).endswith("/callback?code=c&state=s")
        assert done.wait(5)


def test_stdin_paste_stream_is_read_line_by_line() -> None:
    import queue

    received: queue.Queue[str] = queue.Queue()
    loopback.read_pasted_lines(io.StringIO("\n  http://x/cb?code=1&state=s \n"), received)
    assert received.get_nowait() == "http://x/cb?code=1&state=s"


def test_no_secret_reaches_a_log_line_or_the_terminal(tmp_path: Path, redirect_uri: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    platform = make_platform(redirect_uri)
    store, browser, said = MemoryTokenStore(), ScriptedBrowser(platform), []
    caplog.set_level("DEBUG")

    run_setup(options(redirect_uri), config_path=tmp_path / "d.toml", tokens=store, open_browser=browser,
              providers={"demo": lambda: DemoProvider}, transport=platform.transport(), environ=ENV, say=said.append)

    token = store.tokens["acme"]
    assert browser.redirected_to is not None
    code = parse_qs(urlsplit(browser.redirected_to).query)["code"][0]
    secrets_ = [token.access_token.get_secret_value(), token.refresh_token.get_secret_value(), code, SECRET]  # type: ignore[union-attr]
    seen = [record.getMessage() for record in caplog.records] + said + [(tmp_path / "d.toml").read_text()]
    assert seen and not [line for line in seen for secret in secrets_ if secret in line]


def test_reconnect_keeps_the_connections_scopes_and_options(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("999", "First B.V."),))
    config = tmp_path / "dunning.toml"
    config.write_text(EXISTING.replace('client_id = "old"', 'client_id = "app-1"\nscopes = ["sales_invoices", "settings"]')
                      .replace("[policy]", f'redirect_uri = "{redirect_uri}"\n\n[policy]', 1))
    browser = ScriptedBrowser(platform)

    wizard(platform, config, MemoryTokenStore(), SetupOptions(reconnect="first", timeout=10), browser)

    assert parse_qs(urlsplit(browser.opened[0]).query)["scope"] == ["sales_invoices settings"]


def test_edits_made_to_the_config_while_setup_waits_are_kept(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)
    config = tmp_path / "dunning.toml"
    config.write_text(EXISTING)
    browser = ScriptedBrowser(platform)

    def user_edits_then_consents(url: str) -> bool:
        config.write_text(EXISTING + "# added while the browser was open\n")
        return browser(url)

    wizard(platform, config, MemoryTokenStore(), options(redirect_uri), user_edits_then_consents)

    text = config.read_text()
    assert "# added while the browser was open" in text and 'name = "acme"' in text


def test_a_config_file_that_is_not_toml_is_a_usage_error(tmp_path: Path, redirect_uri: str) -> None:
    config = tmp_path / "dunning.toml"
    config.write_text("[[connections]\nname = ")
    store, opened = MemoryTokenStore(), []
    with pytest.raises(SetupFailed, match="is not valid TOML") as failure:
        wizard(make_platform(redirect_uri), config, store, options(redirect_uri), opened.append)
    assert failure.value.exit_code == 2 and opened == [] and store.saved == []
    assert config.read_text() == "[[connections]\nname = "


def test_an_existing_connection_is_not_pointed_at_another_tenant(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("100", "Acme B.V."),))
    config = tmp_path / "dunning.toml"
    config.write_text(EXISTING)  # "first" is tenant 999
    store = MemoryTokenStore()
    with pytest.raises(SetupFailed, match="is for tenant 999, not 100") as failure:
        wizard(platform, config, store, options(redirect_uri, name="first"), ScriptedBrowser(platform))
    assert failure.value.exit_code == 2 and store.saved == [] and config.read_text() == EXISTING


# --- connections sharing one authorisation (token_key) --------------------------------------------------------

SHARED = """[[connections]]
name = "books"          # the first administration of this consent
provider = "demo"
tenant = "100"
client_id = "app-1"
client_secret_env = "DEMO_SECRET"
redirect_uri = "{redirect}"

[[connections]]
name = "holding"
provider = "demo"
tenant = "200"
client_id = "app-1"
client_secret_env = "DEMO_SECRET"
redirect_uri = "{redirect}"
token_key = "books"
"""


def test_reconnecting_a_connection_that_shares_tokens_renews_the_owners_token_set(tmp_path: Path,
                                                                                   redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("100", "Acme B.V."), ("200", "Acme Holding")))
    config = tmp_path / "dunning.toml"
    config.write_text(text := SHARED.format(redirect=redirect_uri))
    store = MemoryTokenStore({"books": Token.from_response({"access_token": "revoked", "refresh_token": "dead"})})

    result = wizard(platform, config, store, SetupOptions(reconnect="holding", timeout=10), ScriptedBrowser(platform))

    assert (result.connections, result.token_key) == (("books", "holding"), "books")
    assert [t.id for t in result.tenants] == ["100", "200"]
    assert [name for name, _ in store.saved] == ["books"]  # the one shared token set, never a copy under "holding"
    renewed = store.tokens["books"].access_token.get_secret_value()
    assert platform.oauth.check_bearer(f"Bearer {renewed}").valid
    assert config.read_text() == text


@pytest.mark.parametrize("reconnect", ["books", "holding"])
def test_a_new_authorisation_missing_a_sharing_connections_tenant_changes_nothing(tmp_path: Path, redirect_uri: str,
                                                                                  reconnect: str) -> None:
    platform = make_platform(redirect_uri, books=(("100", "Acme B.V."), ("200", "Acme Holding")), pick_on_consent=True)
    config = tmp_path / "dunning.toml"
    config.write_text(text := SHARED.format(redirect=redirect_uri))
    store = MemoryTokenStore({"books": Token.from_response({"access_token": "old", "refresh_token": "old-refresh"})})
    missing = "holding (tenant 200)" if reconnect == "books" else "books (tenant 100)"
    ticked = ["100"] if reconnect == "books" else ["200"]  # only the reconnected connection's own tenant

    with pytest.raises(SetupFailed, match=rf"does not reach every connection sharing the tokens of books: "
                                          rf"not {re.escape(missing)} "):
        wizard(platform, config, store, SetupOptions(reconnect=reconnect, timeout=10),
               ScriptedBrowser(platform, tenants=ticked))

    assert store.saved == [] and config.read_text() == text


def test_names_that_would_break_an_existing_token_sharing_are_refused(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri, books=(("100", "Acme B.V."), ("200", "Acme Holding")))
    config = tmp_path / "dunning.toml"
    existing = "".join(  # acme-acme-holding (tenant 200) keeps the tokens that subsidiary (tenant 300) shares
        f'[[connections]]\nname = "{name}"\nprovider = "demo"\ntenant = "{tenant}"\nclient_id = "app-1"\n'
        f'client_secret_env = "DEMO_SECRET"\nredirect_uri = "{redirect_uri}"\n{extra}\n'
        for name, tenant, extra in (("acme-acme-holding", "200", ""),
                                    ("subsidiary", "300", 'token_key = "acme-acme-holding"\n')))
    config.write_text(existing)
    store = MemoryTokenStore()

    with pytest.raises(SetupFailed, match=r"token_key: 'acme-acme-holding' itself shares") as failure:
        # setting up 100 and 200 together makes acme-acme-holding share acme-acme-b-v's tokens: subsidiary's
        # token_key would then name a connection that keeps no tokens of its own
        wizard(platform, config, store, options(redirect_uri, all_tenants=True, name="acme"),
               ScriptedBrowser(platform))
    assert failure.value.exit_code == 2 and store.saved == [] and config.read_text() == existing


def test_the_callback_page_escapes_what_the_platform_sent(redirect_uri: str) -> None:
    with loopback.callback_listener(redirect_uri, "s"):
        page = httpx.get(f"{redirect_uri}?state=s&error=server_error&error_description=<script>alert(1)</script>")
    assert page.status_code == 400 and "<script>" not in page.text and "&lt;script&gt;" in page.text


def test_an_app_without_secret_on_a_platform_without_pkce_is_a_usage_error_before_the_browser(
    tmp_path: Path, redirect_uri: str
) -> None:
    opened: list[str] = []
    with pytest.raises(SetupFailed, match="--client-secret-env is required: demo apps") as failure:
        wizard(make_platform(redirect_uri), tmp_path / "d.toml", MemoryTokenStore(),
               options(redirect_uri, client_secret_env=None), opened.append)
    assert failure.value.exit_code == 2 and opened == [] and not (tmp_path / "d.toml").exists()


def test_reconnect_with_tenant_or_name_flags_is_a_usage_error(tmp_path: Path, redirect_uri: str) -> None:
    config = tmp_path / "dunning.toml"
    config.write_text(EXISTING)
    opened: list[str] = []
    for flags in ({"tenants": ("100",)}, {"all_tenants": True}, {"name": "other"}):
        with pytest.raises(SetupFailed, match="--reconnect renews a connection as configured") as failure:
            wizard(make_platform(redirect_uri), config, MemoryTokenStore(), SetupOptions(reconnect="first", **flags),
                   opened.append)
        assert failure.value.exit_code == 2
    assert opened == [] and config.read_text() == EXISTING


def test_a_symlinked_config_stays_a_link(tmp_path: Path, redirect_uri: str) -> None:
    platform = make_platform(redirect_uri)
    (tmp_path / "dotfiles").mkdir()
    target = tmp_path / "dotfiles" / "dunning.toml"
    target.write_text(EXISTING)
    config = tmp_path / "dunning.toml"
    config.symlink_to(target)

    wizard(platform, config, MemoryTokenStore(), options(redirect_uri), ScriptedBrowser(platform))

    assert config.is_symlink() and 'name = "acme"' in target.read_text()


def test_a_token_without_refresh_token_that_expires_is_refused(tmp_path: Path, redirect_uri: str) -> None:
    platform = DemoPlatform(policy=XERO_OAUTH)  # Xero hands out a refresh token only for offline_access
    platform.oauth.register_client("app-1", SECRET, [redirect_uri])
    store, config = MemoryTokenStore(), tmp_path / "d.toml"
    with pytest.raises(SetupFailed, match="no refresh token.*offline_access"):
        wizard(platform, config, store, options(redirect_uri), ScriptedBrowser(platform))
    assert_nothing_written(config, store)


def test_a_secret_given_instead_of_its_variable_name_is_refused_without_echoing_it(tmp_path: Path,
                                                                                  redirect_uri: str) -> None:
    opened: list[str] = []
    with pytest.raises(SetupFailed) as failure:
        wizard(make_platform(redirect_uri), tmp_path / "d.toml", MemoryTokenStore(),
               options(redirect_uri, client_secret_env="s3cr3t/Value+x"), opened.append)
    assert str(failure.value).startswith("acme: --client-secret-env: that looks like the client secret itself")
    assert "s3cr3t" not in str(failure.value) and "Value" not in str(failure.value)
    assert failure.value.exit_code == 2 and opened == []


def test_an_ipv6_loopback_redirect_is_served_on_ipv6(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    redirect = f"http://[::1]:{port}/callback"
    platform = make_platform(redirect)
    browser = ScriptedBrowser(platform)

    result = wizard(platform, tmp_path / "d.toml", MemoryTokenStore(), options(redirect), browser)

    assert result.connections == ("acme",) and browser.landed is not None and browser.landed.status_code == 200


@pytest.mark.parametrize(("https", "expected"), [(True, "https://localhost:8765/callback"),
                                                 (False, "http://localhost:8765/callback")])
def test_a_platform_that_accepts_only_https_redirects_gets_an_https_default(tmp_path: Path, https: bool,
                                                                            expected: str) -> None:
    # providers.md (Exact): "Redirect URIs must be HTTPS"; the loopback listener serves it with its own certificate
    class Platform(DemoProvider):
        https_redirect = https

    setup = wizard_code.SetupWizard(SetupOptions(provider="demo", client_id="app-1"), config_path=tmp_path / "d.toml",
                                    tokens=MemoryTokenStore(), providers={"demo": lambda: Platform}, environ=ENV)
    answers = setup._answers(tomlkit.document(), None)
    assert answers.redirect_uri == expected


def test_exact_is_such_a_platform() -> None:
    from providers.exact import ExactProvider
    from providers.moneybird import MoneybirdProvider
    from providers.xero import XeroProvider

    assert ExactProvider.https_redirect and not MoneybirdProvider.https_redirect and not XeroProvider.https_redirect
