"""The rate limiter: bursts within every window, never beyond one, at most N calls in flight, in step with the
platform's own headers, and says so before it waits (virtual clocks; threads where callers are concurrent)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from providers.base import ConnectionSettings, SyncState, Token
from providers.errors import RateLimited
from providers.moneybird import MoneybirdProvider
from providers.moneybird.simulator import MoneybirdSimulator
from providers.ratelimit import ARRIVAL_MARGIN, LimitReading, RateLimiter, RateWindow, shared_budget
from providers.simkit import VirtualClock
from providers.tokens import MemoryTokenStore

START = 1_800_000_000.0


class Clock:
    """A thread-safe virtual clock: sleeping advances it. Remembers, per thread, the last time it told, which is
    the moment the limiter counted that thread's call."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.slept: list[float] = []
        self._lock = threading.Lock()
        self._told = threading.local()

    def __call__(self) -> float:
        with self._lock:
            self._told.value = self.now
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds

    @property
    def last_told(self) -> float:
        return self._told.value


def assert_within(sent: list[float], windows: list[RateWindow]) -> None:
    """No interval of a window's length holds more than its limit, nor does any fixed (aligned) window."""
    sent = sorted(sent)
    for window in windows:
        for i, start in enumerate(sent):
            in_window = [t for t in sent[i:i + window.limit + 1] if t < start + window.seconds]
            assert len(in_window) <= window.limit, (window, start)
        slots = Counter(int(t // window.seconds) for t in sent)
        assert max(slots.values(), default=0) <= window.limit


windows_strategy = st.lists(
    st.builds(RateWindow, name=st.sampled_from(["a", "b", "c"]), limit=st.integers(1, 12),
              seconds=st.sampled_from([1.0, 10.0, 60.0, 300.0])),
    min_size=1, max_size=2, unique_by=lambda w: w.name,
)


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), min_size=1, max_size=120),
       windows=windows_strategy)
@example(gaps=[0.0] * 3, windows=[RateWindow("w", 2, 10.0)])  # a burst: the third call must wait (off-by-one)
@example(gaps=[0.0] + [4.0] * 20, windows=[RateWindow("w", 5, 60.0)])
def test_sequential_calls_burst_but_never_exceed_a_window(gaps: list[float], windows: list[RateWindow]) -> None:
    clock = Clock()
    limiter = RateLimiter(windows, clock=clock, sleep=clock.sleep, max_wait=10_000)
    sent: list[float] = []
    for gap in gaps:
        clock.now += gap
        wanted = clock.now
        limiter.acquire()
        if clock.now > wanted:  # it waited: then, at the moment it wanted to go, some window was full
            assert any(sum(1 for t in sent if t > wanted - w.seconds - ARRIVAL_MARGIN) >= w.limit for w in windows)
        sent.append(clock.now)
    assert_within(sent, windows)


@settings(max_examples=40, deadline=None)
@given(threads=st.integers(1, 6), calls=st.integers(1, 15), cap=st.integers(1, 5),
       latency=st.sampled_from([0.0, 0.3, 1.0, 7.0]), windows=windows_strategy)
@example(threads=6, calls=15, cap=5, latency=0.3, windows=[RateWindow("minute", 60, 60.0)])
def test_concurrent_callers_never_exceed_a_window_nor_the_calls_in_flight(
    threads: int, calls: int, cap: int, latency: float, windows: list[RateWindow]
) -> None:
    clock = Clock()
    limiter = RateLimiter(windows, clock=clock, sleep=clock.sleep, max_wait=10_000, max_in_flight=cap)
    sent: list[float] = []
    in_flight, most = 0, 0
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def caller() -> None:
        nonlocal in_flight, most
        start.wait()
        for _ in range(calls):
            with limiter.call():
                with lock:
                    sent.append(clock.last_told)
                    in_flight += 1
                    most = max(most, in_flight)
                clock.sleep(latency)  # the answer takes its time, the slot stays taken
                time.sleep(0.0005)  # and real time too, so the other threads do come while this call is out
                with lock:
                    in_flight -= 1

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(sent) == threads * calls
    assert most <= cap
    assert_within(sent, windows)


def test_a_window_s_budget_goes_at_once_then_at_the_window_s_pace() -> None:
    clock = Clock()
    limiter = RateLimiter([RateWindow("requests", 150, 300.0)], clock=clock, sleep=clock.sleep, max_wait=900)
    for _ in range(150):
        limiter.acquire()
    assert clock.slept == []
    limiter.acquire()
    assert clock.now == START + 300 + ARRIVAL_MARGIN


