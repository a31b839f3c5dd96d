"""Crash injection for delivery: the sending process is SIGKILLed at a chosen point, then run again.

The simulators live in this (the parent) process, served on 127.0.0.1, so their state — the sent-mail log above
all — outlives every kill. Each send runs in a child process forked from a forkserver (cheap, and safe beside the
serving threads); the child kills itself with SIGKILL when it reaches the chosen point:
- `request_before`: just before the k-th platform write leaves (the row is claimed, the platform saw nothing);
- `response_after`: right after the k-th platform write answered (the mail went out, nothing is committed yet);
- `take_after`, `progress_after` (the mail is committed, its note is not written), `finish_before`,
  `finish_after`: around the k-th outbox commit of that kind.
Then sends run again until one completes, and a last send must find nothing to mail. Used by
`tests/connector/delivery/test_crash.py` (a few points) and `bench/send_crash.py` (hundreds).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

HOOKS = ("request_before", "response_after", "take_after", "progress_after", "finish_before", "finish_after")
START = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)
TOKEN_KEY = "BJU4Jf1i7X0ji6n6azmM_aDhiRrT5s8j8oWyO35x-UI="
"""A throwaway Fernet key for the tokens of the simulated world."""


def _kill_at(hook: str, k: int) -> None:
    """Patch this (child) process so it SIGKILLs itself at the k-th occurrence of `hook`."""
    import httpx

    from connector.store import Store

    seen = {"n": 0}

    def hit() -> None:
        seen["n"] += 1
        if seen["n"] == k:
            os.kill(os.getpid(), signal.SIGKILL)

    if hook in ("request_before", "response_after"):
        original = httpx.Client.send

        def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            write = request.method in ("POST", "PUT") and "token" not in request.url.path
            if write and hook == "request_before":
                hit()
            response = original(self, request, **kwargs)
            if write and hook == "response_after" and response.status_code < 300:
                hit()
            return response

        httpx.Client.send = send  # type: ignore[method-assign]
        return
    name, when = {"take_after": ("outbox_take", "after"), "progress_after": ("outbox_progress", "after"),
                  "finish_before": ("outbox_finish", "before"), "finish_after": ("outbox_finish", "after")}[hook]
    original_method = getattr(Store, name)

    def wrapped(self: Store, *args: Any, **kwargs: Any) -> Any:
        if when == "before":
            hit()
        result = original_method(self, *args, **kwargs)
        if when == "after":
            hit()
        return result

    setattr(Store, name, wrapped)


def child(config_path: str, as_of: str, now: float, kill: tuple[str, int] | None) -> None:
    """One `dunning send` for the world's day, on the world's (frozen) clock; killed at `kill` if it gets there."""
    os.environ["DUNNING_DEMO_CLIENT_SECRET"] = "demo-app-secret"
    if kill is not None:
        _kill_at(*kill)
    from connector import plugins
    from connector.config import load_config
    from connector.delivery import send_all
    from connector.store import Store
    from providers.tokens import EncryptedFileTokenStore, default_state_dir

    config = load_config(config_path)
    tokens = EncryptedFileTokenStore(default_state_dir(config_path), key=TOKEN_KEY)

    def connect(settings: Any) -> Any:
        return plugins.provider_class(settings.provider).connect(settings, tokens=tokens, clock=lambda: now,
                                                                 sleep=lambda seconds: None)

    with Store.open(config.store_url) as store:
        send_all(config, store, tokens, as_of=date.fromisoformat(as_of), emit=lambda outcome: None, connect=connect)


@dataclass
class Figures:
    """What a crash run found, per platform."""

    scenarios: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    """Due reminders to a debtor with an e-mail address (what must be mailed exactly once)."""
    mailed_once: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    """Due, not mailed and not an open task either: silently dropped (must be 0)."""
    in_doubt_tasks: Counter[str] = field(default_factory=Counter)
    """A kill left it in doubt on a platform that cannot tell whether it went out: an open task to check by hand
    (mailed once, or not at all; never twice)."""
    second_send_mails: int = 0

    def add(self, other: Figures) -> None:
        self.scenarios += other.scenarios
        self.second_send_mails += other.second_send_mails
        for name in ("kills", "expected", "mailed_once", "duplicates", "lost", "in_doubt_tasks"):
            getattr(self, name).update(getattr(other, name))


def scenario(workdir: Path, rng: random.Random, *, max_kills: int = 6, platforms: list[str] | None = None,
             at_once: int = 1) -> Figures:
    """One day of sends for a fresh world (one connection per platform), killed up to `max_kills` times; then
    `at_once` sends started at the same moment on the same store finish the day."""
    from connector.config import load_config
    from connector.delivery.keys import delivery_key
    from connector.plan import connection_capabilities, plan
    from connector.simworld import SECRET, SECRET_ENV, World
    from connector.store import Store
    from connector.sync import sync_all
    from providers.tokens import EncryptedFileTokenStore, default_state_dir

    os.environ[SECRET_ENV] = SECRET
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["connector.delivery", "connector.config", "connector.plugins", "providers.xero",
                                    "providers.moneybird", "providers.exact", "httpx"])
    world = World.build(START, platforms=platforms)
    figures = Figures(scenarios=1)
    workdir.mkdir(parents=True, exist_ok=True)
    with world.serving():
        config_path = world.write_config(workdir / "dunning.toml", store_url="sqlite:///dunning.sqlite")
        tokens = EncryptedFileTokenStore(default_state_dir(config_path), key=TOKEN_KEY)
        world.grant(tokens)
        config = load_config(config_path)
        today = world.today
        with Store.open(config.store_url) as store:
            sync_all(config, store, tokens, connect=world.connect(tokens))
            capabilities = connection_capabilities((c.name, c.provider) for c in config.connections)
            due = [a for c in config.connections for a in plan(store, config.policy, today, connection=c.name,
                                                                capabilities=capabilities)
                   if a.channel.value == "platform_mail" and a.debtor.emails]

        # the simulators' clock moves between sends only to reset their rate windows (Moneybird's is five minutes);
        # in real time the reruns follow at once, so Xero's Idempotency-Key memory is kept as long as that takes
        pause = 301 if any(p.platform == "moneybird" for p in world.places) else 61
        for place in world.places:
            if hasattr(place.simulator, "idempotency_window"):
                place.simulator.idempotency_window = 20 * pause

        def run(kill: tuple[str, int] | None, copies: int = 1) -> int | None:
            processes = [context.Process(target=child, args=(str(config_path), today.isoformat(), world.clock.time(),
                                                             kill)) for _ in range(copies)]
            for process in processes:
                process.start()
            for process in processes:
                process.join()
            world.clock.advance(pause)
            return max((p.exitcode for p in processes), key=lambda code: abs(code or 0))

        for _ in range(max_kills):
            kill = (rng.choice(HOOKS), rng.randint(1, 6))
            code = run(kill)
            if code == -signal.SIGKILL:
                figures.kills[kill[0]] += 1
                continue
            assert code == 0, f"send ended with exit code {code}"
            break
        assert run(None, at_once) == 0
        before_last = {p.connection: len(p.simulator.sent_mail()) for p in world.places}
        assert run(None) == 0
        after_last = {p.connection: len(p.simulator.sent_mail()) for p in world.places}
        with Store.open(config.store_url) as store:
            rows = {row.idempotency_key: row for row in store.outbox_rows(kind=["reminder"])}
    # every due reminder exactly once in the platform's own log, each mail backed by one sent outbox row; a reminder
    # a kill left in doubt (where the platform cannot tell) is an open task, never silent
    for place in world.places:
        counts = Counter(tuple(m.invoice_ids) for m in place.simulator.sent_mail())
        recorded = {tuple(row.payload["invoices"]) for row in rows.values()
                    if row.connection == place.connection and row.status in ("sent", "task")}
        figures.duplicates[place.platform] += sum(n - 1 for n in counts.values() if n > 1)
        figures.duplicates[place.platform] += sum(n for ids, n in counts.items() if ids not in recorded)
        for action in (a for a in due if a.connection == place.connection):
            figures.expected[place.platform] += 1
            key = delivery_key("reminder", action.connection, action.debtor_id, action.invoice_ids, str(action.step))
            row = rows.get(key)
            mailed = counts.get(tuple(action.invoice_ids), 0)
            if row is not None and row.status == "sent" and mailed == 1:
                figures.mailed_once[place.platform] += 1
            elif row is not None and row.status == "task" and mailed <= 1:
                figures.mailed_once[place.platform] += mailed
                figures.in_doubt_tasks[place.platform] += 1
            elif mailed == 0:
                figures.lost[place.platform] += 1
    figures.second_send_mails = sum(after_last.values()) - sum(before_last.values())
    return figures
