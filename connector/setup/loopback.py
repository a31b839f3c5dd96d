"""Receiving the platform's answer: a listener on the redirect URI's loopback port (TLS with a throw-away
self-signed certificate for an https redirect, as Exact requires) and, beside it, the redirected URL pasted on stdin.

Only an answer carrying this setup's `state` counts. Anything else that reaches the port — a stray page, a forged or
stale link — gets a page saying so, and the wizard keeps waiting for the real answer.
"""

from __future__ import annotations

import datetime as dt
import errno
import html
import ipaddress
import queue
import secrets
import select
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from connector.setup.errors import SetupFailed, usage


class WrongState(SetupFailed):
    """An answer that does not carry this setup's `state`: not ours, so it is refused and the wait goes on."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_callback(url: str, expected_state: str) -> str:
    """The authorization code from a callback URL, after checking `state` and the platform's error."""
    query = parse_qs(urlsplit(url).query)
    state = query.get("state", [None])[0]
    if state is None or not secrets.compare_digest(state.encode(), expected_state.encode()):
        raise WrongState(
            "the answer did not carry this setup's state value, so it was rejected as a possible forgery "
            "(a link from someone else, or an answer to an older setup)"
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


# --- the listener -------------------------------------------------------------------------------------------------


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
        try:
            read_callback(self.path, self.server.expected_state)
        except WrongState:
            self._answer(400, "Not accepted", "This answer does not belong to the setup running in the terminal "
                         "(it lacks that setup's state value), so it was ignored. The setup is still waiting for "
                         "the platform's answer.")
            return
        except SetupFailed as problem:
            self._queue()
            self._answer(400, "Not connected", f"{problem.message} Nothing was changed; see the terminal.")
            return
        self._queue()
        self._answer(200, "Authorisation received",
                     "You can close this window; the terminal finishes setting up the connection.")

    def _queue(self) -> None:
        scheme = "https" if self.server.tls else "http"
        self.server.received.put(f"{scheme}://{self.headers.get('Host', 'localhost')}{self.path}")

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


@contextmanager
def callback_listener(redirect_uri: str, expected_state: str) -> Iterator[queue.Queue[str]]:
    """Listen on the loopback at the redirect URI's port; yields the queue the callback URLs arrive on.

    `localhost` is served on 127.0.0.1 (browsers fall back to it from ::1), a loopback address such as `[::1]` on
    itself. A redirect URI that does not point at this machine gets no listener: then only pasting the URL works.
    """
    received: queue.Queue[str] = queue.Queue()
    parts = urlsplit(redirect_uri)
    if not is_loopback(parts.hostname or ""):
        yield received
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = "127.0.0.1" if parts.hostname in (None, "localhost") else str(parts.hostname)
    try:
        server = (_CallbackServer6 if ":" in host else _CallbackServer)((host, port), _CallbackHandler)
    except OSError as exc:
        why = "another program uses that port. Stop it, or" if exc.errno == errno.EADDRINUSE else "so"
        raise usage(
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


# --- waiting for the answer ---------------------------------------------------------------------------------------


def read_pasted_lines(stream: IO[str], into: queue.Queue[str], stop: threading.Event | None = None) -> None:
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


def wait_for_code(received: queue.Queue[str], *, expected_state: str, timeout: float, redirect_uri: str,
                  paste: IO[str] | None, say: Callable[[str], None]) -> str:
    """The authorization code of the first answer carrying this setup's `state`, from the loopback listener or a
    pasted line, within `timeout` seconds. An answer with a wrong or missing `state` is refused and the wait goes on;
    the platform's refusal (access denied) ends it."""
    stop = threading.Event()
    if paste is not None:
        threading.Thread(target=read_pasted_lines, args=(paste, received, stop), name="dunning-setup-paste",
                         daemon=True).start()
    try:
        return _first_code(received, expected_state=expected_state, timeout=timeout, redirect_uri=redirect_uri,
                           say=say)
    finally:
        stop.set()


def _first_code(received: queue.Queue[str], *, expected_state: str, timeout: float, redirect_uri: str,
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
        if parts.path != expected.path or not ("code" in query or "error" in query):
            say("That is not the address the platform redirected to; paste the full URL from the browser's "
                "address bar.")
            continue
        try:
            return read_callback(url, expected_state)
        except WrongState as refused:
            say(f"{refused.message}; still waiting for the platform's answer.")
    raise SetupFailed(
        f"no answer from the platform within {timeout:g} seconds; nothing was connected. Run dunning setup again "
        f"(--timeout SECONDS waits longer; with --no-browser you can paste the redirected URL)"
    )
