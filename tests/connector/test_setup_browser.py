"""End to end: `dunning setup` with a real headless Chromium against each platform simulator served on loopback.

The browser opens the authorization URL, presses the simulator's consent button and lands on the wizard's own
callback page (over TLS with a self-signed certificate for Exact); the wizard exchanges the code over real HTTP,
lists the tenants with the platform's adapter, stores the token in the encrypted token store and writes the
config; then the connection syncs from that config.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from cryptography.fernet import Fernet

from connector.config import load_config
from connector.setup import SetupOptions, run_setup
from connector.store import Store
from connector.sync import sync_all
from providers.exact.simulator import ExactSimulator
from providers.moneybird.simulator import MoneybirdSimulator
from providers.simkit import SimulatorBase, serve
from providers.xero.simulator import XeroSimulator
from providers.tokens import EncryptedFileTokenStore

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Any:
    if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium); CI=true makes this a failure")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield browser
        browser.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Platform:
    """How to stand up one platform's simulator and point `dunning setup` at it."""

    provider: str
    make: Callable[[], SimulatorBase]
    tenant: Callable[[Any], str]
    redirect_scheme: str = "http"
    oauth_paths: tuple[str, str] | None = None
    """(authorize, token) paths when they do not follow from --api-url."""


def _moneybird() -> MoneybirdSimulator:
    return MoneybirdSimulator(administrations=("Parkietje B.V.", "Kanarie V.O.F."), invoices=25)


def _xero() -> XeroSimulator:
    simulator = XeroSimulator()
    simulator.add_organisation("Kanarie Ltd")
    simulator.seed_book(open_invoices=20, contacts=8)
    return simulator


PLATFORMS = [
    Platform("moneybird", _moneybird, lambda sim: sim.administration_id),
    Platform("xero", _xero, lambda sim: sim.org.tenant_id,
             oauth_paths=("/identity/connect/authorize", "/connect/token")),  # PKCE, organisations ticked on consent
    Platform("exact", lambda: ExactSimulator.seeded(invoices=20), lambda sim: "123456",
             redirect_scheme="https"),  # Exact requires https redirects: the wizard's self-signed TLS listener
]


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.provider)
def test_setup_in_a_real_browser_then_the_connection_syncs(platform: Platform, chromium: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    redirect_uri = f"{platform.redirect_scheme}://localhost:{free_port()}/callback"
    simulator = platform.make()
    simulator.oauth.register_client("the-app", "the-secret", [redirect_uri])
    monkeypatch.setenv("APP_SECRET", "the-secret")
    config_path = tmp_path / "dunning.toml"
    config_path.write_text('# my books\n[store]\nurl = "sqlite:///dunning.sqlite"  # next to this file\n')
    tokens = EncryptedFileTokenStore(tmp_path / "tokens", key=Fernet.generate_key())
    landed: dict[str, str] = {}

    def open_in_chromium(url: str) -> bool:
        context = chromium.new_context(ignore_https_errors=True)  # the loopback's self-signed certificate
        try:
            page = context.new_page()
            page.goto(url)
            page.click("#allow")
            page.wait_for_selector("#result")
            landed["url"], landed["text"] = page.url, page.inner_text("body")
        finally:
            context.close()
        return True

    with serve(simulator) as base_url:
        if isinstance(simulator, MoneybirdSimulator):
            simulator.base_url = base_url
        tenant = platform.tenant(simulator)
        paths = platform.oauth_paths
        result = run_setup(
            SetupOptions(provider=platform.provider, name="books", client_id="the-app", client_secret_env="APP_SECRET",
                         redirect_uri=redirect_uri, tenants=(tenant,), api_url=base_url, timeout=30,
                         authorize_url=f"{base_url}{paths[0]}" if paths else None,
                         token_url=f"{base_url}{paths[1]}" if paths else None),
            config_path=config_path, tokens=tokens, open_browser=open_in_chromium, say=lambda text: None,
        )

        assert landed["url"].startswith(f"{redirect_uri}?code=") and "Authorisation received" in landed["text"]
        assert result.connections == ("books",)
        text = config_path.read_text()
        assert text.startswith('# my books\n[store]\nurl = "sqlite:///dunning.sqlite"  # next to this file\n')
        block = tomlkit.parse(text)["connections"][0]
        assert (block["tenant"], block["api_url"]) == (tenant, base_url)
        stored = tokens.load("books")
        assert stored is not None and simulator.oauth.check_bearer(
            f"Bearer {stored.access_token.get_secret_value()}").valid

        config = load_config(config_path)
        with Store.open(config.store_url) as store:
            (summary,) = sync_all(config, store, tokens)
            in_store = store.connection_status()["books"].open_invoices
    assert summary.ok, summary.error
    assert summary.fetched == in_store > 0
