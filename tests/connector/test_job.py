"""`connector.job`: each connection's day (sync → plan → send → export) as one unit, worked concurrently under one
run lock per store, a failing connection isolated from the others. Against the three simulators, in process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from connector.config import Config, load_config
from connector.job import exit_code, run_job
from connector.simworld import SECRET, SECRET_ENV, World
from connector.store import Store
from connector.store.runlock import AlreadyRunning, run_lock
from providers.tokens import MemoryTokenStore

START = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


@pytest.fixture
def world() -> World:
    return World.build(START)


@pytest.fixture
def tokens(world: World) -> MemoryTokenStore:
    store = MemoryTokenStore()
    world.grant(store)
    return store


@pytest.fixture
def config(world: World, tmp_path: Path, store_url: str) -> Config:
    return load_config(world.write_config(tmp_path / "dunning.toml", store_url=store_url))


@pytest.fixture
def store(config: Config, world: World) -> Iterator[Store]:
    with Store.open(config.store_url, clock=world.clock.now) as opened:
        yield opened


def test_every_connection_is_synced_and_planned_and_summarised(
    world: World, tokens: MemoryTokenStore, config: Config, store: Store
) -> None:
    summary = run_job(config, store, tokens, as_of=world.today, connect=world.connect(tokens))

    assert [day.connection for day in summary.days] == [p.connection for p in world.places]
    for day in summary.days:
        assert day.ok and day.synced and day.error is None, day
        assert day.fetched >= 10 and day.planned > 0
        open_ids = {i.platform_id for i, _, _ in store.iter_open_invoices(day.connection)}
        assert set(world.place(day.connection).seeded.invoices.values()) <= open_ids
        assert day.sent == len(world.place(day.connection).simulator.sent_mail()) > 0  # the platform mailed them
        assert day.sent == sum(day.sent_by_step.values())
    assert exit_code(summary) == 0
    again = run_job(config, store, tokens, as_of=world.today, connect=world.connect(tokens))
    assert again.ok and again.total("sent") == 0  # the same day twice mails nothing twice
    assert world.sent_mail() == summary.total("sent")


def test_a_platform_that_is_down_stops_only_its_own_connection(
    world: World, tokens: MemoryTokenStore, config: Config, store: Store
) -> None:
    down = world.places[1]
    down.simulator.faults.server_error("*", times=1000, status=503)

    summary = run_job(config, store, tokens, as_of=world.today, connect=world.connect(tokens))

    by_name = {day.connection: day for day in summary.days}
    assert not by_name[down.connection].ok and by_name[down.connection].error
    assert by_name[down.connection].error.startswith(f"{down.connection}:")  # type: ignore[union-attr]
    others = [day for name, day in by_name.items() if name != down.connection]
    assert others and all(day.ok and day.fetched > 0 for day in others)
    assert exit_code(summary) == 1


def test_a_withdrawn_consent_is_named_as_needing_reauthorisation(
    world: World, tokens: MemoryTokenStore, config: Config, store: Store
) -> None:
    withdrawn = world.places[0]
    withdrawn.simulator.withdraw_consent()

    summary = run_job(config, store, tokens, as_of=world.today, connect=world.connect(tokens))

    assert summary.needing_reauthorisation == [withdrawn.connection]
    assert sum(day.ok for day in summary.days) == len(world.places) - 1


def test_a_second_run_on_the_same_store_stops_at_once(
    world: World, tokens: MemoryTokenStore, config: Config, store: Store
) -> None:
    with run_lock(store.engine), pytest.raises(AlreadyRunning, match="another dunning run is working"):
        run_job(config, store, tokens, as_of=world.today, connect=world.connect(tokens))
    assert world.sent_mail() == 0
    assert all(p.simulator.call_count() == 0 for p in world.places)
    # once the first run is over, the lock is free again
    assert run_job(config, store, tokens, as_of=world.today, connect=world.connect(tokens)).ok


class SlowTransport(httpx.BaseTransport):
    """Every platform call takes `delay` real seconds, as over the internet; each call's span goes to `spans`
    under this transport's name (one transport per connection)."""

    def __init__(self, inner: httpx.BaseTransport, delay: float, name: int,
                 spans: list[tuple[int, float, float]]) -> None:
        self.inner, self.delay, self.name, self.spans = inner, delay, name, spans

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        time.sleep(self.delay)
        response = self.inner.handle_request(request)
        self.spans.append((self.name, started, time.monotonic()))
        return response


