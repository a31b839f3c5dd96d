"""The store's own error: a problem with the local database, never with a platform."""

from providers.errors import DunningError


class StoreError(DunningError):
    """The store cannot do what was asked (unknown connection or invoice, a schema too new, …)."""


class StoreUnavailable(StoreError):
    """The store `store.url` names cannot be opened (a missing folder, not a database, no permission, a server that
    does not answer): nothing was read or written, and the fix is in the configuration or the machine, so the CLI
    exits 2 (cli.md) rather than 1 (a partial failure)."""
