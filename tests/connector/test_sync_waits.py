"""A rate-limit wait during a sync reaches the application's progress observer, named by connection."""

from __future__ import annotations

from typing import Any

from connector.config import parse_config
from connector.sync import sync_all
from providers.base import ConnectionSettings, SyncPage


class Recorder:
    def __init__(self) -> None:
        self.waits: list[tuple[str, float, str]] = []

    def started(self, connection: str, task: str) -> None:
        pass

    def page(self, connection: str, *, invoices: int, debtors: int, calls: int) -> None:
        pass

    def waiting(self, connection: str, seconds: float, reason: str) -> None:
        self.waits.append((connection, seconds, reason))

    def finished(self, connection: str, task: str, *, ok: bool) -> None:
        pass


def test_the_limiter_s_wait_is_shown_for_its_connection(store, fake_provider, invoice_factory, monkeypatch) -> None:
    monkeypatch.setenv("ACME_SECRET", "x")
    config = parse_config({"connections": [{"name": "acme", "provider": "fake", "tenant": "T1", "client_id": "c",
                                            "client_secret_env": "ACME_SECRET"}]})
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="p1")]
    plain_connect = fake_provider.connect

    def connect(settings: ConnectionSettings, **options: Any):
        options["on_wait"](42.0, "Fake's rate limit")  # as the limiter does before it sleeps
        return plain_connect(settings, **options)

    monkeypatch.setattr(fake_provider, "connect", connect)
    progress = Recorder()

    (summary,) = sync_all(config, store, tokens=None, progress=progress)

    assert summary.ok
    assert progress.waits == [("acme", 42.0, "Fake's rate limit")]

