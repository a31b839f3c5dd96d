"""The state store (SQLAlchemy Core; SQLite by default, PostgreSQL by URL)."""

from connector.store.errors import StoreError
from connector.store.store import ConnectionStatus, OutboxEntry, PageWritten, Store

__all__ = ["ConnectionStatus", "OutboxEntry", "PageWritten", "Store", "StoreError"]