def test_the_wait_is_reported_before_sleeping_with_its_reason() -> None:
    clock = Clock()
    events: list[tuple[str, float]] = []
    limiter = RateLimiter(
        [RateWindow("minute", 2, 60.0)], clock=clock, max_wait=900, reason="Xero's rate limit",
        sleep=lambda s: (events.append(("slept", s)), clock.sleep(s)),
        on_wait=lambda s, reason: events.append((reason, s)),
    )
    for _ in range(3):
        limiter.acquire()
    assert events == [("Xero's rate limit", 60.0 + ARRIVAL_MARGIN), ("slept", 60.0 + ARRIVAL_MARGIN)]


def test_a_reported_remaining_budget_is_counted_down_until_its_reset() -> None:
    clock = Clock()
    limiter = RateLimiter([RateWindow("minute", 60, 60.0)], clock=clock, sleep=clock.sleep, max_wait=900)
    ticket = limiter.acquire()
    limiter.observe([LimitReading("minute", remaining=3, reset_at=START + 20)], ticket=ticket)
    for _ in range(3):
        limiter.acquire()
    assert clock.slept == []
    limiter.acquire()  # another client used the rest of the platform's minute
    assert clock.slept == [20.0]


def test_calls_let_go_after_the_answered_one_come_off_the_reported_budget() -> None:
    clock = Clock()
    limiter = RateLimiter([], clock=clock, sleep=clock.sleep, max_wait=900, max_in_flight=5)
    answered = limiter.acquire()
    limiter.acquire()
    limiter.acquire()  # two more went out while the first was answered: the reading may not count them yet
    limiter.observe([LimitReading("minute", remaining=3, reset_at=START + 30)], ticket=answered)
    limiter.acquire()
    assert clock.slept == []
    limiter.acquire()
    assert clock.slept == [30.0]


def test_a_late_reading_from_a_passed_window_does_not_replace_a_newer_one() -> None:
    clock = Clock()
    limiter = RateLimiter([], clock=clock, sleep=clock.sleep, max_wait=900)
    limiter.observe([LimitReading("minute", remaining=50, reset_at=START + 60)])
    limiter.observe([LimitReading("minute", remaining=1, reset_at=START)])
    for _ in range(5):
        limiter.acquire()
    assert clock.slept == []


def test_a_spent_window_the_platform_announces_waits_for_its_reset() -> None:
    clock = Clock()
    limiter = RateLimiter([], clock=clock, sleep=clock.sleep, max_wait=3600)
    limiter.observe([LimitReading("minute", remaining=0, reset_at=START + 42)])
    limiter.acquire()
    assert clock.slept == [42.0]


@pytest.mark.parametrize("remaining", [0, 3])
def test_a_short_window_s_reset_read_against_a_skewed_clock_waits_no_longer_than_the_window(remaining: int) -> None:
    # Moneybird's RateLimit-Reset is an epoch value: against a clock 20 minutes off it lies far ahead; a 5-minute
    # window still starts afresh within 5 minutes, so the run waits that long at most and never stops as if a daily
    # budget were spent
    clock = Clock()
    limiter = RateLimiter([RateWindow("requests", 150, 300.0)], clock=clock, sleep=clock.sleep, max_wait=900)
    limiter.observe([LimitReading("requests", remaining=remaining, reset_at=START + 1200)])
    for _ in range(remaining + 1):
        limiter.acquire()
    assert sum(clock.slept) <= 300.0 + ARRIVAL_MARGIN


def test_a_platform_s_retry_after_holds_every_caller() -> None:
    clock = Clock()
    limiter = RateLimiter([], clock=clock, sleep=clock.sleep, max_wait=900, max_in_flight=5)
    limiter.hold(61)
    limiter.acquire()
    assert clock.slept == [61.0]


@pytest.mark.parametrize("reset_at", [START + 7200, None], ids=["reset in two hours", "reset unknown"])
def test_a_spent_daily_budget_stops_for_the_run_instead_of_sleeping(reset_at: float | None) -> None:
    clock = Clock()
    limiter = RateLimiter([], clock=clock, sleep=clock.sleep, max_wait=900, connection="acme")
    limiter.observe([LimitReading("day", remaining=0, reset_at=reset_at, daily=True)])
    with pytest.raises(RateLimited, match="acme: the platform's daily call limit is used up") as caught:
        limiter.acquire()
    assert caught.value.for_the_day and clock.slept == []


