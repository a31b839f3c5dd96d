"""The store's own error: a problem with the local database, never with a platform."""

from providers.errors import DunningError


class StoreError(DunningError):
    """The store cannot do what was asked (unknown connection or invoice, a schema too new, …)."""
