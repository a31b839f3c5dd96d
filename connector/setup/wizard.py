"""`dunning setup`: the OAuth wizard that connects a platform in two minutes, safely.

The flow: check the client secret's variable, ask what no flag gave, listen on the redirect URI's loopback port
(`connector.setup.loopback`), send the user to the platform's consent page with `state` and PKCE
(`connector.setup.oauth`), take the code, ask the adapter what the token reaches, let the user pick, then store the
tokens and only then write the `[[connections]]` blocks (`connector.setup.configfile`, atomic replace). Any failure
leaves the token store and the config file as they were.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sys
import time
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
import tomlkit
from pydantic import SecretStr, ValidationError
from tomlkit.items import Table
from tomlkit.toml_document import TOMLDocument

from connector import plugins
from connector.config import ConnectionConfig, token_sharing_problems
from connector.logs import error_line
from connector.setup.answers import (
    Answers,
    check_answers,
    looks_like_a_secret,
    names_for,
    register_hint,
    set_fields,
    slug,
)
from connector.setup.configfile import (
    connection_blocks,
    connections_table,
    find_connection,
    load_config_document,
    token_key_of,
)
from connector.setup.errors import SetupFailed, usage
from connector.setup.loopback import callback_listener, is_loopback, wait_for_code
from connector.setup.oauth import authorization_url, exchange_code
from providers.base import ConnectionSettings, OAuthEndpoints, Provider, Tenant, Token, TokenStore
from providers.errors import DunningError
from providers.files import write_atomically
from providers.tokens import MemoryTokenStore

DEFAULT_REDIRECT_URI = "http://localhost:8765/callback"
DEFAULT_HTTPS_REDIRECT_URI = "https://localhost:8765/callback"
"""For a platform that accepts only https redirects (Exact): the listener serves it with a self-signed certificate."""
DEFAULT_TIMEOUT = 300.0

Ask = Callable[[str, str | None], str]
"""Asks the user one question (with an optional default) and returns the answer; None means "never ask"."""


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
    allow_remote_redirect: bool = False
    """Accept a redirect URI that does not point at this machine (then someone else's server receives the code)."""


@dataclass(frozen=True)
class SetupResult:
    connections: tuple[str, ...]
    """The connection names written (or re-authorised)."""
    tenants: tuple[Tenant, ...]
    token_key: str
    """The token store entry holding the tokens they share."""


def _stderr(text: str) -> None:
    error_line(text, level="info")


def _stdout(text: str) -> None:
    print(text, file=sys.stdout, flush=True)


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
        self.providers = dict(providers) if providers is not None else plugins.provider_loaders()
        self.transport = transport
        self.clock = clock
        self.environ = environ

    def run(self) -> SetupResult:
        doc = load_config_document(self.config_path)
        reconnecting = find_connection(doc, self.options.reconnect) if self.options.reconnect else None
        if self.options.reconnect and reconnecting is None:
            raise usage(f"there is no connection named {self.options.reconnect!r} in {self.config_path}")
        if self.options.reconnect and (self.options.name or self.options.tenants or self.options.all_tenants):
            raise usage("--reconnect renews a connection as configured: --name, --tenant and --all-tenants do not "
                         "apply (to connect another administration, run setup without --reconnect)")
        answers = self._answers(doc, reconnecting)
        check_answers(answers)
        provider_class = self._provider_class(answers.provider)
        settings = self._settings(answers)
        endpoints = provider_class.oauth(settings)
        if settings.client_secret is None and not endpoints.pkce:
            raise usage(f"--client-secret-env is required: {answers.provider} apps prove who they are with a client "
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
                raise usage(f"the connection {self.options.reconnect!r} was removed from {self.config_path} "
                             f"during setup; nothing was written")
            return self._finish_reconnect(doc, reconnecting, answers, reachable, token)
        return self._finish_new(doc, answers, chosen, reachable, token)

    # -- questions ----------------------------------------------------------------------------------------------

    def _value(self, flag: str, given: str | None, current: Any, question: str, default: str | None, *,
               hint: str = "") -> str:
        if given:
            return given
        if current:
            return str(current)
        if self.ask is None:
            if default is not None:
                return default
            raise usage(f"{flag} is required when setup cannot ask (no terminal)" + (f". {hint}" if hint else ""))
        answer = self.ask(question, default).strip()
        if not answer:
            raise usage(f"no answer given for {flag}")
        return answer

    def _answers(self, doc: TOMLDocument, existing: Table | None) -> Answers:
        """What no flag gave is asked, in this order: platform, the client secret's variable (checked at once),
        name, redirect URI, client id. A run that names the platform with --provider (a script) or reconnects asks
        only for what has no default."""
        o = self.options
        current: Mapping[str, Any] = existing or {}
        if o.client_secret_env:  # before any question: a missing secret would waste every answer
            self._check_secret_env(o.client_secret_env, o.name or o.reconnect)
        provider = self._platform(o.provider or current.get("provider"))
        scripted = o.provider is not None or existing is not None
        secret_env = o.client_secret_env or current.get("client_secret_env")
        if not secret_env and self.ask is not None and not scripted:
            secret_env = self.ask("Environment variable holding the client secret (empty: app without secret)",
                                  f"{slug(provider).upper().replace('-', '_')}_CLIENT_SECRET").strip() or None
            if secret_env:
                self._check_secret_env(secret_env, o.name)
        if existing is not None:
            name = str(existing["name"])
        elif o.name or scripted:
            name = o.name or provider
        else:
            name = self._value("--name", None, None, "Name for this connection", provider)
        clash = find_connection(doc, name) if existing is None else None
        if clash is not None and clash.get("provider") != provider:
            raise usage(f"a connection named {name!r} already exists for {clash.get('provider')}; choose another "
                         f"--name, or run dunning setup --reconnect {name}")
        kept: Mapping[str, Any] = existing or clash or {}
        redirect_uri = o.redirect_uri or current.get("redirect_uri")
        if not redirect_uri:
            https = self._provider_class(provider).https_redirect
            default = DEFAULT_HTTPS_REDIRECT_URI if https else DEFAULT_REDIRECT_URI
            redirect_uri = default if scripted else self._value(
                "--redirect-uri", None, None, "Redirect URI registered with the app", default)
        portal = register_hint(provider, redirect_uri)
        if not (o.client_id or current.get("client_id")) and self.ask is not None:
            self.say(portal)
        client_id = self._value("--client-id", o.client_id, current.get("client_id"),
                                "Client id of your app (from the platform's developer portal)", None, hint=portal)
        return Answers(
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

    def _platform(self, given: str | None) -> str:
        """The platform from the flag (an unknown one: usage error) or asked until it is one that is installed."""
        names = sorted(self.providers)
        known = f"installed: {', '.join(names) or 'none'}"
        if given:
            if given.lower() not in self.providers:
                raise usage(f"unknown platform {given!r}; {known}")
            return given.lower()
        while True:
            answer = self._value("--provider", None, None, f"Platform ({' / '.join(names)})", None).lower()
            if answer in self.providers:
                return answer
            self.say(f"There is no platform {answer!r} here; {known}.")

    def _check_secret_env(self, variable: str, name: str | None) -> None:
        """The client secret's variable names a variable that is set; a value that looks like the secret itself is
        refused without showing any of it."""
        if looks_like_a_secret(variable):
            raise usage("--client-secret-env: that looks like the client secret itself, not the NAME of an "
                        "environment variable; it was not shown or saved anywhere. Put the secret in a variable "
                        "(e.g. export XERO_CLIENT_SECRET=...) and pass that variable's name", name)
        if not self.environ.get(variable):
            # The variable's name ends the clause: `redact` would take a word after "..._CLIENT_SECRET" for
            # the secret itself and star it out.
            raise usage(f"the app's client secret is not in the environment: set {variable}, then run setup again",
                        name)

    def _provider_class(self, name: str) -> type[Provider]:
        try:
            return self.providers[name]()
        except DunningError as exc:
            raise usage(str(exc)) from None
        except Exception as exc:  # noqa: BLE001  (a plugin that fails to import must say so, not crash the wizard)
            raise usage(f"the {name} adapter could not be loaded ({type(exc).__name__}: {exc})") from None

    def _settings(self, answers: Answers) -> ConnectionSettings:
        secret = None
        if answers.client_secret_env:
            self._check_secret_env(answers.client_secret_env, answers.name)  # e.g. kept from the connection's block
            secret = SecretStr(self.environ[answers.client_secret_env])
        try:
            return ConnectionSettings(
                name=answers.name, provider=answers.provider, client_id=answers.client_id, client_secret=secret,
                redirect_uri=answers.redirect_uri, api_url=answers.api_url, authorize_url=answers.authorize_url,
                token_url=answers.token_url, scopes=answers.scopes, options=dict(answers.options or {}),
            )
        except ValidationError as exc:
            raise usage(f"invalid connection settings: {exc.errors()[0]['msg']}", answers.name) from None

    # -- authorisation ------------------------------------------------------------------------------------------

    def _authorise(self, settings: ConnectionSettings, endpoints: OAuthEndpoints) -> Token:
        redirect = urlsplit(settings.redirect_uri)
        if redirect.scheme not in ("http", "https") or not redirect.hostname:
            raise usage(f"the redirect URI {settings.redirect_uri!r} is not an http(s) URL", settings.name)
        host = redirect.hostname
        if not is_loopback(host):
            if not self.options.allow_remote_redirect:
                raise usage(f"--redirect-uri {settings.redirect_uri}: it does not point at this machine, so the "
                            f"platform would hand the authorisation code to {host}; use a http://localhost:PORT/... "
                            f"redirect, or pass --allow-remote-redirect if {host} is yours", settings.name)
            self.say(f"The authorisation code will be sent to {host}, not to this machine: whoever runs {host} "
                     f"receives it. Paste here the address the browser ends on.")
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(64) if endpoints.pkce else None
        url = authorization_url(settings, endpoints, state=state, code_verifier=verifier)
        with callback_listener(settings.redirect_uri, state) as received:
            if redirect.scheme == "https" and is_loopback(redirect.hostname or ""):
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
            code = wait_for_code(received, expected_state=state, timeout=self.options.timeout,
                                 redirect_uri=settings.redirect_uri, paste=self.paste, say=self.say)
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
            raise SetupFailed(f"could not list what the authorisation reaches: {exc.message}",
                              connection=settings.name) from None
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

    def _finish_reconnect(self, doc: TOMLDocument, block: Table, answers: Answers, reachable: list[Tenant],
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
            set_fields(shared, answers)
        self._persist(doc, key, token, reachable)
        by_id = {t.id: t for t in reachable}
        return SetupResult(tuple(str(b["name"]) for b in sharing),
                           tuple(by_id[str(b.get("tenant"))] for b in sharing), key)

    def _finish_new(self, doc: TOMLDocument, answers: Answers, chosen: list[Tenant], reachable: list[Tenant],
                    token: Token) -> SetupResult:
        names = [answers.name] if len(chosen) == 1 else names_for(answers.name, chosen)
        for new_name, tenant in zip(names, chosen, strict=True):
            block = find_connection(doc, new_name)
            if block is not None and block.get("provider") != answers.provider:
                raise usage(f"a connection named {new_name!r} already exists for {block.get('provider')}; "
                             f"choose another --name")
            if block is not None and block.get("tenant") not in (None, "", tenant.id):
                # The store keeps each connection's history under its name: another tenant needs another name.
                raise usage(f"the connection {new_name!r} is for tenant {block.get('tenant')}, not {tenant.id}; give "
                             f"this administration its own --name (or use --reconnect {new_name} to renew it)")
            if block is None:
                fresh = tomlkit.table()
                fresh["name"] = new_name
                fresh["provider"] = answers.provider
                fresh["tenant"] = tenant.id
                connections_table(doc).append(fresh)
                block = find_connection(doc, new_name)
                assert block is not None
            elif block.get("tenant") != tenant.id:
                block["tenant"] = tenant.id
            set_fields(block, answers)
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
                raise usage(f"connections[{index}].{where}: {error['msg']}; nothing was written",
                             str(block.get("name"))) from None
        sharing_problems = token_sharing_problems([block.unwrap() for block in connection_blocks(doc)])
        if sharing_problems:
            raise usage(f"{sharing_problems[0]}; nothing was written (choose another --name)")
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


def run_setup(options: SetupOptions, *, config_path: Path, tokens: TokenStore | Callable[[], TokenStore],
              **hooks: Any) -> SetupResult:
    """Run the wizard; see `SetupWizard` for the injectable hooks."""
    return SetupWizard(options, config_path=config_path, tokens=tokens, **hooks).run()
