"""Benchmark: plan 1,000,000 open invoices from a SQLite store, in constant memory.

    .venv/bin/python bench/plan_million.py [--invoices N] [--db PATH] [--split]

Generates the store with bulk inserts (100,000 debtors, 10 invoices each, a third of them with reminder history,
some holds), then streams the escalation rules (`plan_rows`) over it and prints invoices/s, the number of actions, and the
resident memory after the first 10,000 actions and at the end (it should not grow with the number of invoices), the
peak while planning, the CPU time, and whether the target was met: under 15 s of CPU for 1,000,000 invoices (a
smaller run is projected linearly; CPU time, not the wall clock, since the machine is shared).

It also prints the SHA-256 of the actions as `dunning plan --json` lines and, for the default 1,000,000 invoices,
whether it equals `REFERENCE_DIGEST` (the actions planned before any speed-up): a faster planner must plan exactly
the same. Hashing is timed apart and not counted in the planning CPU time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from connector.escalation.action import Action
from connector.escalation.policy import Policy
from connector.escalation.debtor import plan_rows
from connector.store import Store
from connector.capabilities import Capabilities

AS_OF = date(2026, 11, 23)
PER_DEBTOR = 10


EARLY_ACTIONS = 10_000
"""Resident memory is sampled once this many actions are out, and again at the end: it should not grow."""
HASH_BATCH = 1_000
"""Actions held at a time for the digest (a constant: memory does not grow with the number of invoices)."""
TARGET_SECONDS = 15.0
TARGET_INVOICES = 1_000_000
REFERENCE_DIGEST = "7743c60edbb5109e2c1d75e5225e37e2769672b1de0e3e2569d6be78e1f6515d"
"""SHA-256 of the 383,819 actions planned on the generated 1,000,000-invoice store, one `as_json()` line each.

Taken again when rules changed what is planned, never for speed: the minimum gap no longer pushes an invoice's first
reminder back (domain.md), so more first reminders go out on their day (377,502 actions before, digest 5c77da3d…);
interest over a rate the table marks unconfirmed carries a warning."""


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    """Current resident set size (VmRSS), MiB."""
    return _status_mib("VmRSS")


def reset_peak_rss() -> bool:
    """Start counting the peak afresh (Linux >= 4.0), so generating the store does not count as planning."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib(reset: bool) -> float:
    """The peak resident set size since `reset_peak_rss` (VmHWM), else since the process started."""
    return _status_mib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def interpreter() -> str:
    """Which Python runs the bench: the same code takes ~25 % more CPU on a plain source build of CPython (pyenv's
    default: the interpreter in a shared libpython, no PGO/LTO) than on a distribution's optimised build (Debian's
    `python3`, linked statically)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        maps = ""
    linked = ", interpreter in a shared libpython" if "libpython" in maps else ""
    return f"{platform.python_implementation()} {platform.python_version()} ({sys.executable}{linked})"


def generate(path: Path, invoices: int) -> None:
    """Fill a fresh store with bulk inserts straight through sqlite3 (the store's own schema and formats)."""
    Store.open(f"sqlite:///{path}").close()
    rng = random.Random(42)
    now = datetime(2026, 11, 23, 6, 0).isoformat(sep=" ")
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "INSERT INTO connections (name, provider, tenant, needs_reauth, created_at) VALUES (?, ?, ?, 0, ?)",
        ("bench", "moneybird", "T1", now),
    )
    debtors = invoices // PER_DEBTOR + 1
    db.executemany(
        "INSERT INTO debtors (connection, platform_id, name, kind, emails, phone, address, language, version,"
        " updated_at) VALUES ('bench', ?, ?, ?, ?, NULL, '{\"lines\":[]}', ?, '1', ?)",
        (
            (f"D{n:07d}", f"Debtor {n} B.V.", "consumer" if n % 5 == 0 else "business",
             json.dumps([f"d{n}@example.nl"]), "nl" if n % 3 else "en", now)
            for n in range(debtors)
        ),
    )
    invoice_rows = []
    event_rows = []
    for n in range(invoices):
        due = AS_OF - timedelta(days=rng.randint(-10, 90))
        total = f"{rng.randint(1_000, 500_000) / 100:.2f}"
        invoice_rows.append(
            (f"I{n:08d}", f"2026-{n:08d}", f"D{n // PER_DEBTOR:07d}", (due - timedelta(days=30)).isoformat(),
             due.isoformat(), total, total, now, now)
        )
        overdue = (AS_OF - due).days
        if overdue > 1 and n % 3 == 0:
            event_rows.append((n + 1, "reminder_sent", (due + timedelta(days=1)).isoformat(), "reminder_1", "{}", now))
        if n % 97 == 0:
            event_rows.append((n + 1, "hold_set", due.isoformat(), None, '{"hold":"dispute"}', now))
        if len(invoice_rows) == 100_000:
            _flush(db, invoice_rows, event_rows)
    _flush(db, invoice_rows, event_rows)
    db.commit()
    db.close()