def most_connections_at_once(spans: list[tuple[int, float, float]]) -> int:
    """The most connections that had a call in flight at the same moment."""
    return max(len({name for name, start, end in spans if start <= moment < end})
               for _name, moment, _end in spans)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_three_connections_run_at_once_not_one_after_another(
    world: World, tokens: MemoryTokenStore, config: Config, store: Store
) -> None:
    # overlapping calls, not a wall-clock ratio: timing a shared 2-core machine is what benchmarks are for
    def spans_of(workers: int) -> list[tuple[int, float, float]]:
        spans: list[tuple[int, float, float]] = []
        names = iter(range(100))
        summary = run_job(config, store, tokens, as_of=world.today, workers=workers, connect=world.connect(
            tokens, wrap=lambda inner: SlowTransport(inner, 0.1, next(names), spans)))
        assert summary.ok and len(summary.days) == 3
        return spans

    spans_of(3)  # the first sync of each is a full one: look at the same (incremental) work both ways
    assert most_connections_at_once(spans_of(1)) == 1
    assert most_connections_at_once(spans_of(3)) >= 2


def test_invoices_a_sync_kept_open_and_named_make_the_run_exit_1(
    world: World, tokens: MemoryTokenStore, config: Config, store: Store
) -> None:
    run_job(config, store, tokens, as_of=world.today, connect=world.connect(tokens))
    place = next(p for p in world.places if p.platform == "moneybird")
    missing = sorted(place.seeded.invoices.values())[0]
    place.simulator.delete_invoice(missing)  # gone from the synchronization answer, and its direct read fails
    place.simulator.faults.server_error(f"*/sales_invoices/{missing}.json", times=1000, status=503, method="GET")

    summary = run_job(config, store, tokens, as_of=world.today, connect=world.connect(tokens))

    day = next(d for d in summary.days if d.connection == place.connection)
    assert day.synced and day.error is None and not day.ok
    assert len(day.anomalies) == 1 and missing in day.anomalies[0]
    assert missing in {i.platform_id for i, _, _ in store.iter_open_invoices(place.connection)}
    assert all(d.ok for d in summary.days if d is not day)
    assert exit_code(summary) == 1


class _Recorder:
    """The progress events a run emits (started/finished), in order; the rest ignored."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def started(self, connection: str, task: str) -> None:
        self.events.append(("started", connection, task))

    def finished(self, connection: str, task: str, *, ok: bool, detail: str | None = None) -> None:
        self.events.append(("finished", connection, task))

    def page(self, *args: object, **kwargs: object) -> None:
        pass

    def advanced(self, *args: object, **kwargs: object) -> None:
        pass

    def waiting(self, *args: object, **kwargs: object) -> None:
        pass


@pytest.mark.parametrize("dry_run", [False, True])
def test_each_connection_shows_one_progress_row_per_phase(
    world: World, tokens: MemoryTokenStore, config: Config, store: Store, dry_run: bool
) -> None:
    recorder = _Recorder()

    run_job(config, store, tokens, as_of=world.today, connect=world.connect(tokens), progress=recorder,
            dry_run=dry_run)

    for place in world.places:
        mine = [(event, task) for event, connection, task in recorder.events if connection == place.connection]
        started = [task for event, task in mine if event == "started"]
        assert started == ["sync", "plan", "send"], mine  # one "send" row, not the job's and delivery's
        assert sorted(started) == sorted(task for event, task in mine if event == "finished")
