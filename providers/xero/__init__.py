"""Xero: OAuth2 with PKCE and rotating refresh tokens, the Accounting API, reminders by Xero's own invoice e-mail."""

from providers.xero.provider import XeroOptions, XeroProvider

__all__ = ["XeroOptions", "XeroProvider"]
