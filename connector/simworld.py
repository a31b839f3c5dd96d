"""A world of platform simulators on one virtual clock: what `dunning demo`, the job's tests and the benchmarks
work against. Each connection gets its own simulator, seeded with its own book (`connector.demo_book`); every
platform is driven through the `Simulator` protocol and found by its entry point, never by name.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import tomlkit

from connector import plugins
from connector.demo_book import demo_book
from connector.sync import Connect
from providers.base import ConnectionSettings, Provider, Token, TokenStore
from providers.simkit import SeededBook, Simulator, VirtualClock

CLIENT_ID = "dunning-demo"
SECRET_ENV = "DUNNING_DEMO_CLIENT_SECRET"
SECRET = "demo-app-secret"
"""The demo app's client secret on every simulator: a fake platform's, and the demo's environment only."""
CREDITOR = {
    "name": "Dunning Demo B.V.", "address_lines": ["Keizersgracht 1"], "postal_code": "1015 CJ", "city": "Amsterdam",
    "country": "NL", "coc_number": "12345678", "vat_number": "NL004495445B01", "iban": "NL91ABNA0417164300",
    "email": "debiteuren@dunning-demo.example", "phone": "+31 20 123 4567",
}


@dataclass
class Place:
    """One connection of the world: its simulator, where its book landed, and (when served) its URL."""

    index: int
    platform: str
    connection: str
    simulator: Simulator
    seeded: SeededBook
    base_url: str | None = None
    redirect_uri: str = ""

    def settings(self) -> dict[str, Any]:
        """The `[[connections]]` table of this place (what `dunning setup` would write)."""
        urls = self.simulator.connection_urls(self.base_url or "http://127.0.0.1:9")
        return {"name": self.connection, "provider": self.platform, "tenant": self.seeded.tenant,
                "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV, "redirect_uri": self.redirect_uri} | urls


@dataclass
class World:
    clock: VirtualClock
    places: list[Place] = field(default_factory=list)

    @classmethod
    def build(cls, start: datetime, *, connections: int | None = None, platforms: Sequence[str] | None = None,
              clock: VirtualClock | None = None) -> World:
        """`connections` simulators (default: one per installed platform), platforms taken in turn."""
        names = list(platforms or plugins.names(plugins.SIMULATORS))
        world = cls(clock or VirtualClock(start))
        for index in range(connections if connections is not None else len(names)):
            platform = names[index % len(names)]
            simulator: Simulator = plugins.simulator_class(platform).empty(world.clock)
            seeded = simulator.seed(demo_book(index, start.date()))
            scheme = "https" if simulator.https_redirect_only else "http"
            redirect = f"{scheme}://127.0.0.1:{_free_port()}/callback"
            simulator.register_app(CLIENT_ID, SECRET, redirect)
            suffix = "" if index < len(names) else f"-{index // len(names) + 1}"
            world.places.append(Place(index, platform, f"demo-{platform}{suffix}", simulator, seeded,
                                      redirect_uri=redirect))
        return world

    @property
    def today(self) -> date:
        return self.clock.now().date()

    def place(self, connection: str) -> Place:
        return next(p for p in self.places if p.connection == connection)

    def advance_to(self, moment: datetime) -> None:
        for place in self.places:
            place.simulator.advance_to(moment)

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Every simulator on its own 127.0.0.1 port for the block."""
        with ExitStack() as stack:
            for place in self.places:
                place.base_url = stack.enter_context(place.simulator.serving())
            try:
                yield
            finally:
                for place in self.places:
                    place.base_url = None

    # -- connecting -------------------------------------------------------------------------------------------

    def grant(self, tokens: TokenStore) -> None:
        """Tokens as if each connection's user had consented (tests and benchmarks; the demo uses the wizard)."""
        for place in self.places:
            provider_class = plugins.provider_class(place.platform)
            fields = {k: v for k, v in place.settings().items() if k != "client_secret_env"}
            settings = ConnectionSettings(**fields, client_secret=SECRET)
            scope = " ".join(provider_class.oauth(settings).scopes) or None
            answer = place.simulator.consent_tokens(CLIENT_ID, scope=scope, tenant=place.seeded.tenant)
            tokens.save(place.connection, Token.from_response(answer, now=self.clock.now()))

    def connect(self, tokens: TokenStore, *, in_process: bool = True,
                wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport] | None = None) -> Connect:
        """Adapters on the world's clock: in process through each simulator's transport, or over loopback HTTP.

        `wrap(transport) -> transport` decorates each transport (tests add latency with it)."""

        loopback = _Kept(httpx.HTTPTransport())  # one pool for every adapter: no TLS context built per client

        def connect(settings: ConnectionSettings) -> Provider:
            place = self.place(settings.name)
            transport: httpx.BaseTransport = place.simulator.transport() if in_process else loopback
            if wrap is not None:
                transport = wrap(transport)
            return plugins.provider_class(settings.provider).connect(
                settings, tokens=tokens, transport=transport, clock=self.clock.time, sleep=self.clock.sleep)

        return connect

    def write_config(self, path: Path, *, store_url: str = "sqlite:///dunning.sqlite") -> Path:
        """A config naming every connection of the world (the wizard writes the same tables in the demo)."""
        document = tomlkit.document()
        document["store"] = {"url": store_url}
        document["creditor"] = CREDITOR
        connections = tomlkit.aot()
        for place in self.places:
            connections.append(tomlkit.item(place.settings()))
        document["connections"] = connections
        path.write_text(tomlkit.dumps(document))
        return path

    def sent_mail(self, connection: str | None = None) -> int:
        return sum(len(p.simulator.sent_mail()) for p in self.places if connection in (None, p.connection))


class _Kept(httpx.BaseTransport):
    """A transport shared by many clients: closing one client leaves it open for the others."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)

    def close(self) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def next_morning(moment: datetime) -> datetime:
    """07:00 UTC of the day after `moment`: when the scheduled job runs."""
    return datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), moment.tzinfo).replace(hour=7)