def _flush(db: sqlite3.Connection, invoice_rows: list, event_rows: list) -> None:
    db.executemany(
        "INSERT INTO invoices (connection, platform_id, number, debtor_id, issue_date, due_date, currency, total,"
        " amount_paid, outstanding, is_credit_note, status, is_open, first_seen_at, updated_at)"
        " VALUES ('bench', ?, ?, ?, ?, ?, 'EUR', ?, '0.00', ?, 0, 'open', 1, ?, ?)",
        invoice_rows,
    )
    db.executemany(
        "INSERT INTO events (invoice_id, kind, on_date, step, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
        event_rows,
    )
    invoice_rows.clear()
    event_rows.clear()


def hash_actions(digest: Any, held: list[Action]) -> float:
    """Add the held actions to the digest as `dunning plan --json` lines and let them go; the CPU seconds it took.

    Timed per batch, not per action: reading the process clock costs ~0.65 us (a system call), and half of each
    reading would count as planning (0.25 s over a million invoices)."""
    started = time.process_time()
    for action in held:
        digest.update((json.dumps(action.as_json(), ensure_ascii=False) + "\n").encode())
    held.clear()
    return time.process_time() - started


def open_invoices(path: Path) -> int:
    """How many open invoices the store holds (counted apart, before planning)."""
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM invoices WHERE is_open = 1").fetchone()[0])


def read_alone(store: Store) -> float:
    """CPU seconds to stream the open book (invoices, debtors, histories as models) without planning it."""
    started = time.process_time()
    for _row in store.iter_open_invoices("bench", batch_size=2000):
        pass
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="reuse or create the store here (default: a temporary file)")
    parser.add_argument("--split", action="store_true",
                        help="first read the open book alone, to print how the CPU time divides between reading the "
                             "store and planning")
    args = parser.parse_args()
    print(f"on {interpreter()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.sqlite"
        if not path.exists():
            started = time.perf_counter()
            generate(path, args.invoices)
            print(f"generated {args.invoices:,} invoices in {time.perf_counter() - started:.1f} s")
        store = Store.open(f"sqlite:///{path}")
        reading = read_alone(store) if args.split else None
        caps = {"bench": Capabilities(native_reminder=True, custom_message=True, consolidated_reminders=True)}
        counted = open_invoices(path)
        actions = 0
        rss_early = float("nan")

        peak_reset = reset_peak_rss()
        started, cpu_started = time.perf_counter(), time.process_time()
        digest, hashing, held = hashlib.sha256(), 0.0, []
        for action in plan_rows(store.iter_open_invoices("bench", batch_size=2000), Policy(), AS_OF, capabilities=caps):
            actions += 1
            if actions == EARLY_ACTIONS:  # sampled on the actions: a generator counting the rows would cost CPU
                rss_early = rss_mib()
            held.append(action)
            if len(held) == HASH_BATCH:
                hashing += hash_actions(digest, held)
        hashing += hash_actions(digest, held)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started - hashing
        store.close()
        print(f"planned {counted:,} invoices into {actions:,} actions in {elapsed:.1f} s: "
              f"{counted / elapsed:,.0f} invoices/s")
        # on a shared machine the wall clock includes waiting for a CPU; the CPU time does not
        print(f"CPU time {cpu:.1f} s: {counted / cpu:,.0f} invoices per CPU-second")
        print(f"RSS after the first {EARLY_ACTIONS:,} actions: {rss_early:.0f} MiB; after all {counted:,} invoices: "
              f"{rss_mib():.0f} MiB; peak RSS {peak_rss_mib(peak_reset):.0f} MiB "
              f"{'while planning' if peak_reset else '(whole run)'}")
        if reading is not None:
            print(f"of which reading the store (read alone first): {reading:.1f} s ({reading / counted * 1e6:.1f} us an "
                  f"invoice); the rules: {cpu - reading:.1f} s ({(cpu - reading) / counted * 1e6:.1f} us an invoice)")
        projected = cpu * TARGET_INVOICES / counted
        verdict = "met" if projected < TARGET_SECONDS else "NOT met"
        scale = "" if counted == TARGET_INVOICES else f" (projected from {counted:,}: {projected:.1f} s)"
        print(f"target under {TARGET_SECONDS:.0f} s of CPU for {TARGET_INVOICES:,} invoices: {verdict}{scale}")
        if args.invoices == TARGET_INVOICES:
            same = "identical to" if digest.hexdigest() == REFERENCE_DIGEST else "DIFFERENT from"
            print(f"actions digest {digest.hexdigest()}: {same} the reference (hashing took {hashing:.1f} s, not counted)")
        else:
            print(f"actions digest {digest.hexdigest()} (the reference is for {TARGET_INVOICES:,} invoices)")

if __name__ == "__main__":
    main()
