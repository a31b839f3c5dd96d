"""The state store (SQLAlchemy Core; SQLite by default, PostgreSQL by URL)."""

from connector.store.errors import StoreError
from connector.store.locks import Busy
from connector.store.reads import InvoiceRecord
from connector.store.store import ConnectionStatus, OutboxEntry, PageWritten, Store

__all__ = ["Busy", "ConnectionStatus", "InvoiceRecord", "OutboxEntry", "PageWritten", "Store", "StoreError"]
