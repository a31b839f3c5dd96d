"""End to end: `dunning setup` with a real headless Chromium against the Moneybird simulator served on loopback.

The browser opens the authorization URL, presses the simulator's consent button and lands on the wizard's own
callback page; the wizard exchanges the code over real HTTP, lists the administrations with the Moneybird adapter,
stores the token in the encrypted token store and writes the config; then the connection syncs from that config.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import tomlkit
from cryptography.fernet import Fernet

from connector.config import load_config
from connector.setup import SetupOptions, run_setup
from connector.store import Store
from connector.sync import sync_all
from providers.moneybird.simulator import MoneybirdSimulator
from providers.simkit import serve
from providers.tokens import EncryptedFileTokenStore

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> object:
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


def test_setup_in_a_real_browser_then_the_connection_syncs(chromium: object, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    redirect_uri = f"http://localhost:{free_port()}/callback"
    simulator = MoneybirdSimulator(administrations=("Parkietje B.V.", "Kanarie V.O.F."), invoices=25)
    simulator.oauth.register_client("mb-app", "mb-secret", [redirect_uri])
    monkeypatch.setenv("MONEYBIRD_SECRET", "mb-secret")
    config_path = tmp_path / "dunning.toml"
    config_path.write_text('# my books\n[store]\nurl = "sqlite:///dunning.sqlite"  # next to this file\n')
    tokens = EncryptedFileTokenStore(tmp_path / "tokens", key=Fernet.generate_key())
    landed: dict[str, str] = {}

    def open_in_chromium(url: str) -> bool:
        page = chromium.new_page()  # type: ignore[attr-defined]
        try:
            page.goto(url)
            assert "Moneybird" in page.title()
            page.click("#allow")
            page.wait_for_selector("#result")
            landed["url"], landed["text"] = page.url, page.inner_text("body")
        finally:
            page.close()
        return True

    with serve(simulator) as base_url:
        simulator.base_url = base_url
        first = simulator.administration_id
        result = run_setup(
            SetupOptions(provider="moneybird", name="parkietje", client_id="mb-app",
                         client_secret_env="MONEYBIRD_SECRET", redirect_uri=redirect_uri, tenants=(first,),
                         api_url=base_url, timeout=30),
            config_path=config_path, tokens=tokens, open_browser=open_in_chromium, say=lambda text: None,
        )

        assert landed["url"].startswith(f"{redirect_uri}?code=") and "Authorisation received" in landed["text"]
        assert result.connections == ("parkietje",)
        text = config_path.read_text()
        assert text.startswith('# my books\n[store]\nurl = "sqlite:///dunning.sqlite"  # next to this file\n')
        block = tomlkit.parse(text)["connections"][0]
        assert (block["tenant"], block["api_url"]) == (first, base_url)
        stored = tokens.load("parkietje")
        assert stored is not None and simulator.oauth.check_bearer(
            f"Bearer {stored.access_token.get_secret_value()}").valid

        config = load_config(config_path)
        with Store.open(config.store_url) as store:
            (summary,) = sync_all(config, store, tokens)
            in_store = store.connection_status()["parkietje"].open_invoices
    assert summary.ok, summary.error
    unpaid = [i for i in simulator.administration.invoices.values()
              if i.state in ("open", "pending_payment", "late", "reminded")]  # Moneybird's open states
    assert summary.fetched == in_store == len(unpaid) > 0
