"""The sync driver against a scripted fake adapter: pages stored, counts reported, failures contained."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

import pytest

from connector.config import ConfigError, parse_config
from connector.store import Store
from connector.store.engine import create_store_engine
from connector.sync import failed, sync_all, sync_connection
from providers.base import SyncPage
from providers.errors import AuthorizationExpired, PlatformError, RateLimited
from tests.connector.store import released_schema

ENV = {"ACME_SECRET": "x", "BETA_SECRET": "y"}


def _config(*names: str):
    return parse_config(
        {
            "connections": [
                {"name": n, "provider": "fake", "tenant": "T1", "client_id": "c",
                 "client_secret_env": f"{n.upper()}_SECRET"}
                for n in names
            ]
        }
    )


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def test_pages_are_stored_and_counted(store, fake_provider, invoice_factory, debtor_factory, clock):
    fake_provider.script["acme"] = [
        SyncPage(invoices=(invoice_factory("I1"), invoice_factory("I2")), debtors=(debtor_factory(),), cursor="p1"),
        SyncPage(invoices=(invoice_factory("I3"),), closed_invoice_ids=("I1",), cursor="p2",
                 problems=("invoice 2026-9: no due date",)),
    ]
    provider = fake_provider.connect(_config("acme").settings("acme"))

    summary = sync_connection(store, provider, "acme")

    assert (summary.fetched, summary.changed, summary.closed, summary.api_calls) == (3, 3, 1, 2)
    assert summary.ok and summary.problems == ["invoice 2026-9: no due date"]
    assert store.sync_state("acme").cursor == "p2"
    assert store.connection_status()["acme"].last_sync_at == clock.now


def test_the_next_sync_starts_from_the_stored_cursor_and_full_ignores_it(store, fake_provider, invoice_factory):
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1", version="5"),), cursor="p1")]
    provider = fake_provider.connect(_config("acme").settings("acme"))
    sync_connection(store, provider, "acme")
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1", version="5"),))]
    again = sync_connection(store, provider, "acme")
    sync_connection(store, provider, "acme", full=True)

    first, second, full = fake_provider.states
    assert first.cursor is None and dict(first.open_invoices) == {}
    assert second.cursor == "p1" and dict(second.open_invoices) == {"I1": "5"}
    assert full.cursor is None and full.full is True
    assert (again.fetched, again.changed) == (1, 0)


def test_expired_authorisation_keeps_earlier_pages_and_flags_the_connection(store, fake_provider, invoice_factory):
    fake_provider.script["acme"] = [
        SyncPage(invoices=(invoice_factory("I1"),), cursor="p1"),
        AuthorizationExpired("the refresh token was revoked", connection="acme"),
    ]
    provider = fake_provider.connect(_config("acme").settings("acme"))

    summary = sync_connection(store, provider, "acme")

    assert not summary.ok
    assert summary.error == "acme: the refresh token was revoked. Run: dunning setup --reconnect acme"
    status = store.connection_status()["acme"]
    assert status.needs_reauth and "dunning setup --reconnect acme" in status.reauth_reason
    assert status.last_sync_at is None
    assert store.invoice("acme", "I1") is not None and store.sync_state("acme").cursor == "p1"
    assert summary.api_calls == 2


def test_the_daily_rate_limit_stops_one_connection_and_the_others_go_on(store, fake_provider, invoice_factory):
    fake_provider.script["acme"] = [RateLimited("day limit", connection="acme", for_the_day=True)]
    fake_provider.script["beta"] = [SyncPage(invoices=(invoice_factory("B1", connection="beta"),))]

    acme, beta = sync_all(_config("acme", "beta"), store, tokens=None)

    assert acme.error == (
        "acme: the platform's daily API limit is reached; this connection stops here and the next sync continues "
        "from the last stored page"
    )
    assert beta.ok and beta.fetched == 1
    assert failed([acme, beta])
    assert all(p.api.closed for p in fake_provider.instances)


def test_a_platform_error_or_a_bug_in_one_connection_does_not_stop_the_others(store, fake_provider, invoice_factory):
    fake_provider.script["acme"] = [ZeroDivisionError("adapter bug")]
    fake_provider.script["beta"] = [
        SyncPage(invoices=(invoice_factory("B1", connection="beta", outstanding=Decimal("5.00")),)),
        PlatformError("the platform answered 500 three times", connection="beta", status=500),
    ]

    acme, beta = sync_all(_config("acme", "beta"), store, tokens=None)

    assert acme.error == "acme: sync failed unexpectedly: adapter bug"
    assert beta.error == "beta: the platform answered 500 three times"
    assert beta.fetched == 1 and store.invoice("beta", "B1").outstanding == Decimal("5.00")


def test_one_connection_by_name(store, fake_provider, invoice_factory):
    fake_provider.script["beta"] = [SyncPage(invoices=(invoice_factory("B1", connection="beta"),))]
    (beta,) = sync_all(_config("acme", "beta"), store, tokens=None, connection="beta")
    assert beta.connection == "beta" and beta.ok


def test_a_missing_secret_stops_everything_before_any_platform_call(store, fake_provider, monkeypatch):
    monkeypatch.delenv("BETA_SECRET")
    with pytest.raises(ConfigError, match=r"connections\[1\].client_secret_env: the environment variable BETA_SECRET"):
        sync_all(_config("acme", "beta"), store, tokens=None)
    assert fake_provider.instances == []


def test_an_adapter_that_cannot_start_fails_only_its_connection(store, fake_provider, invoice_factory):
    fake_provider.script["beta"] = [SyncPage(invoices=(invoice_factory("B1", connection="beta"),))]

    def connect(settings):
        if settings.name == "acme":
            raise TypeError("ApiClient() got an unexpected keyword argument")
        return fake_provider.connect(settings)

    acme, beta = sync_all(_config("acme", "beta"), store, tokens=None, connect=connect)

    assert acme.error == "acme: the adapter could not be started: ApiClient() got an unexpected keyword argument"
    assert beta.ok and beta.fetched == 1


# --- the periodic full re-read ----------------------------------------------------------------------------------

WEEK = timedelta(days=7)


def _synced(store, provider, **kwargs):
    summary = sync_connection(store, provider, "acme", **kwargs)
    return summary, store.connection_status()["acme"].last_full_sync_at


def test_a_first_sync_reads_everything_and_counts_as_the_last_full_sync(store, fake_provider, invoice_factory, clock):
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="p1")]
    provider = fake_provider.connect(_config("acme").settings("acme"))

    summary, last_full = _synced(store, provider, full_every=WEEK)

    (state,) = fake_provider.states
    assert state.cursor is None and state.full is False  # no cursor: the adapter reads the whole open set anyway
    assert summary.full and summary.as_json()["full"] is True
    assert last_full == clock.now


def test_a_full_sync_runs_once_the_last_completed_one_is_older_than_the_period(
    store, fake_provider, invoice_factory, clock
):
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="p1")]
    provider = fake_provider.connect(_config("acme").settings("acme"))
    _, first_full = _synced(store, provider, full_every=WEEK)

    clock.now += WEEK - timedelta(seconds=1)
    within, last_full = _synced(store, provider, full_every=WEEK)
    assert not within.full and fake_provider.states[-1].full is False and fake_provider.states[-1].cursor == "p1"
    assert last_full == first_full  # an incremental sync does not count

    clock.now += timedelta(seconds=1)
    due, last_full = _synced(store, provider, full_every=WEEK)
    assert due.full and fake_provider.states[-1].full is True and fake_provider.states[-1].cursor is None
    assert last_full == clock.now


def test_an_interrupted_full_sync_is_not_recorded_and_the_next_sync_is_full_again(
    store, fake_provider, invoice_factory, clock
):
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="p1")]
    provider = fake_provider.connect(_config("acme").settings("acme"))
    _, first_full = _synced(store, provider, full_every=WEEK)

    clock.now += WEEK
    fake_provider.script["acme"] = [
        SyncPage(invoices=(invoice_factory("I2"),), cursor="p2"),
        RateLimited("day limit", connection="acme", for_the_day=True),
    ]
    interrupted, last_full = _synced(store, provider, full_every=WEEK)
    assert interrupted.full and not interrupted.ok
    assert last_full == first_full and store.invoice("acme", "I2") is not None  # its page is kept all the same

    clock.now += timedelta(hours=1)
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I2"),), cursor="p3")]
    resumed, last_full = _synced(store, provider, full_every=WEEK)
    assert resumed.full and fake_provider.states[-1].full is True  # not resumed as incremental from cursor p2
    assert resumed.ok and last_full == clock.now


def test_a_period_of_zero_never_forces_a_full_sync_but_full_does(store, fake_provider, invoice_factory, clock):
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="p1")]
    provider = fake_provider.connect(_config("acme").settings("acme"))
    _synced(store, provider)

    clock.now += timedelta(days=400)
    later, _ = _synced(store, provider)
    assert not later.full and fake_provider.states[-1].full is False

    forced, last_full = _synced(store, provider, full=True)
    assert forced.full and fake_provider.states[-1].full is True and last_full == clock.now


def test_sync_all_takes_the_period_from_the_config(store, fake_provider, invoice_factory, clock):
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="p1")]
    every_two_days = parse_config(_config("acme").model_dump(mode="json") | {"sync": {"full_every_days": 2}})

    runs = []
    for days in (0, 1, 1):
        clock.now += timedelta(days=days)
        (summary,) = sync_all(every_two_days, store, tokens=None)
        runs.append(summary.full)

    assert runs == [True, False, True]
    assert [s.full for s in fake_provider.states] == [False, False, True]


def test_a_store_that_synced_before_the_full_sync_time_was_kept_gets_a_full_sync(
    store_url, fake_provider, invoice_factory, clock
):
    """A store from schema version 2 has a cursor but no record of a full sync: the next sync re-reads all."""
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        released_schema.build(conn, 2)
        conn.execute(released_schema.connections_v1.insert().values(
            name="acme", provider="fake", tenant="T1", sync_cursor="p1", needs_reauth=False, created_at=clock.now))
    engine.dispose()

    with Store.open(store_url, clock=clock) as store:
        assert store.connection_status()["acme"].last_full_sync_at is None
        fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="p2")]
        provider = fake_provider.connect(_config("acme").settings("acme"))
        summary, last_full = _synced(store, provider, full_every=WEEK)

    assert summary.full and fake_provider.states[-1].full is True and last_full == clock.now


def test_an_unexpected_error_never_carries_a_token_into_the_summary(store, fake_provider):
    fake_provider.script["acme"] = [KeyError("Authorization: Bearer eyJhbGciOi.secret-access-token-123")]

    (acme,) = sync_all(_config("acme"), store, tokens=None)

    assert acme.error.startswith("acme: sync failed unexpectedly: ")
    assert "secret-access-token" not in acme.error and "***" in acme.error


def test_an_invoice_due_before_its_issue_date_is_stored_and_flagged(store, fake_provider, invoice_factory, caplog):
    odd = invoice_factory("I1", issue_date=date(2026, 10, 5), due_date=date(2026, 10, 1))
    fake_provider.script["acme"] = [SyncPage(invoices=(odd,))]
    provider = fake_provider.connect(_config("acme").settings("acme"))

    with caplog.at_level(logging.WARNING, logger="connector.sync"):
        summary = sync_connection(store, provider, "acme")

    assert summary.ok and store.invoice("acme", "I1") == odd
    assert "acme: invoice 2026-I1: due date 2026-10-01 is before its issue date 2026-10-05" in caplog.messages


def test_full_syncs_record_the_platforms_own_warnings_and_incremental_ones_do_not_ask(
    store, fake_provider, invoice_factory
):
    fake_provider.platform_warnings = ["Moneybird's workflow 'Standaard' sends reminders automatically"]
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="p1")]
    provider = fake_provider.connect(_config("acme").settings("acme"))

    first = sync_connection(store, provider, "acme")  # the first sync counts as full
    fake_provider.script["acme"] = []
    fake_provider.platform_warnings = []
    second = sync_connection(store, provider, "acme")

    assert first.platform_warnings == ["Moneybird's workflow 'Standaard' sends reminders automatically"]
    assert second.platform_warnings is None and fake_provider.warnings_asked == 1  # incremental: not asked
    assert list(store.connection_status()["acme"].platform_warnings) == first.platform_warnings  # kept till rechecked

    sync_connection(store, provider, "acme", full=True)
    assert store.connection_status()["acme"].platform_warnings == ()


def test_a_failed_settings_check_is_a_warning_not_a_failed_sync(store, fake_provider, invoice_factory):
    fake_provider.platform_warnings = PlatformError("workflows.json answered 503", connection="acme", status=503)
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="p1")]
    provider = fake_provider.connect(_config("acme").settings("acme"))

    summary = sync_connection(store, provider, "acme")

    assert summary.ok
    # `status` shows it as "acme: warning: ...": the connection is named there, once
    assert summary.platform_warnings == ["could not check the platform's own settings: workflows.json answered 503"]


class _Recorder:
    """A progress observer that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def started(self, connection: str, task: str) -> None:
        self.events.append(("started", connection, task))

    def page(self, connection: str, *, invoices: int, debtors: int, calls: int) -> None:
        self.events.append(("page", connection, invoices, debtors, calls))

    def finished(self, connection: str, task: str, *, ok: bool) -> None:
        self.events.append(("finished", connection, task, ok))


