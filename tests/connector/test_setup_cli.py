"""`dunning setup` and `dunning status` as a script runs them: a real process, flags only, stdout parsed.

The Moneybird simulator is served on loopback; the test plays the person at the browser with httpx.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import tomlkit
from cryptography.fernet import Fernet
from typer.testing import CliRunner

import providers.moneybird.client as moneybird_client
from connector.cli import app
from connector.setup import SetupOptions, run_setup
from providers.base import Token
from providers.moneybird.simulator import MoneybirdSimulator
from providers.simkit import serve
from providers.tokens import EncryptedFileTokenStore, default_state_dir, open_token_store

CONFIG = """# Our books
[store]
url = "sqlite:///dunning.sqlite"   # next to this file
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def env(key: str) -> dict[str, str]:
    return os.environ | {"DUNNING_TOKEN_STORE": "file", "DUNNING_TOKEN_KEY": key, "MB_SECRET": "mb-secret"}


@pytest.fixture
def simulator() -> MoneybirdSimulator:
    return MoneybirdSimulator(invoices=5)


@pytest.fixture
def served(simulator: MoneybirdSimulator) -> Iterator[str]:
    with serve(simulator) as base_url:
        simulator.base_url = base_url
        yield base_url


def dunning(config: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    command = [str(Path(sys.executable).parent / "dunning"), "--config", str(config), *args]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=config.parent)


def setup_process(config: Path, env: dict[str, str], base_url: str, redirect_uri: str, *more: str,
                  name: str = "shop") -> subprocess.Popen[str]:
    return dunning(config, env, "setup", "--provider", "moneybird", "--name", name, "--client-id", "mb-app",
                   "--client-secret-env", "MB_SECRET", "--redirect-uri", redirect_uri, "--api-url", base_url,
                   "--no-browser", "--timeout", "20", *more)


def consent(url: str) -> str:
    """Open the consent page, press "Allow access", return where the platform redirects the browser."""
    with httpx.Client(timeout=10) as http:
        page = http.get(url)
        txn = page.text.split('name="txn" value="')[1].split('"')[0]
        answer = http.post(url, data={"txn": txn, "decision": "allow"})
    assert answer.status_code == 302
    return answer.headers["Location"]


def test_no_browser_setup_prints_only_the_url_and_completes_on_the_loopback(
    tmp_path: Path, env: dict[str, str], simulator: MoneybirdSimulator, served: str, key: str
) -> None:
    redirect_uri = f"http://localhost:{free_port()}/callback"
    simulator.oauth.register_client("mb-app", "mb-secret", [redirect_uri])
    config = tmp_path / "dunning.toml"
    config.write_text(CONFIG)

    process = setup_process(config, env, served, redirect_uri)
    assert process.stdout is not None
    url = process.stdout.readline().rstrip("\n")
    assert url.startswith(f"{served}/oauth/authorize?") and " " not in url
    landed = httpx.get(consent(url), timeout=10)
    out, err = process.communicate(timeout=30)

    assert process.returncode == 0, err
    assert out == "" and "Connected shop" in err  # stdout carried the URL alone
    assert "Authorisation received" in landed.text
    assert config.read_text().startswith(CONFIG)
    block = tomlkit.parse(config.read_text())["connections"][0]
    assert (block["name"], block["tenant"]) == ("shop", simulator.administration_id)
    stored = EncryptedFileTokenStore(default_state_dir(config), key=key).load("shop")
    assert stored is not None and stored.access_token.get_secret_value() not in err


def test_no_browser_setup_accepts_the_pasted_redirect_url(
    tmp_path: Path, env: dict[str, str], simulator: MoneybirdSimulator, served: str
) -> None:
    redirect_uri = "https://dunning.example/callback"  # not this machine: pasting is the only way back
    simulator.oauth.register_client("mb-app", "mb-secret", [redirect_uri])
    config = tmp_path / "dunning.toml"

    process = setup_process(config, env, served, redirect_uri, "--allow-remote-redirect")
    assert process.stdout is not None and process.stdin is not None
    redirected = consent(process.stdout.readline().strip())
    assert urlsplit(redirected).netloc == "dunning.example"
    _, err = process.communicate(input=redirected + "\n", timeout=30)

    assert process.returncode == 0, err
    assert tomlkit.parse(config.read_text())["connections"][0]["redirect_uri"] == redirect_uri