def test_a_daily_budget_reported_as_nearly_spent_stops_when_it_runs_out() -> None:
    clock = Clock()
    limiter = RateLimiter([], clock=clock, sleep=clock.sleep, max_wait=900)
    limiter.observe([LimitReading("day", remaining=2, daily=True)])
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(RateLimited) as caught:
        limiter.acquire()
    assert caught.value.for_the_day and clock.slept == []


def test_a_spent_own_day_window_stops_instead_of_sleeping_for_hours() -> None:
    clock = Clock()
    limiter = RateLimiter([RateWindow("day", 2, 86_400)], clock=clock, sleep=clock.sleep, max_wait=900,
                          connection="acme")
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(RateLimited, match="acme: this run has used the platform's call budget until") as caught:
        limiter.acquire()
    assert caught.value.for_the_day and clock.slept == []


def test_a_five_call_moneybird_sync_is_not_delayed_by_the_limiter() -> None:
    sim = MoneybirdSimulator(seed=3, contacts=3, invoices=400)
    sim.oauth.register_client("app", "app-secret", ["http://localhost:8765/callback"])
    tokens = MemoryTokenStore()
    tokens.save("small", Token.from_response(sim.oauth.grant_tokens("app"), now=sim.clock.now()))
    settings_ = ConnectionSettings(name="small", provider="moneybird", tenant=sim.administration_id,
                                   client_id="app", client_secret="app-secret")
    slept: list[float] = []
    waits: list[float] = []
    provider = MoneybirdProvider.connect(settings_, tokens=tokens, transport=sim.transport(), clock=sim.clock.time,
                                         sleep=lambda s: (slept.append(s), sim.clock.sleep(s)),
                                         on_wait=lambda s, reason: waits.append(s))
    before = sim.clock.time()
    pages = list(provider.sync(SyncState()))
    provider.close()
    assert provider.calls == 5 and sum(len(p.invoices) for p in pages) > 200  # two version lists, three batches
    assert slept == [] and waits == [] and sim.clock.time() == before