def test_each_stored_page_is_reported_with_running_totals(store, fake_provider, invoice_factory, debtor_factory):
    fake_provider.script["acme"] = [
        SyncPage(invoices=(invoice_factory("I1"), invoice_factory("I2")), debtors=(debtor_factory(),), cursor="p1"),
        SyncPage(invoices=(invoice_factory("I3"),), cursor="p2"),
    ]
    progress = _Recorder()

    sync_all(_config("acme"), store, tokens=None, progress=progress)  # type: ignore[arg-type]

    assert progress.events == [("started", "acme", "sync"), ("page", "acme", 2, 1, 1), ("page", "acme", 3, 1, 2),
                               ("finished", "acme", "sync", True)]


def test_invoices_the_platform_cannot_account_for_fail_the_run_by_name(store, fake_provider, invoice_factory):
    fake_provider.script["acme"] = [
        SyncPage(invoices=(invoice_factory("I1"),), cursor="p1"),
        SyncPage(anomalies=("invoice id I9: the platform no longer lists it as open but did not return it when asked "
                            "by id; kept open",)),
    ]

    summary = sync_connection(store, fake_provider.connect(_config("acme").settings("acme")), "acme")

    assert summary.ok and summary.anomalies and "I9" in summary.anomalies[0]
    assert failed([summary]) and summary.as_json()["anomalies"] == summary.anomalies


