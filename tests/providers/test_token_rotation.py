"""Rotating refresh tokens across processes and crashes: the token store together with `providers.http`'s refresher.

A fake identity server rotates refresh tokens like Exact (the old one dies at once: 401 "Old refresh token used")
or Xero (the previous one may be retried for 30 minutes, then `invalid_grant`). Its state lives in a file, so
separate processes share one server, as they would share the real platform.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.fernet import Fernet
from filelock import FileLock
from pydantic import SecretStr

from providers.base import ConnectionSettings, OAuthEndpoints, Token
from providers.errors import AuthorizationExpired, PlatformError
from providers.http import TokenKeeper
from providers.tokens import EncryptedFileTokenStore

pytestmark = pytest.mark.skipif(os.name != "posix", reason="forks processes")

TOKEN_URL = "https://identity.example.test/connect/token"
CLIENT_SECRET = "client-secret-Hq20Lm"
KEY = Fernet.generate_key()
SETTINGS = ConnectionSettings(
    name="acme", provider="exact", client_id="client-1", client_secret=SecretStr(CLIENT_SECRET), token_url=TOKEN_URL
)
OAUTH = OAuthEndpoints(authorize_url="https://identity.example.test/auth", token_url=TOKEN_URL, scopes=(), pkce=False)
XERO_GRACE = 30 * 60
fork = multiprocessing.get_context("fork")


class IdentityServer:
    """The platform's token endpoint, with its state in a file shared by every process."""

    def __init__(self, directory: Path, rotation: Literal["exact", "xero"], *, answer_delay: float = 0.0) -> None:
        self.path = directory / "identity-server.json"
        self.rotation = rotation
        self.answer_delay = answer_delay

    def start(self) -> Token:
        """Issue the first token set (as `dunning setup` would get it), already expired."""
        access, refresh = self._new_pair(0)
        self._write({"live": refresh, "previous": None, "previous_until": 0, "refreshes": 0, "issued": [access, refresh]})
        issued = datetime.now(UTC) - timedelta(hours=1)
        return Token(
            access_token=SecretStr(access),
            refresh_token=SecretStr(refresh),
            expires_at=issued + timedelta(minutes=10),
            issued_at=issued,
        )

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.path.read_text())

    def transport(self, clock: Callable[[], float]) -> httpx.MockTransport:
        def token_endpoint(request: httpx.Request) -> httpx.Response:
            assert request.url == TOKEN_URL
            form = {name: values[0] for name, values in parse_qs(request.content.decode()).items()}
            assert form["grant_type"] == "refresh_token"
            with FileLock(f"{self.path}.lock"):
                time.sleep(self.answer_delay)  # a slow platform widens the window for a race
                state, now, spent = self.state, clock(), form["refresh_token"]
                in_grace = self.rotation == "xero" and spent == state["previous"] and now < state["previous_until"]
                if spent != state["live"] and not in_grace:
                    if self.rotation == "exact":
                        return httpx.Response(
                            401, json={"error": "unauthorized_client", "error_description": "Old refresh token used."}
                        )
                    return httpx.Response(400, json={"error": "invalid_grant"})
                state["refreshes"] += 1
                access, refresh = self._new_pair(state["refreshes"])
                state.update(live=refresh, previous=spent, previous_until=now + XERO_GRACE)
                state["issued"] += [access, refresh]
                self._write(state)
            return httpx.Response(
                200, json={"access_token": access, "token_type": "Bearer", "expires_in": "600", "refresh_token": refresh}
            )

        return httpx.MockTransport(token_endpoint)

    def _new_pair(self, serial: int) -> tuple[str, str]:
        return f"access-{serial}-{secrets.token_hex(8)}", f"refresh-{serial}-{secrets.token_hex(8)}"

    def _write(self, state: dict[str, Any]) -> None:
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps(state))
        os.replace(temp, self.path)


def keeper(store: EncryptedFileTokenStore, server: IdentityServer, clock: Callable[[], float] = time.time) -> TokenKeeper:
    return TokenKeeper(SETTINGS, OAUTH, store, clock=clock, transport=server.transport(clock))


def run_child(target: Callable[..., None], *args: Any) -> int:
    child = fork.Process(target=target, args=args)
    child.start()
    child.join(20)
    assert child.exitcode is not None, "the child process hung"
    return child.exitcode


