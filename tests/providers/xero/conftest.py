"""A seeded Xero simulator on a virtual clock and an adapter connected to it in-process (no sockets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest

from providers.base import ConnectionSettings, Token
from providers.simkit import VirtualClock
from providers.tokens import MemoryTokenStore
from providers.xero import XeroProvider
from providers.xero.simulator import XeroSimulator

SIM = "http://xero.sim"




def settings_for(sim: XeroSimulator, **changes: object) -> ConnectionSettings:
    values: dict[str, object] = {
        "name": "acme-xero", "provider": "xero", "tenant": sim.org.tenant_id, "client_id": "dunning-app",
        "client_secret": "app-secret", "api_url": SIM, "authorize_url": f"{SIM}/identity/connect/authorize",
        "token_url": f"{SIM}/connect/token",
    }
    return ConnectionSettings.model_validate(values | changes)


def connect(sim: XeroSimulator, tokens: MemoryTokenStore | None = None, *,
            transport: httpx.BaseTransport | None = None, **changes: object) -> XeroProvider:
    """An adapter on the simulator, authorised as if the user had consented (all organisations)."""
    tokens = tokens or MemoryTokenStore()
    settings = settings_for(sim, **changes)
    if settings.name not in tokens.tokens:
        tokens.save(settings.name, Token.from_response(sim.grant(), now=sim.clock.now()))
    return XeroProvider.connect(settings, tokens=tokens, transport=transport or sim.transport(),
                                clock=sim.clock.time, sleep=sim.clock.sleep)


@pytest.fixture(scope="session")
def xero_kit() -> SimpleNamespace:
    """The helpers above, for module-scoped fixtures (test modules cannot import a conftest)."""
    return SimpleNamespace(MemoryTokenStore=MemoryTokenStore, connect=connect, settings_for=settings_for)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
def sim(clock: VirtualClock) -> XeroSimulator:
    simulator = XeroSimulator(clock)
    simulator.register_app()
    simulator.seed_book(seed=7, open_invoices=120, contacts=40, closed_invoices=15, bills=4, drafts=3)
    return simulator


@pytest.fixture
def tokens() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
def xero(sim: XeroSimulator, tokens: MemoryTokenStore) -> Iterator[XeroProvider]:
    provider = connect(sim, tokens)
    yield provider
    provider.close()


@pytest.fixture
def connect_xero() -> Callable[..., XeroProvider]:
    """`connect_xero(sim, tokens, **settings)`: another adapter (other options, another simulator)."""
    return connect
