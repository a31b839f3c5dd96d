"""Calls in parallel, answers in order: the helper itself, and Xero's pages and id batches read 5 at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from providers.base import ConnectionSettings, SyncPage, SyncState, Token
from providers.parallel import AHEAD, first_started, in_order, started
from providers.simkit import VirtualClock
from providers.tokens import MemoryTokenStore
from providers.xero import XeroProvider, client
from providers.xero.simulator import XeroSimulator


class Tracker:
    """Counts how many tasks run at once (each takes a little real time, so overlaps do happen)."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.started: list[int] = []
        self._lock = threading.Lock()

    def task(self, n: int, *, fail: bool = False) -> Callable[[], int]:
        def run() -> int:
            with self._lock:
                self.started.append(n)
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(0.01 if n % 3 else 0.03)  # unequal: later tasks often finish first
            with self._lock:
                self.running -= 1
            if fail:
                raise ValueError(f"task {n} failed")
            return n

        return run


def test_results_come_in_the_order_given_with_at_most_n_at_once() -> None:
    tracker = Tracker()
    assert list(in_order((tracker.task(n) for n in range(20)), at_once=4)) == list(range(20))
    assert 1 < tracker.most <= 4


def test_one_at_once_runs_in_the_caller_s_thread() -> None:
    threads: list[threading.Thread] = []
    tasks = [lambda: threads.append(threading.current_thread()) for _ in range(3)]
    list(in_order(tasks, at_once=1))
    assert threads == [threading.current_thread()] * 3


def test_a_failure_is_raised_at_its_place_and_later_tasks_are_not_started() -> None:
    tracker = Tracker()
    results = in_order((tracker.task(n, fail=n == 2) for n in range(30)), at_once=3)
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ValueError, match="task 2 failed"):
        next(results)
    assert len(tracker.started) <= 2 + AHEAD * 3  # no more than the look-ahead beyond the failure


def test_reading_runs_at_most_n_tasks_ahead_of_a_consumer_that_stops() -> None:
    tracker = Tracker()
    results = in_order((tracker.task(n) for n in range(100)), at_once=5)
    assert next(results) == 0
    results.close()
    assert len(tracker.started) <= AHEAD * 5 + 1 and tracker.running == 0


def test_a_started_call_runs_beside_the_caller_and_hands_over_its_answer_or_failure() -> None:
    going, release = threading.Event(), threading.Event()
    ran_in: list[threading.Thread] = []

    def call() -> str:
        ran_in.append(threading.current_thread())
        going.set()
        release.wait(5)
        return "answer"

    answer = started(call, at_once=2)
    assert going.wait(5)  # going already, before being asked
    assert ran_in[0] is not threading.current_thread()
    release.set()
    assert answer() == "answer"
    with pytest.raises(ValueError, match="refused"):
        started(lambda: (_ for _ in ()).throw(ValueError("refused")), at_once=2)()


def test_one_at_once_starts_nothing_early() -> None:
    calls: list[str] = []

    def listing():
        calls.append("page")
        yield 1

    answer = started(lambda: calls.append("call") or len(calls), at_once=1)
    pages = first_started(listing(), at_once=1)
    assert calls == []
    assert answer() == 1
    assert list(pages) == [1] and calls == ["call", "page"]


def test_a_listing_s_first_page_is_fetched_at_once_and_the_rest_as_asked() -> None:
    asked: list[int] = []
    first_asked = threading.Event()

    def listing():
        for n in range(3):
            asked.append(n)
            first_asked.set()
            yield n

    pages = first_started(listing(), at_once=5)
    assert first_asked.wait(5)
    time.sleep(0.01)  # and nothing more is asked for meanwhile
    assert asked == [0]
    assert list(pages) == [0, 1, 2]
    assert list(first_started(iter([]), at_once=5)) == []


class SlowTransport(httpx.BaseTransport):
    """The simulator behind a little real latency per call, counting how many calls are out at once."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.running = 0
        self.most = 0
        self.refused = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.01)
            response = self.inner.handle_request(request)
            with self._lock:
                self.refused += response.status_code == 429
            return response
        finally:
            with self._lock:
                self.running -= 1


def xero_books(monkeypatch: pytest.MonkeyPatch, *, parallel: bool) -> tuple[list[SyncPage], XeroSimulator,
                                                                           SlowTransport]:
    sim = XeroSimulator(VirtualClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)))
    sim.register_app()
    sim.seed_book(seed=11, open_invoices=230, contacts=160, closed_invoices=10)
    monkeypatch.setattr(client, "PAGE_SIZE", 20)  # 12 pages of invoices
    transport = SlowTransport(sim.transport())
    tokens = MemoryTokenStore()
    tokens.save("acme", Token.from_response(sim.grant(), now=sim.clock.now()))
    settings = ConnectionSettings(name="acme", provider="xero", tenant=sim.org.tenant_id, client_id="dunning-app",
                                  client_secret="app-secret", api_url="http://xero.sim",
                                  token_url="http://xero.sim/connect/token")
    provider = XeroProvider.connect(settings, tokens=tokens, transport=transport, clock=sim.clock.time,
                                    sleep=sim.clock.sleep)
    if not parallel:
        monkeypatch.setattr(provider.api.profile, "max_in_flight", 1)
    pages = list(provider.sync(SyncState()))
    provider.close()
    return pages, sim, transport


def test_xero_pages_and_contact_batches_are_read_five_at_once_and_handed_over_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pages, sim, transport = xero_books(monkeypatch, parallel=True)
    serial_pages, serial_sim, serial = xero_books(monkeypatch, parallel=False)

    assert 1 < transport.most <= 5 and serial.most == 1
    assert transport.refused == 0  # the simulator refuses a sixth call in flight with a 429
    # the same pages with the same cursors, in the same order, for the same number of calls
    assert [(len(p.invoices), p.cursor) for p in pages] == [(len(p.invoices), p.cursor) for p in serial_pages]
    assert [[i.platform_id for i in p.invoices] for p in pages] == [[i.platform_id for i in p.invoices]
                                                                     for p in serial_pages]
    assert len(sim.calls) == len(serial_sim.calls)
