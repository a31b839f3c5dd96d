"""Benchmark: sync time at the physical limit — each platform's simulator behind its real rate window and a
realistic latency, a first sync and an unchanged re-sync of 100, 3,000 and 20,000 open invoices, each next to the
least time the window, the concurrency and the latency allow.

Time model (virtual, so a 5-minute window costs seconds): every call takes 0.3 s plus 0.5 s per MB of its answer
(a page of 1,000 Xero invoices, 1.36 MB, takes 1 s). The clock is event-driven: a thread that sleeps (a call's
latency, a rate-limit wait) waits until virtual time reaches its wake-up, and time jumps to the earliest wake-up
once no call is being answered and nothing has touched the clock for a moment, so calls made in parallel
overlap as they would on the wire. The client's own CPU time is free on this clock; it is printed beside it (real s).

The bound: the same calls (the call counts are those of bench/*_sync.py, checked there against each API's
minimum) scheduled ideally, level by level — what needs no earlier answer (a listing's first page, a change list)
first, then what needs one (further pages once `pageCount` is known, id batches) — on as many lanes as the
platform allows at once (Xero 5, Moneybird 3 (our choice: it documents none), Exact 1: follow `__next`, never in
parallel), never faster than the window (Moneybird 150 per 5 min, Exact 60 a minute, Xero 60 a minute). Each
call's latency in the bound is the one it had in the run. Target: every run within 1.2 × its bound.
Run: `.venv/bin/python bench/sync_latency.py [--platform xero|moneybird|exact] [--sizes 100,3000,20000]`.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from providers.base import ConnectionSettings, Provider, SyncPage, SyncState, Token  # noqa: E402
from providers.ratelimit import RateWindow  # noqa: E402
from providers.simkit import VirtualClock  # noqa: E402
from providers.tokens import MemoryTokenStore  # noqa: E402

PER_CALL = 0.3
"""Seconds every call takes (connection reuse, server time, round trip)."""
BYTES_PER_SECOND = 2_000_000
"""Transfer speed: a page of 1,000 Xero invoices (1.36 MB in the simulator) takes 0.3 + 0.68 ≈ 1 s."""
QUIET = 0.02
"""Real seconds without any clock activity before virtual time may jump to the next wake-up (other threads get
that long to reach their own sleep)."""
TARGET = 1.2
LATER = 301.0
"""Virtual seconds between the first sync and the re-sync: every window but the day's has made room again."""


class EventClock(VirtualClock):
    """Virtual time for concurrent callers: sleeping blocks until virtual time reaches the wake-up; time jumps to
    the earliest wake-up once no call is being answered (`busy`) and the clock has been left alone for `QUIET`."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._cond = threading.Condition()
        self._wakes: list[float] = []
        self._busy = 0
        self._touched = time.monotonic()
        self._closed = False
        self._ticker = threading.Thread(target=self._tick, name="event-clock", daemon=True)
        self._ticker.start()

    def time(self) -> float:
        with self._cond:
            self._touched = time.monotonic()
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the days on (between runs): at once."""
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:  # type: ignore[override]
        if seconds <= 0:
            return
        with self._cond:
            wake = self._now + seconds
            if threading.active_count() <= 2 and not self._wakes and not self._busy:
                self._now = wake  # nobody else could act before the wake-up
                return
            heapq.heappush(self._wakes, wake)
            self._touched = time.monotonic()
            self._cond.notify_all()
            while self._now < wake:
                self._cond.wait()

    @contextmanager
    def busy(self) -> Iterator[None]:
        with self._cond:
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._touched = time.monotonic()
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _tick(self) -> None:
        with self._cond:
            while not self._closed:
                if self._wakes and not self._busy:
                    idle = time.monotonic() - self._touched
                    if idle >= QUIET:
                        self._now = max(self._now, heapq.heappop(self._wakes))
                        while self._wakes and self._wakes[0] <= self._now:
                            heapq.heappop(self._wakes)
                        self._touched = time.monotonic()
                        self._cond.notify_all()
                        continue
                    self._cond.wait(QUIET - idle)
                else:
                    self._cond.wait(QUIET)


@dataclass(frozen=True)
class Call:
    level: int
    """0: needs no earlier answer; 1: needs one (a further page, an id batch)."""
    seconds: float


class LatencyTransport(httpx.BaseTransport):
    """The simulator behind the latency model: the platform counts the call when it arrives, then the answer
    takes its time to come back."""

    def __init__(self, inner: httpx.BaseTransport, clock: EventClock, level: Callable[[httpx.Request], int],
                 latency: Callable[[httpx.Response], float] | None = None) -> None:
        self.inner = inner
        self.clock = clock
        self.level = level
        self.latency = latency or (lambda response: PER_CALL + len(response.content) / BYTES_PER_SECOND)
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.clock.busy():
            response = self.inner.handle_request(request)
            response.read()
        seconds = self.latency(response)
        with self._lock:
            self.calls.append(Call(self.level(request), seconds))
        self.clock.sleep(seconds)
        return response


