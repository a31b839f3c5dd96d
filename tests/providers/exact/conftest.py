"""Fixtures for the Exact adapter: a seeded simulator on a virtual clock and an adapter connected to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from providers.base import ConnectionSettings, Token
from providers.exact import ExactProvider
from providers.exact.simulator import ExactSimulator
from providers.simkit import VirtualClock

REDIRECT = "https://localhost:8765/callback"
DIVISION = 123456


@dataclass
class MemoryTokens:
    """A TokenStore in memory that remembers every refresh token it was asked to keep."""

    token: Token | None = None
    saved: list[Token] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def load(self, connection: str) -> Token | None:
        return self.token

    def save(self, connection: str, token: Token) -> None:
        self.token = token
        self.saved.append(token)

    @contextmanager
    def lock(self, connection: str) -> Iterator[None]:
        with self._lock:
            yield

    def delete(self, connection: str) -> None:
        self.token = None


def settings(*, api_url: str | None = "https://start.exactonline.nl", tenant: str | None = str(DIVISION),
             **options: object) -> ConnectionSettings:
    return ConnectionSettings(name="bakkerij", provider="exact", tenant=tenant, client_id="app",
                              client_secret=SecretStr("s3cret"), redirect_uri=REDIRECT, api_url=api_url,
                              options=options)


def connect(sim: ExactSimulator, tokens: MemoryTokens | None = None, **kwargs: object) -> ExactProvider:
    """An adapter on the simulator's transport and virtual clock, with freshly granted tokens."""
    if tokens is None:
        if "app" not in sim.oauth.clients:
            sim.oauth.register_client("app", "s3cret", [REDIRECT])
        tokens = MemoryTokens(Token.from_response(sim.oauth.grant_tokens("app"), now=sim.clock.now()))
    return ExactProvider.connect(settings(**kwargs), tokens=tokens, transport=sim.transport(), clock=sim.clock.time,
                                 sleep=sim.clock.sleep)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def sim(clock: VirtualClock) -> ExactSimulator:
    return ExactSimulator.seeded(clock=clock, division=DIVISION)
