"""The store keeps what it holds to itself: private files, one holder per lock, and errors without SQL or data."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from connector.store import Busy, Store, StoreError
from providers.base import SyncPage
from tests.conftest import _postgres_schema_url

@pytest.fixture
def pg_url():
    """An empty PostgreSQL store's URL (its own schema), for what only a server shows."""
    yield from _postgres_schema_url()


PERSONAL = ("Jansen Schoonmaak", "j.jansen@jansen-schoonmaak.nl", "Prinsengracht 263", "1016 GV")


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """The usual umask (022): files come out 0644 unless created private on purpose."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_new_sqlite_store_and_its_wal_shm_and_lock_files_are_readable_by_the_owner_only(
    tmp_path, open_umask, invoice_factory
):
    path = tmp_path / "store.sqlite"
    with Store.open(f"sqlite:///{path}") as store:
        store.ensure_connection("acme", "xero", "T1")
        store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"),)))
        with store.lock("sync", connection="acme"):
            files = sorted(p.name for p in tmp_path.iterdir())
            assert {"store.sqlite", "store.sqlite-wal", "store.sqlite-shm"} <= set(files)
            assert {name: _mode(str(tmp_path / name)) for name in files} == dict.fromkeys(files, 0o600)


def test_a_store_file_someone_created_keeps_its_mode(tmp_path, open_umask):
    path = tmp_path / "store.sqlite"
    path.touch(mode=0o640)
    Store.open(f"sqlite:///{path}").close()
    assert _mode(str(path)) == 0o640


def test_a_lock_is_held_by_one_store_at_a_time_and_the_second_gives_up_after_waiting(store_url):
    with Store.open(store_url) as first, Store.open(store_url) as second:
        with first.lock("sync", connection="acme"):
            started = time.monotonic()
            with pytest.raises(Busy) as busy:
                with second.lock("sync", connection="acme", wait_seconds=0.4):
                    pytest.fail("two holders of one lock")
            assert time.monotonic() - started >= 0.4
            assert str(busy.value).startswith("acme: another sync of this connection is working on ")
            assert "this one waited 0.4 s, did nothing and stops" in str(busy.value)
            with second.lock("sync", connection="other"):  # another connection's sync is not held up
                pass
        with second.lock("sync", connection="acme"):  # released with the block
            pass


def test_a_waiting_lock_gets_it_when_the_holder_finishes_within_the_wait(store_url):
    with Store.open(store_url) as first, Store.open(store_url) as second:
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with first.lock("run"):
                held.set()
                release.wait(5)

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(5)
        threading.Timer(0.3, release.set).start()
        try:
            with second.lock("run", wait_seconds=5):
                assert release.is_set()
        finally:
            release.set()
            holder.join()


@pytest.mark.postgres
def test_overlapping_first_registrations_on_postgresql_raise_no_integrity_error(pg_url):
    """(SQLite's writer lock serialises these by itself: the race needs a server.)"""
    stores = [Store.open(pg_url) for _ in range(3)]
    barrier = threading.Barrier(3)

    def register(store: Store) -> None:
        barrier.wait()
        store.ensure_connection("acme", "xero", "T1")

    try:
        for _round in range(5):
            with stores[0].engine.begin() as conn:
                conn.execute(text("DELETE FROM connections"))
            with ThreadPoolExecutor(3) as pool:
                list(pool.map(register, stores))  # re-raises any error
        assert set(stores[0].connection_status()) == {"acme"}
    finally:
        for store in stores:
            store.close()


def _debtor_unique_by_name(store: Store) -> None:
    """A constraint the store does not have, so writing two debtors of one name fails inside the database."""
    with store.engine.begin() as conn:
        conn.execute(text("CREATE UNIQUE INDEX test_debtor_name ON debtors (name)"))


def test_a_database_error_carries_no_sql_parameters_or_personal_data(store, debtor_factory):
    _debtor_unique_by_name(store)
    address = {"lines": (PERSONAL[2],), "postal_code": PERSONAL[3], "city": "Amsterdam", "country": "NL"}
    twins = tuple(
        debtor_factory(platform_id, name=f"{PERSONAL[0]} B.V.", emails=(PERSONAL[1],), address=address)
        for platform_id in ("D1", "D2")
    )

    with pytest.raises(StoreError) as raised:
        store.write_sync_page("acme", SyncPage(debtors=twins))

    error = raised.value
    assert str(error).startswith("acme: the store could not write sync page: a record conflicts with one already")
    shown = "".join(traceback.format_exception(error))  # what a logged traceback would print
    for secret in (*PERSONAL, "INSERT INTO", "[parameters", "SQL:"):
        assert secret not in shown
    assert store.debtor("acme", "D1") is None  # the page was not half written


def test_a_sync_stopped_by_a_database_error_reports_it_without_data(
    store, fake_provider, debtor_factory, invoice_factory, monkeypatch
):
    monkeypatch.setenv("ACME_SECRET", "s3cret")
    from connector.sync import sync_connection

    _debtor_unique_by_name(store)
    twins = (debtor_factory("D1", name=f"{PERSONAL[0]} B.V."), debtor_factory("D2", name=f"{PERSONAL[0]} B.V."))
    fake_provider.script["acme"] = [SyncPage(debtors=twins, invoices=(invoice_factory("I1"),))]
    provider = fake_provider.connect(_settings())

    summary = sync_connection(store, provider, "acme")

    assert summary.error is not None and summary.error.startswith("acme: the store could not write sync page")
    assert PERSONAL[0] not in summary.error and "INSERT" not in summary.error


def _config():
    from connector.config import parse_config

    return parse_config({"connections": [{"name": "acme", "provider": "fake", "tenant": "T1", "client_id": "c",
                                          "client_secret_env": "ACME_SECRET"}]})


def _settings():
    return _config().settings("acme")


def test_a_second_sync_of_a_connection_waits_briefly_then_stops_naming_it(store_url, fake_provider, monkeypatch):
    import connector.sync as sync

    monkeypatch.setenv("ACME_SECRET", "s3cret")
    monkeypatch.setattr(sync, "SYNC_LOCK_WAIT_SECONDS", 0.3)
    fake_provider.script["acme"] = [SyncPage(cursor="c1")]
    with Store.open(store_url) as first, Store.open(store_url) as second:
        first.ensure_connection("acme", "fake", "T1")
        with first.lock("sync", connection="acme"):
            busy = sync.sync_connection(second, fake_provider.connect(_settings()), "acme")
        done = sync.sync_connection(second, fake_provider.connect(_settings()), "acme")

    assert busy.error is not None and busy.error.startswith("acme: another sync of this connection is working on")
    assert "waited 0.3 s, did nothing" in busy.error
    assert done.ok and len(fake_provider.states) == 1  # only the second attempt asked the platform


@pytest.mark.postgres
def test_three_first_syncs_at_once_on_postgresql_end_without_an_integrity_error(
    pg_url, fake_provider, invoice_factory, debtor_factory, monkeypatch
):
    import connector.sync as sync

    monkeypatch.setenv("ACME_SECRET", "s3cret")
    monkeypatch.setattr(sync, "SYNC_LOCK_WAIT_SECONDS", 30)
    page = SyncPage(invoices=tuple(invoice_factory(f"I{n}") for n in range(50)), debtors=(debtor_factory(),),
                    cursor="c1")
    fake_provider.script["acme"] = [page]
    stores = [Store.open(pg_url) for _ in range(3)]
    barrier = threading.Barrier(3)

    def first_sync(store: Store):
        barrier.wait()
        (summary,) = sync.sync_all(_config(), store, tokens=None, connect=lambda s: fake_provider.connect(s))
        return summary

    try:
        with ThreadPoolExecutor(3) as pool:
            summaries = list(pool.map(first_sync, stores))
    finally:
        for store in stores:
            store.close()
    assert [s.error for s in summaries] == [None, None, None]
    assert sorted(s.changed for s in summaries) == [0, 0, 50]  # one stored the page, the others found it stored


HOLDER = """
import sys
from connector.store import Store
with Store.open(sys.argv[1]) as store, store.lock("sync", connection="acme"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_the_lock_holds_across_processes(store_url):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, store_url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with Store.open(store_url) as store, pytest.raises(Busy, match="acme: another sync of this connection"):
            with store.lock("sync", connection="acme", wait_seconds=0.2):
                pass
        holder.stdin.write("done\n")
        holder.stdin.flush()
        assert holder.wait(10) == 0
        with Store.open(store_url) as store, store.lock("sync", connection="acme"):  # free once it ended
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