def test_a_redirect_uri_on_another_machine_is_refused_without_the_flag_naming_who_gets_the_code(
    tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "d.toml"), "setup", "--provider", "moneybird",
                                      "--client-id", "mb-app", "--redirect-uri", "https://dunning.example/callback",
                                      "--client-secret-env", "MB_SECRET", "--no-browser"],
                                env={"MB_SECRET": "mb-secret"})
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "would hand the authorisation code to dunning.example" in result.stderr
    assert "--allow-remote-redirect" in result.stderr and not (tmp_path / "d.toml").exists()


def test_setup_checks_the_secret_variable_before_anything_else(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "d.toml"), "setup", "--provider", "nosuch",
                                      "--client-secret-env", "UNSET_SECRET_VARIABLE"], env={})
    assert result.exit_code == 2
    assert "set UNSET_SECRET_VARIABLE" in result.stderr and "nosuch" not in result.stderr


def test_setup_without_a_terminal_names_the_missing_flag_and_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "d.toml"), "setup", "--provider", "moneybird"])
    assert result.exit_code == 2
    assert "--client-id is required" in result.stderr and result.stdout == ""
    assert not (tmp_path / "d.toml").exists() and not default_state_dir(tmp_path / "d.toml").exists()


def test_setup_with_an_unknown_platform_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "d.toml"), "setup", "--provider", "sage",
                                      "--client-id", "x"])
    assert result.exit_code == 2 and "unknown platform 'sage'" in result.stderr


# --- status ---------------------------------------------------------------------------------------------------


def write_connections(config: Path) -> None:
    config.write_text(CONFIG + """
[[connections]]
name = "shop"
provider = "moneybird"
tenant = "123"
client_id = "mb-app"

[[connections]]
name = "books"
provider = "moneybird"
tenant = "456"
client_id = "mb-app"
""")