class Refusals(httpx.BaseTransport):
    """Counts the platform's 429s on the way back."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.refused += response.status_code == 429
        return response


def test_xero_s_minute_budget_spent_by_another_client_is_read_from_its_headers(monkeypatch) -> None:
    from providers.xero import XeroProvider, client
    from providers.xero.simulator import XeroSimulator

    sim = XeroSimulator(VirtualClock(datetime(2026, 11, 23, 9, 0, 5, tzinfo=UTC)))
    sim.register_app()
    sim.seed_book(seed=5, open_invoices=200, contacts=30)
    monkeypatch.setattr(client, "PAGE_SIZE", 20)  # 10 pages: more than the budget the other client left
    for _ in range(55):  # another app of this organisation spent most of this minute
        sim.tenant_windows.hit(sim.org.tenant_id)
    tokens = MemoryTokenStore()
    tokens.save("acme", Token.from_response(sim.grant(), now=sim.clock.now()))
    settings_ = ConnectionSettings(name="acme", provider="xero", tenant=sim.org.tenant_id, client_id="dunning-app",
                                   client_secret="app-secret", api_url="http://xero.sim",
                                   token_url="http://xero.sim/connect/token")
    transport = Refusals(sim.transport())
    waits: list[str] = []
    provider = XeroProvider.connect(settings_, tokens=tokens, transport=transport, clock=sim.clock.time,
                                    sleep=sim.clock.sleep, on_wait=lambda s, reason: waits.append(reason))
    pages = list(provider.sync(SyncState()))
    provider.close()

    assert sum(len(p.invoices) for p in pages) == 200
    assert transport.refused == 0  # the limiter waited for the minute Xero said was spent, before Xero refused
    assert waits and set(waits) == {"Xero's rate limit"}


def test_exact_s_minute_budget_spent_by_another_client_is_read_from_its_headers() -> None:
    from providers.exact import ExactProvider
    from providers.exact.simulator import ExactSimulator

    sim = ExactSimulator.seeded(division=123456, accounts=30, invoices=120,
                                clock=VirtualClock(datetime(2026, 11, 23, 9, 0, 5, tzinfo=UTC)))
    for _ in range(58):  # another process of this app spent most of the division's minute
        sim.limits.hit("123456")
    sim.oauth.register_client("app", "s3cret", ["https://localhost:8765/callback"])
    tokens = MemoryTokenStore({"acme": Token.from_response(sim.oauth.grant_tokens("app"), now=sim.clock.now())})
    settings_ = ConnectionSettings(name="acme", provider="exact", tenant="123456", client_id="app",
                                   client_secret="s3cret", redirect_uri="https://localhost:8765/callback")
    transport = Refusals(sim.transport())
    provider = ExactProvider.connect(settings_, tokens=tokens, transport=transport, clock=sim.clock.time,
                                     sleep=sim.clock.sleep)
    pages = list(provider.sync(SyncState()))
    provider.close()

    assert sum(len(p.invoices) for p in pages) > 0 and provider.calls > 2
    assert transport.refused == 0  # every answer tells what is left; the limiter waits for the reset instead


def test_moneybird_s_retry_after_is_reported_before_the_wait() -> None:
    sim = MoneybirdSimulator(seed=3, contacts=2, invoices=3)
    sim.oauth.register_client("app", "app-secret", ["http://localhost:8765/callback"])
    sim.faults.rate_limited(retry_after=61)
    tokens = MemoryTokenStore()
    tokens.save("small", Token.from_response(sim.oauth.grant_tokens("app"), now=sim.clock.now()))
    settings_ = ConnectionSettings(name="small", provider="moneybird", tenant=sim.administration_id,
                                   client_id="app", client_secret="app-secret")
    waits: list[tuple[float, str]] = []
    provider = MoneybirdProvider.connect(settings_, tokens=tokens, transport=sim.transport(), clock=sim.clock.time,
                                         sleep=sim.clock.sleep, on_wait=lambda s, reason: waits.append((s, reason)))
    before = sim.clock.time()
    list(provider.sync(SyncState()))
    provider.close()
    assert waits == [(61.0, "Moneybird's rate limit")] and sim.clock.time() >= before + 61


def test_connections_the_platform_may_count_together_share_one_budget() -> None:
    # providers.md, Moneybird: 150 per 5 minutes, "the key — token, user or IP — is not documented": two
    # administrations reached with one authorisation stay within it together, each call naming its own connection
    clock, windows, store = Clock(), [RateWindow("requests", 150, 300.0)], MemoryTokenStore({})
    budget = shared_budget(store, "mb-token", windows, 1)
    first, second = (RateLimiter(windows, clock=clock, sleep=clock.sleep, max_wait=900, connection=name,
                                 budget=budget) for name in ("mb-admin-1", "mb-admin-2"))
    sent = []
    for n in range(400):
        (first if n % 2 else second).acquire()
        sent.append(clock.now)
    assert_within(sent, windows)
    assert clock.now >= START + 2 * (300 + ARRIVAL_MARGIN)  # 400 calls: two full windows waited, not none
    assert shared_budget(store, "mb-token", windows, 1) is budget
    assert shared_budget(store, "other-token", windows, 1) is not budget  # another authorisation: its own
    assert shared_budget(MemoryTokenStore({}), "mb-token", windows, 1) is not budget  # another store: a test, a process


def test_a_moneybird_connection_shares_its_authorisations_budget_and_others_keep_their_own() -> None:
    from pydantic import SecretStr

    from providers.xero import XeroProvider

    token = Token(access_token=SecretStr("access-0123456789"), issued_at=datetime.fromtimestamp(START, UTC))
    tokens = MemoryTokenStore({"mb": token, "xero": token})

    def connect(provider: type, name: str, token_key: str | None = None):  # noqa: ANN202
        settings = ConnectionSettings(name=name, provider=provider.name, tenant=name, client_id="app",
                                      client_secret=SecretStr("secret"), token_key=token_key)
        return provider.connect(settings, tokens=tokens)

    one, two, alone = connect(MoneybirdProvider, "mb"), connect(MoneybirdProvider, "mb-2", "mb"), \
        connect(MoneybirdProvider, "mb-3")
    xero_one, xero_two = connect(XeroProvider, "xero"), connect(XeroProvider, "xero-2", "xero")
    try:
        assert one.api.limiter.budget is two.api.limiter.budget is not alone.api.limiter.budget
        assert xero_one.api.limiter.budget is not xero_two.api.limiter.budget  # Xero counts per tenant
    finally:
        for provider in (one, two, alone, xero_one, xero_two):
            provider.close()
