"""Fixtures shared across the suite: a store URL on SQLite and on PostgreSQL, realistic invoices and debtors,
and a scripted fake provider for core tests.

PostgreSQL tests skip with the reason when no server answers on 127.0.0.1:5432, except under CI=true where a
missing server is a failure (CI must prove the PostgreSQL path, not skip it).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar, Literal

import pytest
import sqlalchemy
from pydantic import BaseModel, ConfigDict

from connector import plugins
from connector.models import Debtor, Invoice
from providers.base import (
    Capabilities,
    ConnectionSettings,
    OAuthEndpoints,
    Provider,
    Receipt,
    ReminderRequest,
    SyncPage,
    SyncState,
    Tenant,
)

PG_SERVER = os.environ.get("DUNNING_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_schema_url() -> Iterator[str]:
    """A fresh schema per test, dropped afterwards, so tests never see each other's rows."""
    schema_name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_SERVER)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema_name}"')
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {PG_SERVER}: {str(exc).splitlines()[0]}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema_name}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema_name}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
    else:
        yield from _postgres_schema_url()


def make_debtor(platform_id: str = "D1", *, connection: str = "acme", **changes: object) -> Debtor:
    fields: dict[str, object] = {
        "connection": connection,
        "platform_id": platform_id,
        "name": f"Debtor {platform_id} B.V.",
        "kind": "business",
        "emails": ("debiteuren@example.nl",),
        "address": {"lines": ("Keizersgracht 1",), "postal_code": "1015 CJ", "city": "Amsterdam", "country": "NL"},
        "coc_number": "12345678",
        "version": "1",
    }
    return Debtor.model_validate(fields | changes)


def make_invoice(platform_id: str = "I1", *, connection: str = "acme", **changes: object) -> Invoice:
    fields: dict[str, object] = {
        "connection": connection,
        "platform_id": platform_id,
        "number": f"2026-{platform_id}",
        "debtor_id": "D1",
        "issue_date": date(2026, 9, 1),
        "due_date": date(2026, 10, 1),
        "currency": "EUR",
        "total": Decimal("1210.00"),
        "amount_paid": Decimal("0.00"),
        "outstanding": Decimal("1210.00"),
        "status": "open",
        "last_modified": datetime(2026, 9, 1, 12, 0, tzinfo=UTC),
        "version": "1",
    }
    return Invoice.model_validate(fields | changes)


@pytest.fixture
def debtor_factory() -> Callable[..., Debtor]:
    """Build a realistic Dutch business debtor; keyword arguments override fields."""
    return make_debtor


@pytest.fixture
def invoice_factory() -> Callable[..., Invoice]:
    """Build an open EUR invoice of debtor D1; keyword arguments override fields."""
    return make_invoice


class FakeApi:
    """Stands in for `providers.http.ApiClient`: only the call counter the sync reports."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region: Literal["nl", "be"] = "nl"


class FakeProvider(Provider):
    """A scripted adapter for core tests (not a platform): `script[connection]` lists the pages it yields, an
    exception in the list is raised at that point; each page costs one API call."""

    name = "fake"
    capabilities = Capabilities(native_reminder=True, custom_message=True, consolidated_reminders=False)
    Options = FakeOptions
    script: ClassVar[dict[str, list[SyncPage | Exception]]] = {}
    states: ClassVar[list[SyncState]] = []
    instances: ClassVar[list[FakeProvider]] = []
    platform_warnings: ClassVar[list[str] | Exception] = []
    warnings_asked: ClassVar[int] = 0

    @classmethod
    def connect(cls, settings: ConnectionSettings, **_: object) -> FakeProvider:
        provider = cls(settings, FakeApi())  # type: ignore[arg-type]
        cls.instances.append(provider)
        return provider

    @classmethod
    def oauth(cls, settings: ConnectionSettings) -> OAuthEndpoints:
        return OAuthEndpoints(authorize_url="https://fake.test/authorize", token_url="https://fake.test/token",
                              scopes=("read",), pkce=True)

    @classmethod
    def http_profile(cls, settings: ConnectionSettings) -> object:  # type: ignore[override]
        raise NotImplementedError("the fake never makes HTTP calls")

    def list_tenants(self) -> list[Tenant]:
        return [Tenant(id=self.settings.tenant or "T1", name="Fake B.V.")]

    def sync(self, state: SyncState) -> Iterator[SyncPage]:
        self.states.append(state)
        for item in self.script.get(self.settings.name, []):
            self.api.calls += 1
            if isinstance(item, Exception):
                raise item
            yield item

    def fetch_pdf(self, invoice: Invoice) -> bytes:
        raise NotImplementedError

    def send_reminder(self, request: ReminderRequest) -> Receipt:
        raise NotImplementedError

    def add_note(self, invoice: Invoice, text: str, *, idempotency_key: str) -> Receipt:
        raise NotImplementedError

    def warnings(self) -> list[str]:
        type(self).warnings_asked += 1
        if isinstance(self.platform_warnings, Exception):
            raise self.platform_warnings
        return list(self.platform_warnings)


@pytest.fixture
def fake_provider(monkeypatch: pytest.MonkeyPatch) -> type[FakeProvider]:
    """Installs FakeProvider as provider `fake` (next to the real entry points) with an empty script."""
    FakeProvider.script = {}
    FakeProvider.states = []
    FakeProvider.instances = []
    FakeProvider.platform_warnings = []
    FakeProvider.warnings_asked = 0
    real = plugins.installed

    def installed(group: str) -> dict[str, plugins.Loadable]:
        found = real(group)
        if group == plugins.PROVIDERS:
            found = found | {"fake": SimpleNamespace(name="fake", load=lambda: FakeProvider)}
        return found

    monkeypatch.setattr(plugins, "installed", installed)
    return FakeProvider


@pytest.fixture(autouse=True)
def _drop_dunning_log_handlers() -> Iterator[None]:
    """`setup_logging` (run by every CLI invocation) binds a handler to the current stderr; remove it afterwards so
    later tests never log into a closed capture stream."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_dunning_handler", False)]:
        root.removeHandler(handler)
