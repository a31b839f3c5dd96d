"""Fixtures for the Exact adapter: a seeded simulator on a virtual clock and an adapter connected to it."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from providers.base import ConnectionSettings, Token
from providers.exact import ExactProvider
from providers.exact.simulator import ExactSimulator
from providers.simkit import VirtualClock
from providers.tokens import MemoryTokenStore

REDIRECT = "https://localhost:8765/callback"
DIVISION = 123456


def settings(*, api_url: str | None = "https://start.exactonline.nl", tenant: str | None = str(DIVISION),
             **options: object) -> ConnectionSettings:
    return ConnectionSettings(name="bakkerij", provider="exact", tenant=tenant, client_id="app",
                              client_secret=SecretStr("s3cret"), redirect_uri=REDIRECT, api_url=api_url,
                              options=options)


def memory_tokens(token: Token) -> MemoryTokenStore:
    """The test connection's token, held in memory."""
    return MemoryTokenStore({"bakkerij": token})


def connect(sim: ExactSimulator, tokens: MemoryTokenStore | None = None, **kwargs: object) -> ExactProvider:
    """An adapter on the simulator's transport and virtual clock, with freshly granted tokens."""
    if tokens is None:
        if "app" not in sim.oauth.clients:
            sim.oauth.register_client("app", "s3cret", [REDIRECT])
        tokens = memory_tokens(Token.from_response(sim.oauth.grant_tokens("app"), now=sim.clock.now()))
    return ExactProvider.connect(settings(**kwargs), tokens=tokens, transport=sim.transport(), clock=sim.clock.time,
                                 sleep=sim.clock.sleep)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def sim(clock: VirtualClock) -> ExactSimulator:
    return ExactSimulator.seeded(clock=clock, division=DIVISION)
