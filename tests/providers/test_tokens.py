"""The token store: encryption at rest, owner-only files, atomic writes, the key's sources, the refresh lock and
journal, and the choice between the OS keyring and a key file."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring.backend
import keyring.backends.fail
import keyring.backends.null
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from providers.base import Token
from providers.errors import AuthorizationExpired
from providers.tokens import (
    EncryptedFileTokenStore,
    KeyringTokenStore,
    TokenStoreError,
    default_state_dir,
    open_token_store,
    usable_keyring,
)

ACCESS = "access-Zq81mN0pLx55Kd9"
REFRESH = "refresh-Yt62Bv7Hc04Wq3"
KEY = Fernet.generate_key()
fork = multiprocessing.get_context("fork")
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and fork")


def make_token(access: str = ACCESS, refresh: str | None = REFRESH) -> Token:
    now = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    return Token(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh) if refresh else None,
        expires_at=now + timedelta(minutes=30),
        issued_at=now,
        scope="offline_access accounting.invoices",
    )


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUNNING_TOKEN_KEY", raising=False)
    monkeypatch.delenv("DUNNING_TOKEN_STORE", raising=False)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every test's log lines, scanned afterwards for token text."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    for secret in (ACCESS, REFRESH, "access-other-777", "refresh-other-777"):
        assert secret not in caplog.text


def assert_free_of_tokens(text: str | bytes) -> None:
    raw = text.encode() if isinstance(text, str) else text
    for secret in (ACCESS, REFRESH):
        assert secret.encode() not in raw


# --- encryption and files -----------------------------------------------------------------------------------------


def test_saved_token_loads_back_with_every_field(state: Path, logs: pytest.LogCaptureFixture) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    token = make_token()
    store.save("acme-xero", token)

    assert EncryptedFileTokenStore(state, key=KEY).load("acme-xero") == token
    assert store.load("never-set-up") is None


@posix_only
def test_token_key_and_journal_files_are_owner_only_whatever_the_umask(
    state: Path, logs: pytest.LogCaptureFixture
) -> None:
    old_umask = os.umask(0)  # the most permissive umask: modes must come from the code, not the environment
    try:
        store = EncryptedFileTokenStore(state)
        store.save("acme", make_token())
        store.begin_refresh("acme", make_token())
        with store.lock("acme"):
            pass
    finally:
        os.umask(old_umask)

    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in state.iterdir()}
    assert modes == {"acme.token": 0o600, "token.key": 0o600, "acme.refreshing": 0o600, "acme.lock": 0o600}
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_nothing_on_disk_reveals_a_token(state: Path, logs: pytest.LogCaptureFixture) -> None:
    store = EncryptedFileTokenStore(state)
    store.save("acme", make_token())
    store.begin_refresh("acme", make_token())

    for path in state.iterdir():
        assert_free_of_tokens(path.read_bytes())
    journal = json.loads((state / "acme.refreshing").read_text())
    assert set(journal) == {"started_at", "refresh_token_sha256", "attempts"}


def test_a_different_key_cannot_read_the_tokens_and_says_how_to_fix_it(
    state: Path, logs: pytest.LogCaptureFixture
) -> None:
    EncryptedFileTokenStore(state, key=KEY).save("acme", make_token())

    with pytest.raises(TokenStoreError) as caught:
        EncryptedFileTokenStore(state, key=Fernet.generate_key()).load("acme")

    message = str(caught.value)
    assert message == (
        "acme: the token file cannot be decrypted with this key (the key given): set DUNNING_TOKEN_KEY to the key "
        "used at setup, or re-run dunning setup --reconnect acme"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert_free_of_tokens(message)


def test_the_environment_key_is_used_instead_of_a_key_file(
    state: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DUNNING_TOKEN_KEY", KEY.decode())
    EncryptedFileTokenStore(state).save("acme", make_token())

    assert not (state / "token.key").exists()
    assert EncryptedFileTokenStore(state, key=KEY).load("acme") == make_token()
    monkeypatch.delenv("DUNNING_TOKEN_KEY")
    with pytest.raises(TokenStoreError, match="key is missing .*set DUNNING_TOKEN_KEY to the key used at setup"):
        EncryptedFileTokenStore(state).load("acme")


def test_a_malformed_environment_key_is_refused_without_echoing_it(
    state: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DUNNING_TOKEN_KEY", "my-passphrase-123")

    with pytest.raises(TokenStoreError, match="the key in DUNNING_TOKEN_KEY is not a valid token key") as caught:
        EncryptedFileTokenStore(state).save("acme", make_token())
    assert "my-passphrase-123" not in str(caught.value)


def test_an_existing_key_file_is_never_replaced(state: Path, logs: pytest.LogCaptureFixture) -> None:
    first = EncryptedFileTokenStore(state)
    first.save("acme", make_token())
    key_before = (state / "token.key").read_bytes()

    second = EncryptedFileTokenStore(state)  # another process starting later
    second.save("other", make_token("access-other-777", "refresh-other-777"))

    assert (state / "token.key").read_bytes() == key_before
    assert second.load("acme") == make_token()
    assert first.load("other") == make_token("access-other-777", "refresh-other-777")


@posix_only
def test_a_key_file_others_can_read_is_reported(state: Path, caplog: pytest.LogCaptureFixture) -> None:
    EncryptedFileTokenStore(state).save("acme", make_token())
    (state / "token.key").chmod(0o644)

    EncryptedFileTokenStore(state).load("acme")

    key_file = state / "token.key"
    assert f"the token key file {key_file} can be read by other users; run: chmod 600 {key_file}" in caplog.text
    assert (state / "token.key").read_text().strip() not in caplog.text


def test_reading_creates_nothing(state: Path) -> None:
    assert EncryptedFileTokenStore(state).load("acme") is None
    assert not state.exists()


def test_a_token_file_copied_to_another_connection_is_refused(state: Path, logs: pytest.LogCaptureFixture) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save("acme", make_token())
    (state / "beta.token").write_bytes((state / "acme.token").read_bytes())

    with pytest.raises(TokenStoreError, match="holds the token of connection 'acme'.*--reconnect beta"):
        store.load("beta")


def test_connection_names_cannot_escape_or_share_a_file(state: Path, logs: pytest.LogCaptureFixture) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    names = ["../evil", "a/b", ".", "..", "a.b", "a%2Eb", "Acme Xero"]
    for index, name in enumerate(names):
        store.save(name, make_token(f"access-{index}-xxxxxxxx"))

    assert sorted(path.parent for path in state.rglob("*.token")) == [state] * len(names)
    for index, name in enumerate(names):
        loaded = store.load(name)
        assert loaded is not None and loaded.access_token.get_secret_value() == f"access-{index}-xxxxxxxx"


def test_delete_forgets_the_token_and_its_journal(state: Path, logs: pytest.LogCaptureFixture) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save("acme", make_token())
    store.begin_refresh("acme", make_token())

    store.delete("acme")

    assert store.load("acme") is None and store.interrupted_refresh("acme") is None


def test_default_state_dir_sits_beside_the_config_and_is_named_after_it(tmp_path: Path) -> None:
    assert default_state_dir(tmp_path / "dunning.toml") == tmp_path / ".dunning-tokens"
    assert default_state_dir(tmp_path / "client-b.toml") == tmp_path / ".client-b-tokens"


# --- atomic writes ------------------------------------------------------------------------------------------------


def test_a_failure_after_the_temp_file_is_written_keeps_the_old_token(
    state: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save("acme", make_token())
    written: list[Path] = []

    def crash(source: str | Path, target: str | Path) -> None:
        written.append(Path(source))
        assert Path(source).stat().st_size > 0  # the new content was fully on disk, only the swap failed
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        store.save("acme", make_token("access-other-777", "refresh-other-777"))
    monkeypatch.undo()

    assert written and written[0].parent == state
    assert EncryptedFileTokenStore(state, key=KEY).load("acme") == make_token()
    assert sorted(path.name for path in state.iterdir()) == ["acme.token"]  # the temp file was cleaned up


def _save_and_die_before_the_rename(state: Path) -> None:
    os.replace = lambda source, target: os._exit(9)  # type: ignore[assignment]  # the process dies mid-save
    EncryptedFileTokenStore(state, key=KEY).save("acme", make_token("access-other-777", "refresh-other-777"))


@posix_only
def test_a_process_killed_mid_save_leaves_the_old_token_readable(state: Path, logs: pytest.LogCaptureFixture) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save("acme", make_token())

    child = fork.Process(target=_save_and_die_before_the_rename, args=(state,))
    child.start()
    child.join(10)

    assert child.exitcode == 9
    assert len(list(state.glob(".acme.token.*.tmp"))) == 1  # the orphan temp file of the dead process
    assert store.load("acme") == make_token()
    store.save("acme", make_token("access-other-777", "refresh-other-777"))
    assert store.load("acme") == make_token("access-other-777", "refresh-other-777")


# --- the refresh lock ---------------------------------------------------------------------------------------------


def _hold_lock(state: Path, held: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event,
               die: bool) -> None:
    with EncryptedFileTokenStore(state, key=KEY).lock("acme"):
        held.set()
        if die:
            os._exit(3)
        release.wait(10)


@posix_only
def test_a_lock_held_by_another_process_times_out_with_a_clear_message(
    state: Path, logs: pytest.LogCaptureFixture
) -> None:
    held, release = fork.Event(), fork.Event()
    holder = fork.Process(target=_hold_lock, args=(state, held, release, False))
    holder.start()
    try:
        assert held.wait(10)
        store = EncryptedFileTokenStore(state, key=KEY, lock_timeout=0.2)
        started = time.monotonic()
        with pytest.raises(TokenStoreError) as caught, store.lock("acme"):
            pass
        assert 0.2 <= time.monotonic() - started < 2
        assert str(caught.value) == (
            f"acme: waited 0.2 s for another dunning process to finish refreshing this connection's token "
            f"(lock file {state / 'acme.lock'}); try again later, or stop the other dunning run if it hangs"
        )
    finally:
        release.set()
        holder.join(10)
    with store.lock("acme"):  # free again once the holder let go
        pass


@posix_only
def test_a_crashed_lock_holder_does_not_block_the_next_run(state: Path) -> None:
    held, release = fork.Event(), fork.Event()
    holder = fork.Process(target=_hold_lock, args=(state, held, release, True))
    holder.start()
    holder.join(10)
    assert holder.exitcode == 3 and held.is_set()

    with EncryptedFileTokenStore(state, key=KEY, lock_timeout=0.5).lock("acme"):
        pass


def test_locks_are_per_connection(state: Path) -> None:
    first = EncryptedFileTokenStore(state, key=KEY, lock_timeout=0.1)
    second = EncryptedFileTokenStore(state, key=KEY, lock_timeout=0.1)
    with first.lock("acme"), second.lock("beta"):
        pass


# --- the refresh journal ------------------------------------------------------------------------------------------


def test_an_unfinished_refresh_of_the_stored_token_is_reported(state: Path, logs: pytest.LogCaptureFixture) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save("acme", make_token())
    began = datetime(2026, 11, 23, 20, 41, 7, tzinfo=UTC)

    store.begin_refresh("acme", make_token(), now=began)

    assert store.interrupted_refresh("acme") == began
    assert store.interrupted_refresh("acme", make_token("x", "another-refresh")) is None


def test_finishing_clears_the_journal_but_only_after_the_new_token_is_saved(
    state: Path, logs: pytest.LogCaptureFixture
) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save("acme", make_token())
    store.begin_refresh("acme", make_token())
    new = make_token("access-other-777", "refresh-other-777")

    with pytest.raises(RuntimeError, match="before the new token was saved"):
        store.finish_refresh("acme", new)
    store.save("acme", new)
    store.finish_refresh("acme", new)

    assert not (state / "acme.refreshing").exists()
    assert store.interrupted_refresh("acme") is None


def test_a_journal_entry_for_an_already_replaced_token_is_ignored(
    state: Path, logs: pytest.LogCaptureFixture
) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save("acme", make_token())
    store.begin_refresh("acme", make_token())
    store.save("acme", make_token("access-other-777", "refresh-other-777"))  # then the process stopped

    assert store.interrupted_refresh("acme") is None


def test_refused_refresh_after_an_interrupted_one_names_the_time_and_the_command(
    state: Path, logs: pytest.LogCaptureFixture
) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save("acme", make_token())
    store.begin_refresh("acme", make_token(), now=datetime(2026, 11, 23, 20, 41, 7, tzinfo=UTC))  # run 1 died
    store.begin_refresh("acme", make_token())  # run 2 retries the same refresh token
    refused = AuthorizationExpired("the platform refused to renew the authorisation (invalid_grant)", connection="acme")

    explained = store.refresh_refused("acme", refused)

    assert isinstance(explained, AuthorizationExpired) and explained.connection == "acme"
    assert str(explained).startswith("acme: a token refresh was interrupted at 2026-11-23 20:41:07 UTC ")
    assert str(explained).endswith("Run: dunning setup --reconnect acme")


def test_a_refusal_on_the_first_attempt_is_not_blamed_on_an_interruption(
    state: Path, logs: pytest.LogCaptureFixture
) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save("acme", make_token())
    store.begin_refresh("acme", make_token())
    refused = AuthorizationExpired("consent revoked", connection="acme")

    assert store.refresh_refused("acme", refused) is refused


def test_cancelling_an_attempt_keeps_an_earlier_interrupted_one_on_record(
    state: Path, logs: pytest.LogCaptureFixture
) -> None:
    store = EncryptedFileTokenStore(state, key=KEY)
    store.save("acme", make_token())
    began = datetime(2026, 11, 23, 20, 41, 7, tzinfo=UTC)
    store.begin_refresh("acme", make_token(), now=began)  # interrupted
    store.begin_refresh("acme", make_token())  # answered "too early": nothing spent
    store.cancel_refresh("acme")

    assert store.interrupted_refresh("acme") == began
    store.cancel_refresh("acme")
    assert store.interrupted_refresh("acme") is None


# --- keyring or key file ------------------------------------------------------------------------------------------


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A usable OS keyring, as far as detection can tell."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.secrets.pop((service, username), None)


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("collection is locked")


class PlaintextKeyring(MemoryKeyring):
    """Stands for keyrings.alt's plaintext file backend (not installed here)."""