def child_logging(log_file: Path) -> None:
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(connection)s", defaults={"connection": ""}))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.DEBUG)


def assert_no_token_text(server: IdentityServer, *texts: str) -> None:
    secrets_seen = [*server.state["issued"], CLIENT_SECRET]
    for text in texts:
        for secret in secrets_seen:
            assert secret not in text


# --- two processes, one token -------------------------------------------------------------------------------------


def _refresh_when_released(
    state: Path, server: IdentityServer, start: Any, result_file: Path, with_lock: bool
) -> None:
    child_logging(result_file.with_suffix(".log"))
    store = EncryptedFileTokenStore(state, key=KEY, lock_timeout=10)
    if not with_lock:
        store.lock = lambda connection: contextlib.nullcontext()  # type: ignore[method-assign]
    start.wait(10)
    try:
        token = keeper(store, server).current()
        outcome = {"access": token.access_token.get_secret_value()}
    except Exception as exc:
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    result_file.write_text(json.dumps(outcome))


def race(tmp_path: Path, server: IdentityServer, *, with_lock: bool) -> list[dict[str, str]]:
    state = tmp_path / "state"
    EncryptedFileTokenStore(state, key=KEY).save("acme", server.start())
    start = fork.Barrier(2)
    results = [tmp_path / f"process-{n}.json" for n in (1, 2)]
    children = [
        fork.Process(target=_refresh_when_released, args=(state, server, start, result, with_lock))
        for result in results
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(20)
        assert child.exitcode == 0
    return [json.loads(result.read_text()) for result in results]


@pytest.mark.parametrize("rotation", ["exact", "xero"])
def test_two_processes_refreshing_at_once_spend_the_refresh_token_once_and_share_the_result(
    tmp_path: Path, rotation: Literal["exact", "xero"]
) -> None:
    server = IdentityServer(tmp_path, rotation, answer_delay=0.3)

    outcomes = race(tmp_path, server, with_lock=True)

    state = server.state
    assert state["refreshes"] == 1
    assert outcomes[0] == outcomes[1] and "access" in outcomes[0]
    assert outcomes[0]["access"] == state["issued"][-2]  # the one access token the server issued
    stored = EncryptedFileTokenStore(tmp_path / "state", key=KEY).load("acme")
    assert stored is not None and stored.refresh_token is not None
    assert stored.refresh_token.get_secret_value() == state["live"]  # the rotated refresh token was not lost
    assert not (tmp_path / "state" / "acme.refreshing").exists()
    assert_no_token_text(server, *(path.read_text() for path in tmp_path.glob("process-*.log")))


def test_without_the_lock_the_same_race_loses_the_connection(tmp_path: Path) -> None:
    """The control experiment: proves the race above is real, so the lock is what wins it."""
    server = IdentityServer(tmp_path, "exact", answer_delay=0.3)

    outcomes = race(tmp_path, server, with_lock=False)

    failures = [outcome["error"] for outcome in outcomes if "error" in outcome]
    assert server.state["refreshes"] == 1 and len(failures) == 1
    assert "Old refresh token used" in failures[0] and "dunning setup --reconnect acme" in failures[0]
    assert_no_token_text(server, *failures)


# --- a crash between the token endpoint's answer and the save ----------------------------------------------------


def _refresh_and_die_before_saving(state: Path, server: IdentityServer, log_file: Path) -> None:
    child_logging(log_file)
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save = lambda connection, token: os._exit(9)  # type: ignore[method-assign]  # killed right here
    keeper(store, server).current()


def crash_mid_refresh(tmp_path: Path, server: IdentityServer) -> EncryptedFileTokenStore:
    state = tmp_path / "state"
    store = EncryptedFileTokenStore(state, key=KEY, lock_timeout=2)
    store.save("acme", server.start())

    assert run_child(_refresh_and_die_before_saving, state, server, tmp_path / "crashed.log") == 9
    assert server.state["refreshes"] == 1  # the platform rotated; the new token died with the process
    return store


def test_after_a_crash_exact_reports_the_interrupted_refresh_and_the_command(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = IdentityServer(tmp_path, "exact")
    before = datetime.now(UTC)
    store = crash_mid_refresh(tmp_path, server)

    interrupted_at = store.interrupted_refresh("acme")
    assert interrupted_at is not None and before <= interrupted_at <= datetime.now(UTC)

    with pytest.raises(AuthorizationExpired) as caught:  # the next run; the dead process's lock is free
        keeper(store, server).current()
    explained = caught.value  # the keeper asks the store's journal to explain the refusal

    assert str(explained) == (
        f"acme: a token refresh was interrupted at {interrupted_at:%Y-%m-%d %H:%M:%S} UTC before the new token was "
        "saved; Exact and Xero had already rotated the refresh token (Xero accepts the old one for 30 minutes "
        "only), so the stored authorisation no longer works. Run: dunning setup --reconnect acme"
    )
    assert_no_token_text(server, caplog.text, str(caught.value), str(explained), (tmp_path / "crashed.log").read_text())


def test_a_refused_refresh_is_not_reported_as_an_interrupted_one_on_the_next_run(tmp_path: Path) -> None:
    # invalid_grant means "re-authorise" (providers.md): each run says so, none blames a crash that never happened
    server = IdentityServer(tmp_path, "xero")
    store = EncryptedFileTokenStore(tmp_path / "state", key=KEY)
    token = server.start()
    store.save("acme", token.model_copy(update={"refresh_token": SecretStr("revoked-by-the-user")}))

    for _run in range(3):
        with pytest.raises(AuthorizationExpired) as caught:
            keeper(store, server).current()
        assert "interrupted" not in str(caught.value) and "reconnect acme" in str(caught.value)
    assert store.interrupted_refresh("acme") is None


def test_a_refused_client_secret_says_to_check_the_app_credentials_not_to_reconnect(tmp_path: Path) -> None:
    # providers.md: invalid_client is a token error of its own; only invalid_grant means re-authorise
    store = EncryptedFileTokenStore(tmp_path / "state", key=KEY)
    store.save("acme", IdentityServer(tmp_path, "xero").start())
    refusing = httpx.MockTransport(lambda request: httpx.Response(400, json={"error": "invalid_client"}))
    keeper = TokenKeeper(SETTINGS, OAUTH, store, clock=time.time, transport=refusing)

    with pytest.raises(PlatformError) as caught:
        keeper.current()

    assert not isinstance(caught.value, AuthorizationExpired)
    assert "client_id" in str(caught.value) and "client_secret_env" in str(caught.value)
    assert "reconnect" not in str(caught.value) and CLIENT_SECRET not in str(caught.value)
    assert store.interrupted_refresh("acme") is None  # a definite answer: nothing left in flight


def test_after_a_crash_xero_recovers_within_its_grace_period(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = IdentityServer(tmp_path, "xero")
    store = crash_mid_refresh(tmp_path, server)

    token = keeper(store, server, clock=lambda: time.time() + 29 * 60).current()

    assert server.state["refreshes"] == 2
    assert token.refresh_token is not None and token.refresh_token.get_secret_value() == server.state["live"]
    assert store.load("acme") == token
    assert store.interrupted_refresh("acme") is None
    assert_no_token_text(server, caplog.text)


def test_after_a_crash_xero_past_its_grace_period_reports_the_interruption(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = IdentityServer(tmp_path, "xero")
    store = crash_mid_refresh(tmp_path, server)

    with pytest.raises(AuthorizationExpired) as caught:
        keeper(store, server, clock=lambda: time.time() + 31 * 60).current()
    explained = caught.value  # the keeper asks the store's journal to explain the refusal

    assert "a token refresh was interrupted at" in str(explained)
    assert str(explained).endswith("Run: dunning setup --reconnect acme")
    assert_no_token_text(server, caplog.text, str(caught.value), str(explained))


def _refresh_and_die_before_finishing(state: Path, server: IdentityServer) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.finish_refresh = lambda connection, token: os._exit(9)  # type: ignore[method-assign]
    keeper(store, server).current()


def test_a_crash_after_the_save_loses_nothing(tmp_path: Path) -> None:
    server = IdentityServer(tmp_path, "exact")
    state = tmp_path / "state"
    store = EncryptedFileTokenStore(state, key=KEY, lock_timeout=2)
    store.save("acme", server.start())

    assert run_child(_refresh_and_die_before_finishing, state, server) == 9

    assert store.interrupted_refresh("acme") is None  # the journal entry is for the spent token: stale
    token = keeper(store, server).current()  # still fresh: no new refresh needed
    assert server.state["refreshes"] == 1
    assert token.access_token.get_secret_value() == server.state["issued"][-2]
