"""Errors carry their parts as fields (message, connection, status), so nobody strips or adds a name in text."""

from __future__ import annotations

import pickle

from providers.errors import AuthorizationExpired, DunningError, PlatformError, RateLimited, ReminderRefused


def test_the_parts_are_fields_and_str_names_the_connection_once() -> None:
    exc = PlatformError("the server failed (502)", connection="acme", status=502)
    assert (exc.message, exc.connection, exc.status) == ("the server failed (502)", "acme", 502)
    assert str(exc) == "acme: the server failed (502)"
    assert exc.named("acme") == "acme: the server failed (502)"


def test_named_adds_the_connection_only_when_the_error_has_none_or_another() -> None:
    assert DunningError("no answer").named("beta") == "beta: no answer"
    shared = AuthorizationExpired("the refresh token was refused", connection="acme")
    assert shared.named("acme-2").startswith("acme-2: acme: the refresh token was refused.")


def test_the_message_never_carries_a_secret_and_status_reaches_every_subclass() -> None:
    exc = ReminderRefused("refused: access_token=abcdef123456", connection="acme", status=422)
    assert "abcdef123456" not in exc.message and "abcdef123456" not in str(exc)
    assert exc.status == 422
    assert RateLimited("slow down", connection="x", retry_after=3.0).status is None


def test_an_error_survives_pickling_with_its_fields() -> None:  # the job's worker threads may hand errors around
    exc = pickle.loads(pickle.dumps(PlatformError("gone", connection="acme", status=404)))
    assert (str(exc), exc.status) == ("acme: gone", 404)