def test_ctrl_c_says_what_was_kept_and_stops(store, fake_provider, invoice_factory, caplog):
    provider = fake_provider.connect(_config("acme").settings("acme"))

    def pages(state):
        yield SyncPage(invoices=(invoice_factory("I1"), invoice_factory("I2")), cursor="p1")
        raise KeyboardInterrupt

    provider.sync = pages  # type: ignore[method-assign]

    with caplog.at_level(logging.ERROR), pytest.raises(KeyboardInterrupt):
        sync_connection(store, provider, "acme")

    assert "acme: interrupted; 2 invoices and 0 debtors already stored are kept" in caplog.text
    assert store.sync_state("acme").cursor == "p1"


def test_a_full_sync_that_left_invoices_unaccounted_for_is_not_recorded_as_complete(
    store, fake_provider, invoice_factory, clock
):
    fake_provider.script["acme"] = [SyncPage(invoices=(invoice_factory("I1"),), cursor="p1")]
    provider = fake_provider.connect(_config("acme").settings("acme"))
    _, first_full = _synced(store, provider, full_every=WEEK)

    clock.now += WEEK
    fake_provider.script["acme"] = [SyncPage(anomalies=("invoice id I1: … kept open",), cursor="p2")]
    doubtful, last_full = _synced(store, provider, full_every=WEEK)
    assert doubtful.full and doubtful.ok and failed([doubtful]) and last_full == first_full

    clock.now += timedelta(hours=1)
    fake_provider.script["acme"] = [SyncPage(cursor="p3")]
    _synced(store, provider, full_every=WEEK)
    assert fake_provider.states[-1].full is True  # the evidence is sought again by the next sync


def test_a_platform_warning_names_the_connection_once(caplog: pytest.LogCaptureFixture) -> None:
    from connector.sync import _platform_warnings
    from providers.errors import PlatformError

    class Unreachable:
        def warnings(self) -> list[str]:
            raise PlatformError("the workflows endpoint answered 503", connection="acme", status=503)

    caplog.set_level("WARNING")
    (warning,) = _platform_warnings(Unreachable(), "acme")  # type: ignore[arg-type]
    assert "acme" not in warning and "503" in warning
    assert [r.getMessage().count("acme") for r in caplog.records] == [1]
