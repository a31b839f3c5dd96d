"""Where each connection's OAuth tokens live between runs, and how a rotating refresh token is spent safely.

Tokens never live in the config file. They sit in a state directory (by default `.<config stem>-tokens` next to
the config file), one Fernet-encrypted file per connection, written atomically and readable by the owner only:

    <state>/<connection>.token        the encrypted token set (0600; temp file + fsync + rename + directory fsync)
    <state>/<connection>.lock         the cross-process refresh lock (an OS file lock: a crashed holder releases it)
    <state>/<connection>.refreshing   the refresh journal: when a refresh began and a SHA-256 of the refresh token
                                      it spends (never the token itself)
    <state>/token.key                 the Fernet key, unless `DUNNING_TOKEN_KEY` or the OS keyring holds it
    <state>/backend                   "file" or "keyring": chosen at first use and kept, so a scheduled job without
                                      a desktop session fails loudly instead of quietly looking elsewhere

The refresh sequence (`providers.http.TokenKeeper.refresh` follows it):

    with store.lock(name):                      # one refresher per connection, across processes
        token = store.load(name)                # another process may have refreshed while we waited
        if token still needs a refresh:
            store.begin_refresh(name, token)    # journal first: this refresh token is about to be spent
            new = <token endpoint>(token)       # Exact/Xero rotate: the old refresh token dies (Xero: 30 min grace)
              on AuthorizationExpired as exc: raise store.refresh_refused(name, exc)
              on an answer that spent nothing (Exact's "too early", another 4xx): store.cancel_refresh(name)
            store.save(name, new)               # durable before the new access token is used
            store.finish_refresh(name, new)
        use the token

If the process dies between the token endpoint's answer and `save`, the rotated token is lost and the store still
holds the spent one. The next run's refresh then fails on Exact (and on Xero after its 30-minute grace); because
the journal shows an unfinished refresh of that very token, `refresh_refused` turns the failure into "a token
refresh was interrupted at …" with the re-authorisation command. Within Xero's grace the retry simply succeeds and
`finish_refresh` clears the journal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from cryptography.fernet import Fernet, InvalidToken
from filelock import FileLock, Timeout
from pydantic import ValidationError

from providers.base import Token
from providers.errors import AuthorizationExpired, DunningError
from providers.files import create_once, write_atomically

log = logging.getLogger(__name__)

KEY_ENV = "DUNNING_TOKEN_KEY"
"""A Fernet key (32 url-safe base64 bytes) for the token files; takes precedence over the key file."""
BACKEND_ENV = "DUNNING_TOKEN_STORE"
"""`file` or `keyring`: overrides the choice recorded in the state directory."""
KEYRING_SERVICE = "dunning-connector"
_FORMAT = 1

Backend = Literal["file", "keyring"]


class TokenStoreError(DunningError):
    """The token store cannot be used as it is: wrong or missing key, keyring out of reach, lock held too long."""


def default_state_dir(config_path: Path | str) -> Path:
    """`dunning.toml` → `.dunning-tokens/` beside it: two configs in one folder never share tokens."""
    config = Path(config_path).absolute()
    return config.parent / f".{config.stem}-tokens"


# --- the stores ---------------------------------------------------------------------------------------------------


class EncryptedFileTokenStore:
    """Tokens in one Fernet-encrypted file per connection; implements `providers.base.TokenStore`.

    The key comes from `key` (tests), else `DUNNING_TOKEN_KEY`, else the key file (default `<state>/token.key`),
    which is created 0600 on the first save. Whoever can read both the key file and the token files can read the
    tokens: on shared machines keep the key in the environment or the OS keyring (`KeyringTokenStore`).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        key: bytes | str | None = None,
        key_file: Path | str | None = None,
        lock_timeout: float = 60.0,
    ) -> None:
        self.directory = Path(directory)
        self.key_file = Path(key_file) if key_file is not None else self.directory / "token.key"
        self.lock_timeout = lock_timeout
        if key is None and os.environ.get(KEY_ENV):
            key, self._key_label = os.environ[KEY_ENV], f"the key in {KEY_ENV}"
        else:
            self._key_label = "the key given" if key is not None else f"the key file {self.key_file}"
        self._given_key = key
        self._fernet: Fernet | None = None
        self._locks: dict[str, FileLock] = {}

    # TokenStore

    def load(self, connection: str) -> Token | None:
        path = self._path(connection, "token")
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        fernet = self._cipher(create=False)
        if fernet is None:
            raise TokenStoreError(
                f"the token file {path} exists but its key is missing ({self._key_label}): set {KEY_ENV} to the "
                f"key used at setup, or re-run dunning setup --reconnect {connection}",
                connection=connection,
            )
        try:
            plain = fernet.decrypt(blob)
        except InvalidToken:
            raise TokenStoreError(
                f"the token file cannot be decrypted with this key ({self._key_label}): set {KEY_ENV} to the key "
                f"used at setup, or re-run dunning setup --reconnect {connection}",
                connection=connection,
            ) from None
        return _token_from_json(plain, connection)

    def save(self, connection: str, token: Token) -> None:
        fernet = self._cipher(create=True)
        assert fernet is not None
        payload = {"format": _FORMAT, "connection": connection, "token": token.secrets()}
        _write_private(self._path(connection, "token"), fernet.encrypt(json.dumps(payload).encode()))
        log.info(
            "saved the token of connection %s (%s)",
            connection,
            f"access token valid until {token.expires_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if token.expires_at
            else "the platform gives the access token no expiry",
        )

    @contextlib.contextmanager
    def lock(self, connection: str) -> Iterator[None]:
        path = self._path(connection, "lock")
        _private_dir(self.directory)
        lock = self._locks.get(connection)
        if lock is None:
            lock = self._locks[connection] = FileLock(path, timeout=self.lock_timeout, mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            raise TokenStoreError(
                f"waited {self.lock_timeout:g} s for another dunning process to finish refreshing this connection's "
                f"token (lock file {path}); try again later, or stop the other dunning run if it hangs",
                connection=connection,
            ) from None
        try:
            yield
        finally:
            lock.release()

    def delete(self, connection: str) -> None:
        """Forget the connection's token and journal (the lock file stays: another process may hold it)."""
        for kind in ("token", "refreshing"):
            self._path(connection, kind).unlink(missing_ok=True)

    # the refresh journal

    def begin_refresh(self, connection: str, token: Token, *, now: datetime | None = None) -> None:
        """Record durably that `token`'s refresh token is about to be spent. Call under `lock`, before the request.

        A retry that spends the same refresh token keeps the first attempt's time and counts the attempt.
        """
        fingerprint = _fingerprint(token)
        marker = self._marker(connection)
        if marker is not None and marker.fingerprint == fingerprint:
            marker = _Marker(marker.started_at, fingerprint, marker.attempts + 1)
        else:
            marker = _Marker(now or datetime.now(UTC), fingerprint, 1)
        self._write_marker(connection, marker)

    def finish_refresh(self, connection: str, new_token: Token) -> None:
        """Close the journal entry once `new_token` is saved (refuses if it is not: the order is the point)."""
        stored = self.load(connection)
        if stored is None or _fingerprint(stored) != _fingerprint(new_token):
            raise RuntimeError(f"{connection}: finish_refresh called before the new token was saved")
        self._path(connection, "refreshing").unlink(missing_ok=True)

    def cancel_refresh(self, connection: str) -> None:
        """The token endpoint answered without spending the refresh token (e.g. Exact's "too early"): undo
        `begin_refresh`. An earlier, interrupted attempt on the same token stays on record."""
        marker = self._marker(connection)
        if marker is None:
            return
        if marker.attempts > 1:
            self._write_marker(connection, _Marker(marker.started_at, marker.fingerprint, marker.attempts - 1))
        else:
            self._path(connection, "refreshing").unlink(missing_ok=True)

    def interrupted_refresh(self, connection: str, token: Token | None = None) -> datetime | None:
        """When an unfinished refresh began spending the stored (or given) token's refresh token; else None.

        A journal entry for another refresh token is stale (its successor was saved, then the process stopped
        before `finish_refresh`) and is ignored.
        """
        marker = self._marker(connection)
        if marker is None:
            return None
        token = token if token is not None else self.load(connection)
        if token is None or _fingerprint(token) != marker.fingerprint:
            return None
        return marker.started_at

    def refresh_refused(self, connection: str, error: AuthorizationExpired) -> AuthorizationExpired:
        """The error to raise when the token endpoint refused the refresh token (`invalid_grant`, "Old refresh token
        used"): when an earlier refresh of this very token was interrupted, say so — that is why it is dead."""
        marker = self._marker(connection)
        if marker is None or marker.attempts < 2 or self.interrupted_refresh(connection) is None:
            return error
        return AuthorizationExpired(
            f"a token refresh was interrupted at {marker.started_at:%Y-%m-%d %H:%M:%S} UTC before the new token was "
            "saved; Exact and Xero had already rotated the refresh token (Xero accepts the old one for 30 minutes "
            "only), so the stored authorisation no longer works",
            connection=connection,
        )

    # internals

    def _path(self, connection: str, kind: str) -> Path:
        return self.directory / f"{_file_stem(connection)}.{kind}"

    def _cipher(self, *, create: bool) -> Fernet | None:
        if self._fernet is None:
            key = self._given_key if self._given_key is not None else self._stored_key(create=create)
            if key is None:
                return None
            self._fernet = _fernet(key, self._key_label)
        return self._fernet

    def _stored_key(self, *, create: bool) -> bytes | str | None:
        return _key_from_file(self.key_file, create=create)

    def _marker(self, connection: str) -> _Marker | None:
        try:
            raw = json.loads(self._path(connection, "refreshing").read_text())
            return _Marker(datetime.fromisoformat(raw["started_at"]), raw["refresh_token_sha256"], int(raw["attempts"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("%s: ignoring an unreadable refresh journal entry", connection)
            return None

    def _write_marker(self, connection: str, marker: _Marker) -> None:
        entry = {
            "started_at": marker.started_at.isoformat(),
            "refresh_token_sha256": marker.fingerprint,
            "attempts": marker.attempts,
        }
        _write_private(self._path(connection, "refreshing"), json.dumps(entry).encode())


class KeyringTokenStore(EncryptedFileTokenStore):
    """The same encrypted token files, with their key kept in the OS keyring instead of a key file.

    The keyring holds the key rather than the tokens: Windows' Credential Manager caps a secret at 1,280 characters
    (jaraco/keyring#540) and a Xero access token (a JWT) can exceed it, and the files keep atomic writes and the
    refresh journal the same for both stores.
    """

    def __init__(self, directory: Path | str, *, backend: Any, lock_timeout: float = 60.0) -> None:
        super().__init__(directory, lock_timeout=lock_timeout)
        self.backend = backend
        self._given_key = None  # the keyring, not DUNNING_TOKEN_KEY, holds this store's key
        self._account = f"token key {self.directory.absolute()}"
        self._key_label = f"the key in the OS keyring ({type(backend).__module__}.{type(backend).__name__})"

    def _stored_key(self, *, create: bool) -> bytes | str | None:
        key = self._keyring_call("read", self.backend.get_password, KEYRING_SERVICE, self._account)
        if key is None and create:
            _private_dir(self.directory)
            with FileLock(self.directory / "token-key.lock", timeout=self.lock_timeout, mode=0o600):
                key = self._keyring_call("read", self.backend.get_password, KEYRING_SERVICE, self._account)
                if key is None:
                    key = Fernet.generate_key().decode()
                    self._keyring_call("store", self.backend.set_password, KEYRING_SERVICE, self._account, key)
                    log.info("created the token key in the OS keyring")
        return key

    def _keyring_call(self, action: str, call: Any, *args: str) -> Any:
        try:
            return call(*args)
        except Exception as exc:  # backends raise their own types (D-Bus, Keychain, WinVault errors)
            raise TokenStoreError(
                f"could not {action} the token key in the OS keyring ({type(exc).__name__}): unlock the keyring, or "
                f"run dunning in a session that can reach it (cron jobs often cannot; set {KEY_ENV} for those)"
            ) from None


def open_token_store(
    state_dir: Path | str,
    *,
    key_file: Path | str | None = None,
    backend: Backend | None = None,
    keyring_backend: Any = None,
    lock_timeout: float = 60.0,
) -> EncryptedFileTokenStore:
    """The token store for this installation: the OS keyring holds the key where one is usable, else a key file.

    The first choice is recorded in the state directory and kept, so a run without a desktop session (cron, a
    server) cannot silently start an empty store next to the one `dunning setup` filled. `backend` or
    `DUNNING_TOKEN_STORE` overrides it; `DUNNING_TOKEN_KEY` being set at first use chooses the file store.
    `keyring_backend` replaces the keyring's own detection (tests).
    """
    state = Path(state_dir)
    recorded_at = state / "backend"
    recorded = _recorded_backend(recorded_at)
    chosen = backend or _backend_named(os.environ.get(BACKEND_ENV), BACKEND_ENV) or recorded
    found = None
    if chosen is None:
        found = None if os.environ.get(KEY_ENV) else usable_keyring(keyring_backend)
        chosen = "keyring" if found is not None else "file"
    if recorded is None:
        _private_dir(state)
        _write_private(recorded_at, f"{chosen}\n".encode())
    if chosen == "file":
        return EncryptedFileTokenStore(state, key_file=key_file, lock_timeout=lock_timeout)
    found = found or usable_keyring(keyring_backend)
    if found is None:
        raise TokenStoreError(
            f"this installation keeps its token key in the OS keyring ({state}), but no usable keyring is reachable "
            f"from this session: run dunning where the keyring is unlocked, or set {BACKEND_ENV}=file and "
            "re-authorise each connection with dunning setup --reconnect NAME"
        )
    return KeyringTokenStore(state, backend=found, lock_timeout=lock_timeout)


def usable_keyring(backend: Any = None) -> Any | None:
    """The OS keyring backend to keep the key in, or None when only a fail, null or plaintext backend is on offer
    (or the `keyring` extra is not installed)."""
    if backend is None:
        try:
            import keyring
        except ImportError:
            return None
        try:
            backend = keyring.get_keyring()
        except Exception:
            return None
    candidates = getattr(backend, "backends", []) if _module(backend).startswith("keyring.backends.chainer") else [backend]
    for candidate in candidates:
        if _is_secure(candidate) and _answers(candidate):
            return candidate
    return None


# --- helpers ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Marker:
    started_at: datetime
    fingerprint: str
    attempts: int


_INSECURE_KEYRINGS = ("keyring.backends.fail", "keyring.backends.null", "keyring.backends.chainer", "keyrings.alt")
"""No storage at all, or (keyrings.alt) plaintext files and a password prompt a scheduled job cannot answer."""


def _module(backend: Any) -> str:
    return type(backend).__module__


def _is_secure(backend: Any) -> bool:
    if _module(backend).startswith(_INSECURE_KEYRINGS):
        return False
    try:
        return float(backend.priority) > 0
    except Exception:  # a backend's priority probe may raise when its service is absent
        return False


def _answers(backend: Any) -> bool:
    try:
        backend.get_password(KEYRING_SERVICE, "availability probe")
    except Exception:
        return False
    return True


def _recorded_backend(path: Path) -> Backend | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return _backend_named(text, str(path))


def _backend_named(name: str | None, source: str) -> Backend | None:
    if not name:
        return None
    if name not in ("file", "keyring"):
        raise TokenStoreError(f"{source} says {name!r}: the token store is either 'file' or 'keyring'")
    return name  # type: ignore[return-value]


def _file_stem(connection: str) -> str:
    """Plain names stay readable; anything else is percent-encoded, which keeps distinct names distinct."""
    if not connection:
        raise ValueError("a connection name is empty")
    return quote(connection, safe="-_").replace(".", "%2E")


def _fingerprint(token: Token) -> str:
    refresh = token.refresh_token.get_secret_value() if token.refresh_token else ""
    return hashlib.sha256(refresh.encode()).hexdigest()


def _fernet(key: bytes | str, label: str) -> Fernet:
    try:
        return Fernet(key.strip())
    except (ValueError, TypeError):
        raise TokenStoreError(
            f"{label} is not a valid token key: it must be 32 url-safe base64-encoded bytes, as printed by "
            "python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\""
        ) from None


def _token_from_json(plain: bytes, connection: str) -> Token:
    # Never let a parse or validation error print: its text would quote the token.
    try:
        payload = json.loads(plain)
        owner, fields = payload["connection"], payload["token"]
        token = Token.model_validate(fields)
    except (ValueError, KeyError, TypeError, ValidationError):
        raise TokenStoreError(
            f"the stored token is damaged; re-run dunning setup --reconnect {connection}", connection=connection
        ) from None
    if owner != connection:
        raise TokenStoreError(
            f"the token file holds the token of connection {owner!r}; re-run dunning setup --reconnect {connection}",
            connection=connection,
        )
    return token


def _key_from_file(path: Path, *, create: bool) -> bytes | None:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        if not create:
            return None
        _create_private(path, Fernet.generate_key() + b"\n")
        key = path.read_bytes()
        log.info("created the token key file %s (keep it with the state directory, or set %s)", path, KEY_ENV)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("the token key file %s can be read by other users; run: chmod 600 %s", path, path)
    return key


def _private_dir(path: Path) -> None:
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.name == "posix":
            os.chmod(path, 0o700)


def _write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably, 0600 in a 0700 folder."""
    _private_dir(path.parent)
    write_atomically(path, data, mode=0o600)


def _create_private(path: Path, data: bytes) -> None:
    _private_dir(path.parent)
    create_once(path, data, mode=0o600)


class MemoryTokenStore:
    """Tokens held by this process only, never on disk.

    For the wizard's tenant listing (before anything may be persisted), the demo, tests and benchmarks. `saved`
    records every save in order, so a caller can tell what would have been persisted.
    """

    def __init__(self, tokens: Mapping[str, Token] | None = None) -> None:
        self.tokens: dict[str, Token] = dict(tokens or {})
        self.saved: list[tuple[str, Token]] = []
        self._lock = threading.Lock()

    def load(self, connection: str) -> Token | None:
        return self.tokens.get(connection)

    def save(self, connection: str, token: Token) -> None:
        self.tokens[connection] = token
        self.saved.append((connection, token))

    @contextlib.contextmanager
    def lock(self, connection: str) -> Iterator[None]:
        with self._lock:
            yield

    def delete(self, connection: str) -> None:
        self.tokens.pop(connection, None)

    # The refresh journal explains a crash on the next run; nothing here outlives this process, so it keeps none.

    def begin_refresh(self, connection: str, token: Token, *, now: datetime) -> None:
        pass

    def finish_refresh(self, connection: str, new_token: Token) -> None:
        pass

    def cancel_refresh(self, connection: str) -> None:
        pass

    def interrupted_refresh(self, connection: str, token: Token | None = None) -> datetime | None:
        return None

    def refresh_refused(self, connection: str, error: AuthorizationExpired) -> AuthorizationExpired:
        return error