def bound(calls: Iterable[Call], windows: Iterable[RateWindow], lanes: int) -> float:
    """The least time these calls take, level by level, on `lanes` at once, never beyond a window."""
    windows = tuple(windows)
    sent: list[float] = []
    now = 0.0
    by_level: dict[int, list[float]] = {}
    for call in calls:
        by_level.setdefault(call.level, []).append(call.seconds)
    for level in sorted(by_level):
        free = [now] * lanes
        for seconds in sorted(by_level[level], reverse=True):
            lane = min(range(lanes), key=free.__getitem__)
            start = _allowed(sent, free[lane], windows)
            bisect.insort(sent, start)
            free[lane] = start + seconds
        now = max(free)
    return now


def _allowed(sent: list[float], start: float, windows: tuple[RateWindow, ...]) -> float:
    """The earliest moment from `start` on when one more call fits every window (sliding)."""
    moved = True
    while moved:
        moved = False
        for window in windows:
            recent = [t for t in sent if t <= start < t + window.seconds]  # (t + W, not start - W: no rounding loop)
            if len(recent) >= window.limit:
                start = recent[len(recent) - window.limit] + window.seconds
                moved = True
    return start


class Book:
    """What a store would hold: open invoice versions, debtor versions, the cursor; pages applied in order."""

    def __init__(self) -> None:
        self.open: dict[str, str | None] = {}
        self.debtors: dict[str, str | None] = {}
        self.cursor: str | None = None

    def state(self) -> SyncState:
        return SyncState(cursor=self.cursor, open_invoices=self.open, debtors=self.debtors)

    def write(self, pages: Iterator[SyncPage]) -> None:
        for page in pages:
            if page.problems:
                raise SystemExit(f"unexpected problems: {page.problems[:3]}")
            for invoice in page.invoices:
                if invoice.is_open:
                    self.open[invoice.platform_id] = invoice.version
                else:
                    self.open.pop(invoice.platform_id, None)
            for closed in page.closed_invoice_ids:
                self.open.pop(closed, None)
            self.debtors.update({d.platform_id: d.version for d in page.debtors})
            self.cursor = page.cursor or self.cursor


@dataclass
class Setup:
    provider: Provider
    transport: LatencyTransport
    expected_open: int
    extra: list[Callable[[], None]] = field(default_factory=list)


START = datetime(2026, 11, 23, 6, 0, 30, tzinfo=UTC)


def xero_level(request: httpx.Request) -> int:
    """A Xero call needs an earlier answer when it reads a further page or ids named by a page."""
    params = request.url.params
    if "IDs" in params or params.get("page", "1") != "1":
        return 1
    if request.url.path.endswith("/Contacts") and "If-Modified-Since" not in request.headers:
        return 1  # all contacts are read when an invoice page names many unknown ones
    return 0


