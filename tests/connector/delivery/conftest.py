"""A world of simulators (one connection per platform, the demo's books), a store synced from it, and a runner
for `send` as the CLI does it, in process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import tomlkit

from connector.config import Config, load_config
from connector.delivery import send_all
from connector.plan import connection_capabilities, plan
from connector.simworld import SECRET, SECRET_ENV, World
from connector.store import Store
from connector.sync import sync_all
from providers.tokens import MemoryTokenStore

START = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def build(tmp_path: Path, store_url: str, platforms: list[str] | None = None,
          extra: dict[str, Any] | None = None) -> SimpleNamespace:
    world = World.build(START, platforms=platforms)
    tokens = MemoryTokenStore()
    world.grant(tokens)
    path = world.write_config(tmp_path / "dunning.toml", store_url=store_url)
    if extra:  # further tables ([mail], [policy] changes) merged into what the world wrote
        document = tomlkit.parse(path.read_text())
        for key, value in extra.items():
            document[key] = value
        path.write_text(tomlkit.dumps(document))
    config = load_config(path)
    return SimpleNamespace(world=world, tokens=tokens, config=config, connect=world.connect(tokens))


@pytest.fixture
def kit(tmp_path: Path, store_url: str) -> Iterator[SimpleNamespace]:
    made = build(tmp_path, store_url)
    with Store.open(made.config.store_url, clock=made.world.clock.now) as store:
        made.store = store
        sync_all(made.config, store, made.tokens, connect=made.connect)
        yield made


def send(kit: SimpleNamespace, *, as_of: date | None = None, **options: Any) -> list[dict[str, Any]]:
    """`dunning send --json` in process: the JSON lines, and the summaries on `kit.summaries`."""
    lines: list[dict[str, Any]] = []
    kit.summaries = send_all(kit.config, kit.store, kit.tokens, as_of=as_of or kit.world.today,
                             emit=lambda outcome: lines.append(outcome.as_json()), connect=kit.connect, **options)
    return lines


def planned(config: Config, store: Store, as_of: date) -> list[Any]:
    capabilities = connection_capabilities((c.name, c.provider) for c in config.connections)
    return [a for c in config.connections for a in plan(store, config.policy, as_of, connection=c.name,
                                                         capabilities=capabilities)]


@pytest.fixture
def run_send() -> Callable[..., list[dict[str, Any]]]:
    return send
