"""Connections: registration, re-authorisation flags, status rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.store import StoreError
from providers.base import SyncPage


def test_status_shows_last_sync_reauth_and_open_count(store, invoice_factory, clock):
    store.write_sync_page("acme", SyncPage(invoices=(invoice_factory("I1"), invoice_factory("I2"))))
    store.write_sync_page("acme", SyncPage(closed_invoice_ids=("I2",)))
    store.mark_synced("acme")
    clock.now += timedelta(days=1)
    store.mark_needs_reauth("acme", "refresh token expired")

    status = store.connection_status()["acme"]
    assert (status.provider, status.tenant, status.open_invoices) == ("fake", "T1", 1)
    assert status.last_sync_at == clock.now - timedelta(days=1)
    assert (status.needs_reauth, status.reauth_reason) == (True, "refresh token expired")

    store.mark_synced("acme")
    assert store.connection_status()["acme"].needs_reauth is False


def test_a_connection_name_cannot_switch_to_another_tenant(store):
    store.ensure_connection("acme", "fake", "T1")  # same again: fine
    with pytest.raises(StoreError, match="acme: the store holds data of fake tenant T1"):
        store.ensure_connection("acme", "fake", "T2")
    with pytest.raises(StoreError, match="unknown connection"):
        store.mark_synced("ghost")
