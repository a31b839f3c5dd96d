"""Moneybird: OAuth2, the synchronization endpoints, reminders through Moneybird's own mailing."""

from providers.moneybird.provider import MoneybirdOptions, MoneybirdProvider

__all__ = ["MoneybirdOptions", "MoneybirdProvider"]