def test_status_json_shows_expiry_and_the_reconnect_command(tmp_path: Path, key: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.setenv("DUNNING_TOKEN_KEY", key)
    config = tmp_path / "dunning.toml"
    write_connections(config)
    token = Token.from_response({"access_token": "a" * 20, "refresh_token": "r" * 20, "expires_in": 1800})
    EncryptedFileTokenStore(default_state_dir(config), key=key).save("shop", token)

    result = CliRunner().invoke(app, ["--config", str(config), "status", "--json"])

    assert result.exit_code == 1, result.stderr  # a connection needs re-authorisation
    rows = {row["name"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows["shop"]["token_expires_at"] == token.expires_at.isoformat()  # type: ignore[union-attr]
    assert rows["shop"]["needs_reauth"] is False and rows["shop"]["authorisation"] == "ok"
    assert rows["books"]["needs_reauth"] is True
    assert rows["books"]["reauth_command"] == "dunning setup --reconnect books"
    assert "a" * 20 not in result.stdout


def test_status_creates_no_token_store(tmp_path: Path) -> None:
    config = tmp_path / "dunning.toml"
    write_connections(config)
    result = CliRunner().invoke(app, ["--config", str(config), "status", "--json"])
    assert result.exit_code == 1, result.stderr  # a connection needs re-authorisation
    assert not default_state_dir(config).exists()
    assert all(json.loads(line)["needs_reauth"] for line in result.stdout.splitlines())


def test_status_reports_an_unreadable_token_store_without_failing(tmp_path: Path, key: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "dunning.toml"
    write_connections(config)
    EncryptedFileTokenStore(default_state_dir(config), key=key).save(
        "shop", Token.from_response({"access_token": "a" * 20}))
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.setenv("DUNNING_TOKEN_KEY", Fernet.generate_key().decode())  # not the key the tokens were saved with

    result = CliRunner().invoke(app, ["--config", str(config), "status", "--json"])

    assert result.exit_code == 1, result.stderr  # books has no token at all
    shop = next(row for row in map(json.loads, result.stdout.splitlines()) if row["name"] == "shop")
    assert shop["authorisation"] == "unknown" and "token store" in shop["attention"]


def test_status_of_a_connection_sharing_tokens_reads_the_owners_token(tmp_path: Path, key: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.setenv("DUNNING_TOKEN_KEY", key)
    config = tmp_path / "dunning.toml"
    write_connections(config)
    config.write_text(config.read_text() + 'token_key = "shop"\n')  # "books" shares the consent of "shop"
    token = Token.from_response({"access_token": "a" * 20, "refresh_token": "r" * 20, "expires_in": 1800})
    store = EncryptedFileTokenStore(default_state_dir(config), key=key)
    store.save("shop", token)

    rows = {row["name"]: row for row in map(json.loads, CliRunner().invoke(
        app, ["--config", str(config), "status", "--json"]).stdout.splitlines())}
    assert rows["books"]["token_expires_at"] == token.expires_at.isoformat()  # type: ignore[union-attr]
    assert rows["books"]["needs_reauth"] is False

    store.delete("shop")
    rows = {row["name"]: row for row in map(json.loads, CliRunner().invoke(
        app, ["--config", str(config), "status", "--json"]).stdout.splitlines())}
    assert [rows[n]["reauth_command"] for n in ("shop", "books")] == [
        "dunning setup --reconnect shop", "dunning setup --reconnect books"]  # either renews the shared token set
    assert rows["books"]["attention"].endswith("Run: dunning setup --reconnect books")


def _browser(url: str) -> bool:
    """The person at the browser: consents and lands on the wizard's loopback callback."""
    httpx.get(consent(url), timeout=10)
    return True


def test_revoked_consent_fails_only_its_connection_until_setup_reconnect(
    tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.setenv("DUNNING_TOKEN_KEY", key)
    monkeypatch.setenv("MB_SECRET", "mb-secret")
    monkeypatch.setattr(moneybird_client, "REQUESTS_PER_WINDOW", 100_000)  # no 2-second pacing in a test
    simulator = MoneybirdSimulator(administrations=("Parkietje B.V.", "Kanarie V.O.F."), invoices=5)
    config = tmp_path / "dunning.toml"
    config.write_text(CONFIG)
    cli = CliRunner()

    def connect(**flags: Any) -> None:
        run_setup(SetupOptions(provider="moneybird", client_id="mb-app", client_secret_env="MB_SECRET",
                               redirect_uri=redirect_uri, api_url=base_url, timeout=20, **flags),
                  config_path=config, tokens=open_token_store(default_state_dir(config)), open_browser=_browser,
                  say=lambda text: None)

    def status() -> dict[str, dict[str, Any]]:
        result = cli.invoke(app, ["--config", str(config), "status", "--json"])
        return {row["name"]: row for row in map(json.loads, result.stdout.splitlines())}

    with serve(simulator) as base_url:
        simulator.base_url = base_url
        parkietje, kanarie = list(simulator.books)
        redirect_uri = f"http://localhost:{free_port()}/callback"
        simulator.oauth.register_client("mb-app", "mb-secret", [redirect_uri])
        connect(name="shop", tenants=(parkietje,))
        connect(name="books", tenants=(kanarie,))  # a second, separate consent
        simulator.oauth.revoke(next(iter(simulator.oauth.grants)))  # the user withdrew the first one, shop's

        sync = cli.invoke(app, ["--config", str(config), "sync", "--json"])

        assert sync.exit_code == 1  # the scheduled job exits non-zero ...
        summaries = {s["connection"]: s for s in map(json.loads, sync.stdout.splitlines())}
        assert summaries["books"]["ok"] and summaries["books"]["api_calls"] > 0  # ... after syncing the other one
        assert summaries["shop"]["error"].endswith("Run: dunning setup --reconnect shop")
        rows = status()
        assert (rows["shop"]["needs_reauth"], rows["books"]["needs_reauth"]) == (True, False)
        assert rows["shop"]["reauth_command"] == "dunning setup --reconnect shop"

        connect(reconnect="shop")
        again = cli.invoke(app, ["--config", str(config), "sync", "--json"])

        assert again.exit_code == 0, again.stderr
        assert [s["ok"] for s in map(json.loads, again.stdout.splitlines())] == [True, True]
        rows = status()
        assert rows["shop"]["needs_reauth"] is False and rows["shop"]["open_invoices"] > 0


def test_status_table_names_the_whole_reconnect_command_at_any_width(tmp_path: Path, key: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.setenv("DUNNING_TOKEN_KEY", key)
    monkeypatch.setenv("COLUMNS", "60")
    config = tmp_path / "dunning.toml"
    write_connections(config)
    config.write_text(config.read_text().replace('name = "books"', 'name = "books-of-a-long-named-holding-company"'))
    EncryptedFileTokenStore(default_state_dir(config), key=key).save("shop",
                                                                     Token.from_response({"access_token": "a" * 20}))

    result = CliRunner().invoke(app, ["--config", str(config), "status"])

    assert result.exit_code == 1, result.stderr  # a connection needs re-authorisation
    lines = result.stdout.splitlines()
    assert "books-of-a-long-named-holding-company: no authorisation stored. Run: dunning setup --reconnect " \
           "books-of-a-long-named-holding-company" in lines
    assert not [line for line in lines if line.startswith("shop:")]  # nothing to do for a working connection


def test_connections_set_up_together_sync_on_their_one_stored_token(tmp_path: Path, key: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.setenv("DUNNING_TOKEN_KEY", key)
    monkeypatch.setenv("MB_SECRET", "mb-secret")
    monkeypatch.setattr(moneybird_client, "REQUESTS_PER_WINDOW", 100_000)  # no 2-second pacing in a test
    simulator = MoneybirdSimulator(administrations=("Parkietje B.V.", "Kanarie V.O.F."), invoices=5)
    config = tmp_path / "dunning.toml"
    config.write_text(CONFIG)
    redirect_uri = f"http://localhost:{free_port()}/callback"
    simulator.oauth.register_client("mb-app", "mb-secret", [redirect_uri])

    with serve(simulator) as base_url:
        simulator.base_url = base_url
        result = run_setup(SetupOptions(provider="moneybird", name="shop", client_id="mb-app",
                                        client_secret_env="MB_SECRET", redirect_uri=redirect_uri, api_url=base_url,
                                        all_tenants=True, timeout=20),
                           config_path=config, tokens=open_token_store(default_state_dir(config)),
                           open_browser=_browser, say=lambda text: None)
        simulator.oauth.expire_refresh_tokens()  # any refresh would now fail: the sharer must not need its own
        sync = CliRunner().invoke(app, ["--config", str(config), "sync", "--json"])

    assert result.connections == ("shop-parkietje-b-v", "shop-kanarie-v-o-f")
    assert sync.exit_code == 0, sync.stderr
    assert [s["ok"] for s in map(json.loads, sync.stdout.splitlines())] == [True, True]
    assert sorted(p.name for p in default_state_dir(config).glob("*.token")) == ["shop-parkietje-b-v.token"]
    assert simulator.oauth.stats["code_exchanges"] == 1 and simulator.oauth.refreshes == 0


class _DesktopKeyring:
    """A keyring that answers, as on a desktop session."""

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, account: str) -> str | None:
        return self.secrets.get((service, account))

    def set_password(self, service: str, account: str, secret: str) -> None:
        self.secrets[(service, account)] = secret


@pytest.mark.parametrize("keyring_usable", [True, False])
def test_setup_says_when_the_scheduled_job_needs_the_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             keyring_usable: bool) -> None:
    import connector.setup as setup_code
    import providers.tokens as token_code
    from connector.setup import SetupResult
    from providers.base import Tenant

    monkeypatch.delenv("DUNNING_TOKEN_STORE", raising=False)
    monkeypatch.delenv("DUNNING_TOKEN_KEY", raising=False)
    monkeypatch.setattr(token_code, "usable_keyring",
                        lambda backend=None: _DesktopKeyring() if keyring_usable else None)

    def authorised(options: SetupOptions, *, config_path: Path, tokens: Any, **hooks: Any) -> SetupResult:
        tokens().save("shop", Token.from_response({"access_token": "a" * 20, "refresh_token": "r" * 20}))
        return SetupResult(("shop",), (Tenant(id="1", name="Shop B.V."),), "shop")

    monkeypatch.setattr(setup_code, "run_setup", authorised)
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "d.toml"), "setup", "--provider", "moneybird"])

    assert result.exit_code == 0, result.stderr
    assert "Connected shop for Shop B.V. (1)" in result.stderr
    assert ("DUNNING_TOKEN_STORE=file" in result.stderr) is keyring_usable, result.stderr


def test_status_exits_0_when_every_connection_is_authorised_and_1_when_one_is_not(
    tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.setenv("DUNNING_TOKEN_KEY", key)
    config = tmp_path / "dunning.toml"
    write_connections(config)
    tokens = EncryptedFileTokenStore(default_state_dir(config), key=key)
    tokens.save("shop", Token.from_response({"access_token": "a" * 20, "refresh_token": "r" * 20}))
    assert CliRunner().invoke(app, ["--config", str(config), "status"]).exit_code == 1  # books has none
    tokens.save("books", Token.from_response({"access_token": "b" * 20, "refresh_token": "s" * 20}))
    result = CliRunner().invoke(app, ["--config", str(config), "status"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["books", "shop"]  # sorted by name


def test_status_says_when_an_unused_refresh_token_lapses_and_that_a_lapsed_one_needs_reauthorising(
    tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """providers.md: Xero drops a refresh token unused for 60 days, Exact one unused for 30; Moneybird documents no
    such limit. Each sync renews it, so the last renewal tells when a job that stopped running loses the consent."""
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    monkeypatch.setenv("DUNNING_TOKEN_KEY", key)
    config = tmp_path / "dunning.toml"
    config.write_text(CONFIG + "".join(
        f'\n[[connections]]\nname = "{name}"\nprovider = "{provider}"\ntenant = "t-{name}"\nclient_id = "app"\n'
        for name, provider in (("fresh", "xero"), ("soon", "xero"), ("gone", "exact"), ("shop", "moneybird"))))
    tokens = EncryptedFileTokenStore(default_state_dir(config), key=key)
    now = datetime.now(UTC)
    renewed = {"fresh": now - timedelta(days=1), "soon": now - timedelta(days=55), "gone": now - timedelta(days=31),
               "shop": now - timedelta(days=400)}
    for name, on in renewed.items():
        tokens.save(name, Token.from_response({"access_token": "a" * 20, "refresh_token": "r" * 20,
                                               "expires_in": 1800}, now=on))

    result = CliRunner().invoke(app, ["--config", str(config), "status", "--json"])

    assert result.exit_code == 1, result.stderr  # "gone" needs re-authorisation
    rows = {row["name"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows["fresh"]["refresh_lapses_at"] == (renewed["fresh"] + timedelta(days=60)).isoformat()
    assert (rows["fresh"]["needs_reauth"], rows["fresh"]["attention"]) == (False, None)
    soon = rows["soon"]
    assert soon["needs_reauth"] is False and soon["authorisation"] == "ok"
    lapses = renewed["soon"] + timedelta(days=60)
    assert f"lapses on {lapses:%Y-%m-%d %H:%M} UTC unless a sync renews it" in soon["attention"]
    gone = rows["gone"]
    assert gone["needs_reauth"] is True and gone["reauth_command"] == "dunning setup --reconnect gone"
    assert f"last renewed on {renewed['gone']:%Y-%m-%d}" in gone["attention"] and "30 days" in gone["attention"]
    assert rows["shop"]["refresh_lapses_at"] is None and rows["shop"]["needs_reauth"] is False

    human = CliRunner().invoke(app, ["--config", str(config), "status"], env={"COLUMNS": "100"})
    assert f"soon: the authorisation lapses on {lapses.day} {lapses:%B %Y %H:%M} UTC" in human.stdout  # as the table
    assert "gone: the authorisation was last renewed on" in human.stdout
    assert "dunning setup --reconnect gone" in human.stdout
