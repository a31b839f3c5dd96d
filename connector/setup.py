"""`dunning setup`: the OAuth wizard that connects a platform in two minutes, safely.

The flow: listen on the redirect URI's loopback port (TLS with a throw-away self-signed certificate for an https
redirect, as Exact requires), send the user to the platform's consent page with `state` and PKCE, take the code
from the callback (or from the redirected URL pasted on stdin), check `state`, exchange the code (authlib), ask the
adapter what the token reaches, let the user pick, then store the tokens and only then write the `[[connections]]`
blocks (tomlkit, comments and layout kept, atomic replace). Any failure leaves the token store and the config file
as they were.

One authorisation can reach several tenants. Refresh tokens rotate (Exact kills the old one at once), so connections
set up together must share ONE stored token: the first is stored under its own name, the others carry
`token_key = "<that name>"` in their block (see `token_key_of`).
"""

from __future__ import annotations

import datetime as dt
import errno
import html
import ipaddress
import os
import queue
import re
import secrets
import select
import socket
import ssl
import sys
import tempfile
import threading
import time
import webbrowser
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import tomlkit
from pydantic import SecretStr, ValidationError
from tomlkit.items import AoT, Table
from tomlkit.toml_document import TOMLDocument

from connector import plugins
from connector.config import ConnectionConfig, token_sharing_problems
from providers.base import ConnectionSettings, OAuthEndpoints, Provider, Tenant, Token, TokenStore
from providers.errors import DunningError, redact
from providers.http import authlib_client
from providers.tokens import MemoryTokenStore

DEFAULT_REDIRECT_URI = "http://localhost:8765/callback"
DEFAULT_TIMEOUT = 300.0

Ask = Callable[[str, str | None], str]
"""Asks the user one question (with an optional default) and returns the answer; None means "never ask"."""


class SetupFailed(DunningError):
    """The wizard stopped; nothing was written. `exit_code` follows cli.md (2: usage/config, 1: platform side)."""

    def __init__(self, message: str, *, connection: str | None = None, exit_code: int = 1) -> None:
        self.exit_code = exit_code
        super().__init__(message, connection=connection)


def _usage(message: str, connection: str | None = None) -> SetupFailed:
    return SetupFailed(message, connection=connection, exit_code=2)


@dataclass(frozen=True)
class SetupOptions:
    """The `setup` flags (cli.md). Anything left None is asked for, or taken from the connection being reconnected."""

    provider: str | None = None
    name: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    redirect_uri: str | None = None
    tenants: tuple[str, ...] = ()
    all_tenants: bool = False
    api_url: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    no_browser: bool = False
    timeout: float = DEFAULT_TIMEOUT
    reconnect: str | None = None


@dataclass(frozen=True)
class SetupResult:
    connections: tuple[str, ...]
    """The connection names written (or re-authorised)."""
    tenants: tuple[Tenant, ...]
    token_key: str
    """The token store entry holding the tokens they share."""


# --- the config file ------------------------------------------------------------------------------------------------


def load_config_document(path: Path) -> TOMLDocument:
    if not path.exists():
        return tomlkit.document()
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except tomlkit.exceptions.TOMLKitError as exc:
        raise _usage(f"{path} is not valid TOML ({exc}); fix it and run setup again") from None


def connection_blocks(doc: TOMLDocument) -> list[Table]:
    blocks = doc.get("connections")
    return list(blocks) if isinstance(blocks, AoT | list) else []


def find_connection(doc: TOMLDocument, name: str) -> Table | None:
    return next((block for block in connection_blocks(doc) if block.get("name") == name), None)


def token_key_of(block: Mapping[str, Any]) -> str:
    """The token store entry a connection uses: its own name, or the connection it shares an authorisation with."""
    return str(block.get("token_key") or block["name"])


