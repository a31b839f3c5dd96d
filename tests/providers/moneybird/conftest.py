"""A Moneybird simulator with a consented app, and the adapter connected to it on the simulator's virtual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pytest

from connector.models import Debtor, Invoice
from providers.base import ConnectionSettings, SyncPage, SyncState, Token
from providers.moneybird import MoneybirdProvider
from providers.moneybird.simulator import MoneybirdSimulator
from providers.tokens import MemoryTokenStore

CLIENT_ID, CLIENT_SECRET = "dunning-app", "s3cret-app-value"
CONNECTION = "acme-moneybird"




@dataclass
class Books:
    """What a store would hold after applying sync pages in order (the adapter's view of the world)."""

    invoices: dict[str, Invoice] = field(default_factory=dict)
    debtors: dict[str, Debtor] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    pages: int = 0

    def apply(self, pages: Iterable[SyncPage]) -> Books:
        for page in pages:
            self.pages += 1
            self.debtors.update({d.platform_id: d for d in page.debtors})
            self.invoices.update({i.platform_id: i for i in page.invoices})
            for closed in (*page.closed_invoice_ids, *page.deleted_invoice_ids):
                if closed in self.invoices:
                    self.invoices[closed] = self.invoices[closed].model_copy(update={"is_open": False})
            self.problems.extend(page.problems)
        return self

    def state(self, *, full: bool = False) -> SyncState:
        return SyncState(
            open_invoices={i.platform_id: i.version for i in self.invoices.values() if i.is_open},
            debtors={d.platform_id: d.version for d in self.debtors.values()},
            full=full,
        )

    @property
    def open_ids(self) -> set[str]:
        return {i.platform_id for i in self.invoices.values() if i.is_open}


def settings_for(sim: MoneybirdSimulator, **changes: object) -> ConnectionSettings:
    values: dict[str, object] = dict(name=CONNECTION, provider="moneybird", tenant=sim.administration_id,
                                     client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    return ConnectionSettings.model_validate(values | changes)


@pytest.fixture
def sim() -> MoneybirdSimulator:
    simulator = MoneybirdSimulator(seed=7, contacts=15, invoices=260)
    simulator.oauth.register_client(CLIENT_ID, CLIENT_SECRET, ["http://localhost:8765/callback"])
    return simulator


@pytest.fixture
def tokens(sim: MoneybirdSimulator) -> MemoryTokenStore:
    store = MemoryTokenStore()
    store.save(CONNECTION, Token.from_response(sim.oauth.grant_tokens(CLIENT_ID), now=sim.clock.now()))
    return store


@pytest.fixture
def connect(sim: MoneybirdSimulator, tokens: MemoryTokenStore) -> Callable[..., MoneybirdProvider]:
    def build(**changes: object) -> MoneybirdProvider:
        return MoneybirdProvider.connect(settings_for(sim, **changes), tokens=tokens, transport=sim.transport(),
                                         clock=sim.clock.time, sleep=sim.clock.sleep)

    return build


@pytest.fixture
def provider(connect: Callable[..., MoneybirdProvider]) -> Iterator[MoneybirdProvider]:
    adapter = connect()
    yield adapter
    adapter.close()


def open_in_simulator(sim: MoneybirdSimulator) -> set[str]:
    return {i.id for i in sim.invoices_in("open", "pending_payment", "late", "reminded")}


@pytest.fixture
def books() -> Books:
    """An empty store-like view that sync pages are applied to."""
    return Books()


@pytest.fixture
def simulator_open_ids(sim: MoneybirdSimulator) -> Callable[[], set[str]]:
    """Ids of the invoices the simulator holds in an open state right now."""
    return lambda: open_in_simulator(sim)