PlaintextKeyring.__module__ = "keyrings.alt.file"


class Chainer(MemoryKeyring):
    def __init__(self, *backends: keyring.backend.KeyringBackend) -> None:
        super().__init__()
        self.backends = list(backends)


Chainer.__module__ = "keyring.backends.chainer"


def test_only_a_real_answering_keyring_counts_as_usable() -> None:
    good = MemoryKeyring()
    assert usable_keyring(good) is good
    assert usable_keyring(keyring.backends.fail.Keyring()) is None
    assert usable_keyring(keyring.backends.null.Keyring()) is None
    assert usable_keyring(PlaintextKeyring()) is None
    assert usable_keyring(LockedKeyring()) is None
    assert usable_keyring(Chainer(PlaintextKeyring(), good)) is good
    assert usable_keyring(Chainer(PlaintextKeyring())) is None


def test_with_a_usable_keyring_the_key_lives_there_and_never_a_token(
    state: Path, logs: pytest.LogCaptureFixture
) -> None:
    ring = MemoryKeyring()
    store = open_token_store(state, keyring_backend=ring)
    assert isinstance(store, KeyringTokenStore)

    store.save("acme", make_token())

    assert not (state / "token.key").exists()
    ((service, _), key), = ring.secrets.items()
    assert service == "dunning-connector" and Fernet(key)  # the key, a valid Fernet key
    assert_free_of_tokens(key)
    assert_free_of_tokens((state / "acme.token").read_bytes())
    assert open_token_store(state, keyring_backend=ring).load("acme") == make_token()
    assert EncryptedFileTokenStore(state, key=key).load("acme") == make_token()