def xero(clock: EventClock, invoices: int) -> Setup:
    from providers.xero import XeroProvider
    from providers.xero.simulator import XeroSimulator

    sim = XeroSimulator(clock)
    sim.register_app()
    sim.seed_book(seed=2026, open_invoices=invoices, contacts=max(40, invoices // 8), closed_invoices=invoices // 20,
                  bills=invoices // 100, drafts=invoices // 200)

    transport = LatencyTransport(sim.transport(), clock, xero_level)
    tokens = MemoryTokenStore()
    tokens.save("bench", Token.from_response(sim.grant(), now=sim.clock.now()))
    settings = ConnectionSettings(name="bench", provider="xero", tenant=sim.org.tenant_id, client_id="dunning-app",
                                  client_secret="app-secret", api_url="http://xero.sim",
                                  token_url="http://xero.sim/connect/token")
    provider = XeroProvider.connect(settings, tokens=tokens, transport=transport, clock=clock.time, sleep=clock.sleep)
    return Setup(provider, transport, len(sim.org.open_invoices()))


def moneybird(clock: EventClock, invoices: int) -> Setup:
    from providers.moneybird import MoneybirdProvider
    from providers.moneybird.simulator import MoneybirdSimulator

    sim = MoneybirdSimulator(seed=2026, contacts=max(1, invoices // 8), invoices=0, clock=clock)
    contacts = list(sim.administration.contacts.values())
    for n in range(invoices):
        sim.new_invoice(contacts[n % len(contacts)].id, state="late" if n % 3 else "open",
                        invoice_date=sim.today - timedelta(days=5 + n % 700))
    sim.oauth.register_client("bench", "bench-secret", ["http://localhost:8765/callback"])
    tokens = MemoryTokenStore()
    tokens.save("bench", Token.from_response(sim.oauth.grant_tokens("bench"), now=sim.clock.now()))
    settings = ConnectionSettings(name="bench", provider="moneybird", tenant=sim.administration_id,
                                  client_id="bench", client_secret="bench-secret")
    transport = LatencyTransport(sim.transport(), clock, lambda request: 0 if request.method == "GET" else 1)
    provider = MoneybirdProvider.connect(settings, tokens=tokens, transport=transport, clock=clock.time,
                                         sleep=clock.sleep)
    return Setup(provider, transport, invoices)


def exact(clock: EventClock, invoices: int) -> Setup:
    from pydantic import SecretStr

    from providers.exact import ExactProvider
    from providers.exact.simulator import ExactSimulator

    division, redirect = 123456, "https://localhost:8765/callback"
    sim = ExactSimulator.seeded(division=division, accounts=max(20, invoices // 5), invoices=invoices, clock=clock)
    accounts = list(sim.divisions[division].accounts)
    for n in range(invoices // 2):  # paid history in the payment-term feed, as bench/exact_sync.py has it
        paid = sim.new_invoice(division, accounts[n % len(accounts)], "100.00")
        sim.pay(division, paid.InvoiceID)
    sim.oauth.register_client("app", "s3cret", [redirect])
    tokens = MemoryTokenStore({"bench": Token.from_response(sim.oauth.grant_tokens("app"), now=sim.clock.now())})
    settings = ConnectionSettings(name="bench", provider="exact", tenant=str(division), client_id="app",
                                  client_secret=SecretStr("s3cret"), redirect_uri=redirect)
    transport = LatencyTransport(sim.transport(), clock, lambda request: 0)  # one lane: levels change nothing
    provider = ExactProvider.connect(settings, tokens=tokens, transport=transport, clock=clock.time,
                                     sleep=clock.sleep)
    data = sim.divisions[division]
    open_terms = {t.TransactionEntryID for t in data.terms.values() if t.Status != 50 and t.LineType != 22}
    return Setup(provider, transport, len(open_terms))


PLATFORMS: dict[str, Callable[[EventClock, int], Setup]] = {"moneybird": moneybird, "exact": exact, "xero": xero}


@dataclass(frozen=True)
class Row:
    platform: str
    invoices: int
    run: str
    calls: int
    lanes: int
    windows: str
    seconds: float
    bound: float
    cpu: float

    @property
    def ratio(self) -> float:
        return self.seconds / self.bound if self.bound else 1.0


def measure(platform: str, invoices: int) -> list[Row]:
    clock = EventClock(START)
    setup = PLATFORMS[platform](clock, invoices)
    api = setup.provider.api
    book = Book()
    rows = []
    try:
        for run in ("first sync", "unchanged re-sync"):
            if run != "first sync":
                clock.advance(LATER)
            setup.transport.calls.clear()
            real, start = time.perf_counter(), clock.time()
            book.write(setup.provider.sync(book.state()))
            seconds, cpu = clock.time() - start, time.perf_counter() - real
            calls = list(setup.transport.calls)
            windows = ", ".join(f"{w.limit:,}/{_duration(w.seconds)}" for w in api.profile.windows)
            rows.append(Row(platform, invoices, run, len(calls), api.profile.max_in_flight, windows, seconds,
                            bound(calls, api.profile.windows, api.profile.max_in_flight), cpu))
            if run == "first sync" and len(book.open) != setup.expected_open:
                raise SystemExit(f"{platform}: {len(book.open)} open invoices stored, {setup.expected_open} expected")
    finally:
        setup.provider.close()
        clock.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--platform", choices=sorted(PLATFORMS), action="append")
    parser.add_argument("--sizes", default="100,3000,20000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"latency {PER_CALL:.1f} s a call + {BYTES_PER_SECOND / 1e6:.0f} MB/s; virtual seconds (CPU free), "
          "real seconds beside them")
    print(f"{'platform':<10} {'invoices':>8}  {'run':<18} {'calls':>5} {'lanes':>5} {'window':<22} "
          f"{'time s':>8} {'bound s':>8} {'ratio':>6}  {'real s':>6}")
    worst = 0.0
    for platform in args.platform or list(PLATFORMS):
        for size in sizes:
            for row in measure(platform, size):
                print(f"{row.platform:<10} {row.invoices:>8}  {row.run:<18} {row.calls:>5} {row.lanes:>5} "
                      f"{row.windows:<22} {row.seconds:>8.2f} {row.bound:>8.2f} {row.ratio:>6.2f}  {row.cpu:>6.1f}",
                      flush=True)
                worst = max(worst, row.ratio)
    print(f"worst ratio {worst:.2f} (target ≤ {TARGET}): {'met' if worst <= TARGET else 'NOT met'}")


def _duration(seconds: float) -> str:
    return {60.0: "min", 86400.0: "day"}.get(seconds, f"{seconds:g} s")


if __name__ == "__main__":
    main()
