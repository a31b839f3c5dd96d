"""Exact Online: OAuth2 with a 10-minute access token, the REST API's sync/bulk feeds, reminders by re-sent invoice."""

from providers.exact.provider import ExactOptions, ExactProvider

__all__ = ["ExactOptions", "ExactProvider"]