def test_a_keyring_store_creates_its_key_once_in_a_fresh_directory(state: Path) -> None:
    ring = MemoryKeyring()
    KeyringTokenStore(state, backend=ring).save("acme", make_token())
    KeyringTokenStore(state, backend=ring).save("beta", make_token())

    assert len(ring.secrets) == 1
    assert KeyringTokenStore(state, backend=ring).load("acme") == make_token()


def test_without_a_usable_keyring_a_key_file_is_used(state: Path, logs: pytest.LogCaptureFixture) -> None:
    store = open_token_store(state, keyring_backend=keyring.backends.fail.Keyring())
    assert type(store) is EncryptedFileTokenStore

    store.save("acme", make_token())

    assert (state / "token.key").exists()
    assert (state / "backend").read_text() == "file\n"


def test_the_first_choice_sticks_and_a_lost_keyring_is_a_clear_error(
    state: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    open_token_store(state, keyring_backend=MemoryKeyring()).save("acme", make_token())

    with pytest.raises(TokenStoreError, match="keeps its token key in the OS keyring.*DUNNING_TOKEN_STORE=file"):
        open_token_store(state, keyring_backend=keyring.backends.fail.Keyring())  # cron: no desktop session
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "file")
    assert type(open_token_store(state, keyring_backend=MemoryKeyring())) is EncryptedFileTokenStore


def test_a_file_store_chosen_first_is_kept_when_a_keyring_appears(state: Path) -> None:
    open_token_store(state, keyring_backend=keyring.backends.fail.Keyring())

    assert type(open_token_store(state, keyring_backend=MemoryKeyring())) is EncryptedFileTokenStore


def test_an_environment_key_at_first_use_chooses_the_file_store(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUNNING_TOKEN_KEY", KEY.decode())

    assert type(open_token_store(state, keyring_backend=MemoryKeyring())) is EncryptedFileTokenStore


def test_a_keyring_that_refuses_the_key_gives_a_clear_error(state: Path, logs: pytest.LogCaptureFixture) -> None:
    class ReadOnlyKeyring(MemoryKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            raise keyring.errors.PasswordSetError("denied")

    store = open_token_store(state, keyring_backend=ReadOnlyKeyring())

    with pytest.raises(TokenStoreError, match=r"could not store the token key in the OS keyring \(PasswordSetError\)"):
        store.save("acme", make_token())
    assert not (state / "acme.token").exists()


def test_a_misspelt_store_choice_is_refused(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_TOKEN_STORE", "keychain")

    with pytest.raises(TokenStoreError, match="DUNNING_TOKEN_STORE says 'keychain'"):
        open_token_store(state)
