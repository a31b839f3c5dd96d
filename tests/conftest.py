"""Fixtures shared across the suite: a store URL on SQLite and on PostgreSQL.

PostgreSQL tests skip with the reason when no server answers on 127.0.0.1:5432, except under CI=true where a
missing server is a failure (CI must prove the PostgreSQL path, not skip it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy

from connector.models import Debtor, Invoice

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