def write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step (temp file in the same directory, fsync, rename), keeping its permissions.

    A symlinked config (kept in a dotfiles folder, say) stays a link: the file it points at is replaced."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# --- finding the adapter ----------------------------------------------------------------------------------------------


def installed_providers() -> dict[str, Callable[[], type[Provider]]]:
    """Adapters by name from the `dunning.providers` entry points (loaded lazily: a broken plugin fails alone)."""
    return {name: partial(plugins.provider_class, name) for name in plugins.names(plugins.PROVIDERS)}


# --- the loopback callback listener -----------------------------------------------------------------------------------


def _self_signed_context(host: str) -> ssl.SSLContext:
    """A TLS context with a fresh self-signed certificate for the loopback host (the browser warns once)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        )
        context.load_cert_chain(cert_file, key_file)
    return context


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dunning Connector</title></head>
<body><h1 id="result">{title}</h1><p>{text}</p></body></html>"""


class _CallbackServer(ThreadingHTTPServer):
    daemon_threads = True
    callback_path: str
    expected_state: str
    received: queue.Queue[str]
    tls: ssl.SSLContext | None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:  # handshake in the request's thread, so one stalled browser cannot block the rest
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class _CallbackServer6(_CallbackServer):
    address_family = socket.AF_INET6


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:  # noqa: N802 (the http.server naming)
        parts = urlsplit(self.path)
        if parts.path != self.server.callback_path:
            self._answer(404, "Not found", "This address is only used to receive the platform's answer.")
            return
        scheme = "https" if self.server.tls else "http"
        self.server.received.put(f"{scheme}://{self.headers.get('Host', 'localhost')}{self.path}")
        try:
            read_callback(self.path, self.server.expected_state)
        except SetupFailed as problem:
            self._answer(400, "Not connected", f"{problem} Nothing was changed; see the terminal.")
            return
        self._answer(200, "Authorisation received",
                     "You can close this window; the terminal finishes setting up the connection.")

    def _answer(self, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()  # text may quote the URL
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # request lines carry the authorization code


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def callback_listener(redirect_uri: str, expected_state: str) -> Iterator[queue.Queue[str]]:
    """Listen on the loopback at the redirect URI's port; yields the queue the callback URLs arrive on.

    `localhost` is served on 127.0.0.1 (browsers fall back to it from ::1), a loopback address such as `[::1]` on
    itself. A redirect URI that does not point at this machine gets no listener: then only pasting the URL works.
    """
    received: queue.Queue[str] = queue.Queue()
    parts = urlsplit(redirect_uri)
    if not _is_loopback(parts.hostname or ""):
        yield received
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = "127.0.0.1" if parts.hostname in (None, "localhost") else str(parts.hostname)
    try:
        server = (_CallbackServer6 if ":" in host else _CallbackServer)((host, port), _CallbackHandler)
    except OSError as exc:
        why = "another program uses that port. Stop it, or" if exc.errno == errno.EADDRINUSE else "so"
        raise _usage(
            f"cannot listen on {host}:{port} for the platform's answer ({exc.strerror or exc}): {why} register "
            f"another redirect URI with the platform and pass --redirect-uri (pasting the redirected URL also works "
            f"with --no-browser and a redirect URI on another host)"
        ) from None
    server.callback_path = parts.path or "/"
    server.expected_state = expected_state
    server.received = received
    server.tls = _self_signed_context(parts.hostname or "localhost") if parts.scheme == "https" else None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="dunning-setup-callback", daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def read_callback(url: str, expected_state: str) -> str:
    """The authorization code from a callback URL, after checking `state` and the platform's error."""
    query = parse_qs(urlsplit(url).query)
    state = query.get("state", [None])[0]
    if state is None or not secrets.compare_digest(state.encode(), expected_state.encode()):
        raise SetupFailed(
            "the answer did not carry this setup's state value, so it was rejected as a possible forgery "
            "(a link from someone else, or an answer to an older setup); run dunning setup again"
        )
    error = query.get("error", [None])[0]
    if error == "access_denied":
        raise SetupFailed("access was denied on the platform's consent page; nothing was connected")
    if error:
        description = query.get("error_description", [""])[0]
        raise SetupFailed(f"the platform refused the authorisation ({error}{': ' + description if description else ''})")
    code = query.get("code", [None])[0]
    if not code:
        raise SetupFailed("the platform's answer carried no authorisation code; run dunning setup again")
    return code  # parse_qs already URL-decoded it (Exact's codes contain "!" sent as %21)


def _read_pasted_lines(stream: IO[str], into: queue.Queue[str], stop: threading.Event | None = None) -> None:
    """Lines from `stream` until EOF or `stop`; a real file is polled, so later prompts get their own input."""
    try:
        fileno: int | None = stream.fileno()
        select.select([fileno], [], [], 0)
    except (OSError, ValueError):  # no real file, or a platform that cannot poll it (Windows consoles)
        fileno = None
    while stop is None or not stop.is_set():
        if fileno is not None and not select.select([fileno], [], [], 0.1)[0]:
            continue
        line = stream.readline()
        if not line:
            return
        if line.strip():
            into.put(line.strip())


def wait_for_callback(received: queue.Queue[str], *, timeout: float, redirect_uri: str,
                      paste: IO[str] | None, say: Callable[[str], None]) -> str:
    """The first callback URL from the loopback listener or a pasted line, within `timeout` seconds."""
    stop = threading.Event()
    if paste is not None:
        threading.Thread(target=_read_pasted_lines, args=(paste, received, stop), name="dunning-setup-paste",
                         daemon=True).start()
    try:
        return _first_callback(received, timeout=timeout, redirect_uri=redirect_uri, say=say)
    finally:
        stop.set()


def _first_callback(received: queue.Queue[str], *, timeout: float, redirect_uri: str,
                    say: Callable[[str], None]) -> str:
    deadline = time.monotonic() + timeout
    expected = urlsplit(redirect_uri)
    while (left := deadline - time.monotonic()) > 0:
        try:
            url = received.get(timeout=left)
        except queue.Empty:
            break
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.path == expected.path and ("code" in query or "error" in query):
            return url
        say("That is not the address the platform redirected to; paste the full URL from the browser's address bar.")
    raise SetupFailed(
        f"no answer from the platform within {timeout:g} seconds; nothing was connected. Run dunning setup again "
        f"(--timeout SECONDS waits longer; with --no-browser you can paste the redirected URL)"
    )


# --- the OAuth exchange -------------------------------------------------------------------------------------------


def _oauth_client(settings: ConnectionSettings, endpoints: OAuthEndpoints,
                  transport: httpx.BaseTransport | None) -> Any:
    OAuth2Client, _ = authlib_client()
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    return OAuth2Client(
        client_id=settings.client_id,
        client_secret=secret,
        scope=" ".join(endpoints.scopes) or None,
        redirect_uri=settings.redirect_uri,
        token_endpoint_auth_method=endpoints.token_auth if secret else "none",
        code_challenge_method="S256" if endpoints.pkce else None,
        transport=transport,
        timeout=30.0,
    )


def authorization_url(settings: ConnectionSettings, endpoints: OAuthEndpoints, *, state: str,
                      code_verifier: str | None) -> str:
    with _oauth_client(settings, endpoints, None) as client:
        url, _ = client.create_authorization_url(
            endpoints.authorize_url, state=state, code_verifier=code_verifier, **dict(endpoints.extra_authorize_params)
        )
    return str(url)


def exchange_code(settings: ConnectionSettings, endpoints: OAuthEndpoints, *, code: str, code_verifier: str | None,
                  transport: httpx.BaseTransport | None, now: dt.datetime) -> Token:
    _, OAuthError = authlib_client()
    try:
        with _oauth_client(settings, endpoints, transport) as client:
            extra = {"code_verifier": code_verifier} if code_verifier else {}
            payload = dict(client.fetch_token(endpoints.token_url, code=code, **extra))
        return Token.from_response(payload, now=now)
    except OAuthError as exc:
        hint = " (check the client id and the secret in the environment variable)" if exc.error == "invalid_client" \
            else " (the code may have expired: run dunning setup again and finish within a few minutes)" \
            if exc.error == "invalid_grant" else ""
        detail = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
        raise SetupFailed(f"the platform refused to exchange the authorisation code ({redact(detail)}){hint}",
                          connection=settings.name) from None
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise SetupFailed(f"exchanging the authorisation code failed ({type(exc).__name__}); try again",
                          connection=settings.name) from None


# --- the wizard ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answers:
    provider: str
    name: str
    client_id: str
    client_secret_env: str | None
    redirect_uri: str
    api_url: str | None
    authorize_url: str | None
    token_url: str | None
    scopes: tuple[str, ...] | None = None
    """Kept from an existing block (e.g. a Xero app from before March 2026), like `options`."""
    options: Mapping[str, Any] | None = None


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _stdout(text: str) -> None:
    print(text, file=sys.stdout, flush=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class SetupWizard:
    """One run of `dunning setup`. Every dependency with side effects is injectable for tests."""

    def __init__(
        self,
        options: SetupOptions,
        *,
        config_path: Path,
        tokens: TokenStore | Callable[[], TokenStore],
        ask: Ask | None = None,
        say: Callable[[str], None] = _stderr,
        show_url: Callable[[str], None] = _stdout,
        open_browser: Callable[[str], bool] = webbrowser.open,
        paste: IO[str] | None = None,
        providers: Mapping[str, Callable[[], type[Provider]]] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.options = options
        self.config_path = config_path
        self._tokens = tokens
        """The store, or a function opening it: opened only once there is a token to save, so a setup that stops
        early creates nothing (no state directory, no keyring prompt)."""
        self.ask = ask
        self.say = say
        self.show_url = show_url
        self.open_browser = open_browser
        self.paste = paste
        self.providers = dict(providers) if providers is not None else installed_providers()
        self.transport = transport
        self.clock = clock
        self.environ = environ

    def run(self) -> SetupResult:
        doc = load_config_document(self.config_path)
        reconnecting = find_connection(doc, self.options.reconnect) if self.options.reconnect else None
        if self.options.reconnect and reconnecting is None:
            raise _usage(f"there is no connection named {self.options.reconnect!r} in {self.config_path}")
        if self.options.reconnect and (self.options.name or self.options.tenants or self.options.all_tenants):
            raise _usage("--reconnect renews a connection as configured: --name, --tenant and --all-tenants do not "
                         "apply (to connect another administration, run setup without --reconnect)")
        answers = self._answers(doc, reconnecting)
        _check_answers(answers)
        provider_class = self._provider_class(answers.provider)
        settings = self._settings(answers)
        endpoints = provider_class.oauth(settings)
        if settings.client_secret is None and not endpoints.pkce:
            raise _usage(f"--client-secret-env is required: {answers.provider} apps prove who they are with a client "
                         f"secret (only apps using PKCE can do without)", answers.name)

        token = self._authorise(settings, endpoints)
        if token.refresh_token is None and token.expires_at is not None:
            raise SetupFailed(f"the platform gave no refresh token, so the connection would stop working when the "
                              f"access token expires ({token.expires_at:%H:%M} UTC); nothing was written. Check the "
                              f"scopes (Xero needs offline_access) and run setup again", connection=answers.name)
        reachable, token = self._reachable_tenants(provider_class, settings, token)
        chosen = None if reconnecting is not None else self._choose_tenants(reachable, answers.name)
        doc = load_config_document(self.config_path)  # again: the user may have edited it while we waited
        if chosen is None:
            reconnecting = find_connection(doc, str(reconnecting["name"])) if reconnecting is not None else None
            if reconnecting is None:
                raise _usage(f"the connection {self.options.reconnect!r} was removed from {self.config_path} "
                             f"during setup; nothing was written")
            return self._finish_reconnect(doc, reconnecting, answers, reachable, token)
        return self._finish_new(doc, answers, chosen, reachable, token)

    # -- questions ----------------------------------------------------------------------------------------------

    def _value(self, flag: str, given: str | None, current: Any, question: str, default: str | None) -> str:
        if given:
            return given
        if current:
            return str(current)
        if self.ask is None:
            if default is not None:
                return default
            raise _usage(f"{flag} is required when setup cannot ask (no terminal)")
        answer = self.ask(question, default).strip()
        if not answer:
            raise _usage(f"no answer given for {flag}")
        return answer

    def _answers(self, doc: TOMLDocument, existing: Table | None) -> _Answers:
        o = self.options
        current: Mapping[str, Any] = existing or {}
        names = sorted(self.providers)
        provider = self._value("--provider", o.provider, current.get("provider"),
                               f"Platform ({' / '.join(names)})", None).lower()
        if provider not in self.providers:
            raise _usage(f"unknown platform {provider!r}; installed: {', '.join(names) or 'none'}")
        name = str(existing["name"]) if existing is not None else self._value(
            "--name", o.name, None, "Name for this connection", provider)
        clash = find_connection(doc, name) if existing is None else None
        if clash is not None and clash.get("provider") != provider:
            raise _usage(f"a connection named {name!r} already exists for {clash.get('provider')}; choose another "
                         f"--name, or run dunning setup --reconnect {name}")
        kept: Mapping[str, Any] = existing or clash or {}
        client_id = self._value("--client-id", o.client_id, current.get("client_id"),
                                "Client id of your app (from the platform's developer portal)", None)
        secret_env = o.client_secret_env or current.get("client_secret_env")
        if not secret_env and self.ask is not None:
            secret_env = self.ask("Environment variable holding the client secret (empty: app without secret)",
                                  f"{_slug(provider).upper().replace('-', '_')}_CLIENT_SECRET").strip() or None
        redirect_uri = self._value("--redirect-uri", o.redirect_uri, current.get("redirect_uri"),
                                   "Redirect URI registered with the app", DEFAULT_REDIRECT_URI)
        return _Answers(
            provider=provider,
            name=name,
            client_id=client_id,
            client_secret_env=str(secret_env) if secret_env else None,
            redirect_uri=redirect_uri,
            api_url=o.api_url or current.get("api_url"),
            authorize_url=o.authorize_url or current.get("authorize_url"),
            token_url=o.token_url or current.get("token_url"),
            scopes=tuple(kept["scopes"]) if kept.get("scopes") else None,
            options=dict(kept.get("options") or {}),
        )

    def _provider_class(self, name: str) -> type[Provider]:
        try:
            return self.providers[name]()
        except DunningError as exc:
            raise _usage(str(exc)) from None
        except Exception as exc:  # noqa: BLE001  (a plugin that fails to import must say so, not crash the wizard)
            raise _usage(f"the {name} adapter could not be loaded ({type(exc).__name__}: {exc})") from None

    def _settings(self, answers: _Answers) -> ConnectionSettings:
        secret = None
        if answers.client_secret_env:
            value = self.environ.get(answers.client_secret_env)
            if not value:
                # The variable's name ends the clause: `redact` would take a word after "..._CLIENT_SECRET" for
                # the secret itself and star it out.
                raise _usage(f"the app's client secret is not in the environment: set {answers.client_secret_env}, "
                             f"then run setup again", answers.name)
            secret = SecretStr(value)
        try:
            return ConnectionSettings(
                name=answers.name, provider=answers.provider, client_id=answers.client_id, client_secret=secret,
                redirect_uri=answers.redirect_uri, api_url=answers.api_url, authorize_url=answers.authorize_url,
                token_url=answers.token_url, scopes=answers.scopes, options=dict(answers.options or {}),
            )
        except ValidationError as exc:
            raise _usage(f"invalid connection settings: {exc.errors()[0]['msg']}", answers.name) from None

    # -- authorisation ------------------------------------------------------------------------------------------

    def _authorise(self, settings: ConnectionSettings, endpoints: OAuthEndpoints) -> Token:
        redirect = urlsplit(settings.redirect_uri)
        if redirect.scheme not in ("http", "https") or not redirect.hostname:
            raise _usage(f"the redirect URI {settings.redirect_uri!r} is not an http(s) URL", settings.name)
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(64) if endpoints.pkce else None
        url = authorization_url(settings, endpoints, state=state, code_verifier=verifier)
        with callback_listener(settings.redirect_uri, state) as received:
            if redirect.scheme == "https" and _is_loopback(redirect.hostname or ""):
                self.say(f"The browser will warn about the certificate of {redirect.hostname}:{redirect.port or 443}: "
                         f"it is this wizard's own, made for this setup only; accept it to continue.")
            if self.options.no_browser:
                self.say("Open this address in a browser and allow access; then wait here, or paste the address "
                         "the browser was sent to:")
                self.show_url(url)
            else:
                self.say("Opening your browser to allow access. If it does not open, visit:")
                self.say(url)
                if not self.open_browser(url):
                    self.say("No browser could be opened here: open the address above yourself; "
                             + ("then wait, or paste here the address the browser was sent to." if self.paste
                                else "to paste the address the browser was sent to, run setup with --no-browser."))
            callback = wait_for_callback(received, timeout=self.options.timeout, redirect_uri=settings.redirect_uri,
                                         paste=self.paste, say=self.say)
        code = read_callback(callback, state)
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return exchange_code(settings, endpoints, code=code, code_verifier=verifier, transport=self.transport,
                             now=now)

    def _reachable_tenants(self, provider_class: type[Provider], settings: ConnectionSettings,
                           token: Token) -> tuple[list[Tenant], Token]:
        memory = MemoryTokenStore()  # holds the new token while the adapter lists tenants, before persisting
        memory.save(settings.name, token)
        try:
            provider = provider_class.connect(settings, tokens=memory, transport=self.transport, clock=self.clock)
            try:
                tenants = provider.list_tenants()
            finally:
                provider.close()
        except DunningError as exc:
            raise SetupFailed(f"could not list what the authorisation reaches: {exc}", connection=settings.name) \
                from None
        if not tenants:
            raise SetupFailed("the authorisation reaches no administration (no organisation/administration/division "
                              "was granted); run setup again and tick at least one on the consent page",
                              connection=settings.name)
        return tenants, memory.load(settings.name) or token  # listing may have refreshed the token

    def _choose_tenants(self, reachable: list[Tenant], name: str) -> list[Tenant]:
        o = self.options
        by_id = {t.id: t for t in reachable}
        listing = "; ".join(f"{t.id} ({t.name})" for t in reachable)
        if o.all_tenants:
            return reachable
        if o.tenants:
            unknown = [t for t in o.tenants if t not in by_id]
            if unknown:
                raise SetupFailed(f"--tenant {', '.join(unknown)} is not reachable with this authorisation; "
                                  f"reachable: {listing}", connection=name)
            return [by_id[t] for t in dict.fromkeys(o.tenants)]
        if len(reachable) == 1:
            return reachable
        if self.ask is None:
            raise SetupFailed(f"the authorisation reaches several administrations; pass --tenant ID (repeatable) or "
                              f"--all-tenants. Reachable: {listing}", connection=name, exit_code=2)
        for number, tenant in enumerate(reachable, 1):
            self.say(f"  {number}. {tenant.name} ({tenant.id}){' - ' + tenant.detail if tenant.detail else ''}")
        while True:
            answer = self.ask("Connect which? (numbers separated by commas, or 'all')", "1").strip().lower()
            if answer == "all":
                return reachable
            picks = [p.strip() for p in answer.split(",") if p.strip()]
            if picks and all(p.isdigit() and 1 <= int(p) <= len(reachable) for p in picks):
                return [reachable[int(p) - 1] for p in dict.fromkeys(picks)]
            self.say(f"Please answer with numbers from 1 to {len(reachable)}, or 'all'.")

    # -- writing ------------------------------------------------------------------------------------------------

    def _finish_reconnect(self, doc: TOMLDocument, block: Table, answers: _Answers, reachable: list[Tenant],
                          token: Token) -> SetupResult:
        tenant_id = str(block.get("tenant") or "")
        tenant = next((t for t in reachable if t.id == tenant_id), None)
        if tenant is None:
            raise SetupFailed(f"the new authorisation does not reach tenant {tenant_id} of this connection "
                              f"(it reaches: {', '.join(t.id for t in reachable)}); log in as a user with access "
                              f"to it and run setup again", connection=answers.name)
        key = token_key_of(block)
        sharing = [b for b in connection_blocks(doc) if token_key_of(b) == key]
        for shared in sharing:  # one token set, so one app: keep their settings alike
            _set_fields(shared, answers)
        self._persist(doc, key, token, reachable)
        by_id = {t.id: t for t in reachable}
        return SetupResult(tuple(str(b["name"]) for b in sharing),
                           tuple(by_id[str(b.get("tenant"))] for b in sharing), key)

    def _finish_new(self, doc: TOMLDocument, answers: _Answers, chosen: list[Tenant], reachable: list[Tenant],
                    token: Token) -> SetupResult:
        names = [answers.name] if len(chosen) == 1 else _names_for(answers.name, chosen)
        for new_name, tenant in zip(names, chosen, strict=True):
            block = find_connection(doc, new_name)
            if block is not None and block.get("provider") != answers.provider:
                raise _usage(f"a connection named {new_name!r} already exists for {block.get('provider')}; "
                             f"choose another --name")
            if block is not None and block.get("tenant") not in (None, "", tenant.id):
                # The store keeps each connection's history under its name: another tenant needs another name.
                raise _usage(f"the connection {new_name!r} is for tenant {block.get('tenant')}, not {tenant.id}; give "
                             f"this administration its own --name (or use --reconnect {new_name} to renew it)")
            if block is None:
                fresh = tomlkit.table()
                fresh["name"] = new_name
                fresh["provider"] = answers.provider
                fresh["tenant"] = tenant.id
                _connections(doc).append(fresh)
                block = find_connection(doc, new_name)
                assert block is not None
            elif block.get("tenant") != tenant.id:
                block["tenant"] = tenant.id
            _set_fields(block, answers)
            if new_name == names[0]:
                block.pop("token_key", None)
            else:
                block["token_key"] = names[0]
                block["token_key"].comment("shares the authorisation (tokens) of this connection")
        self._persist(doc, names[0], token, reachable)
        return SetupResult(tuple(names), tuple(chosen), names[0])

    def _persist(self, doc: TOMLDocument, key: str, token: Token, reachable: Sequence[Tenant]) -> None:
        """Tokens first, then the config file; if the file cannot be written, the token store is put back.

        Every connection that will use the token set stored under `key` must be reachable with it: replacing a
        shared authorisation with one that misses a tenant would break that connection without a word.
        """
        ids = {t.id for t in reachable}
        lost = [b for b in connection_blocks(doc) if token_key_of(b) == key and str(b.get("tenant") or "") not in ids]
        if lost:
            names = ", ".join(f"{b.get('name')} (tenant {b.get('tenant')})" for b in lost)
            raise SetupFailed(f"the new authorisation does not reach every connection sharing the tokens of {key}: "
                              f"not {names} (it reaches: {', '.join(sorted(ids))}). Log in as a user with access to "
                              f"all of them (and tick them on the consent page) and run setup again; nothing was "
                              f"changed", connection=key)
        for index, block in enumerate(connection_blocks(doc)):
            try:
                ConnectionConfig.model_validate(block.unwrap())
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in error["loc"])
                raise _usage(f"connections[{index}].{where}: {error['msg']}; nothing was written",
                             str(block.get("name"))) from None
        sharing_problems = token_sharing_problems([block.unwrap() for block in connection_blocks(doc)])
        if sharing_problems:
            raise _usage(f"{sharing_problems[0]}; nothing was written (choose another --name)")
        text = tomlkit.dumps(doc)
        tokens = self._tokens if hasattr(self._tokens, "save") else self._tokens()  # type: ignore[operator]
        with tokens.lock(key):
            previous = tokens.load(key)
            tokens.save(key, token)
            try:
                write_atomically(self.config_path, text)
            except OSError as exc:
                if previous is not None:
                    tokens.save(key, previous)
                else:
                    tokens.delete(key)
                raise SetupFailed(f"could not write {self.config_path} ({exc.strerror or exc}); nothing was changed",
                                  connection=key) from None


def _check_answers(answers: _Answers) -> None:
    """Refuse, before the browser opens, what the config file would refuse (a name with spaces, say)."""
    fields = {"name": answers.name, "client_secret_env": answers.client_secret_env,
              "redirect_uri": answers.redirect_uri, "api_url": answers.api_url,
              "authorize_url": answers.authorize_url, "token_url": answers.token_url}
    draft = {key: value for key, value in fields.items() if value is not None}
    draft |= {"provider": answers.provider, "tenant": "?", "client_id": answers.client_id}  # tenant: not known yet
    try:
        ConnectionConfig.model_validate(draft)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "name"
        why = _PATTERN_HELP.get(field, error["msg"]) if error["type"] == "string_pattern_mismatch" else error["msg"]
        shown = "" if field == "client_secret_env" else f" {fields.get(field)!r}"  # it may be the secret itself
        raise _usage(f"--{field.replace('_', '-')}{shown}: {why}", answers.name) from None


_PATTERN_HELP = {
    "name": "use letters, digits, '.', '_' and '-' only, starting with a letter or digit",
    "client_secret_env": "give the NAME of an environment variable (letters, digits and '_'), not the secret",
}


def _connections(doc: TOMLDocument) -> AoT:
    blocks = doc.get("connections")
    if isinstance(blocks, AoT):
        return blocks
    if blocks is not None:
        raise _usage("`connections` in the config file must be written as [[connections]] tables")
    aot = tomlkit.aot()
    doc.append("connections", aot)
    return aot


def _set_fields(block: Table, answers: _Answers) -> None:
    """Write only what changed, so the user's comments on untouched lines stay where they are."""
    wanted: dict[str, str | None] = {
        "provider": answers.provider,
        "client_id": answers.client_id,
        "client_secret_env": answers.client_secret_env,
        "redirect_uri": answers.redirect_uri,
        "api_url": answers.api_url,
        "authorize_url": answers.authorize_url,
        "token_url": answers.token_url,
    }
    for key, value in wanted.items():
        if value is None:
            continue
        if block.get(key) != value:
            block[key] = value


def _names_for(base: str, tenants: Sequence[Tenant]) -> list[str]:
    names: list[str] = []
    for tenant in tenants:
        candidate = f"{base}-{_slug(tenant.name) or _slug(tenant.id)}"
        while candidate in names:
            candidate = f"{candidate}-{_slug(tenant.id)}"
        names.append(candidate)
    return names


def run_setup(options: SetupOptions, *, config_path: Path, tokens: TokenStore | Callable[[], TokenStore],
              **hooks: Any) -> SetupResult:
    """Run the wizard; see `SetupWizard` for the injectable hooks."""
    return SetupWizard(options, config_path=config_path, tokens=tokens, **hooks).run()
