"""The OAuth steps of `dunning setup`: the consent URL (with `state` and PKCE) and the code exchange. The client
itself comes from the HTTP machinery (`providers.http.oauth_client`), the same one that refreshes tokens later."""

from __future__ import annotations

import datetime as dt

import httpx

from connector.setup.errors import SetupFailed
from providers.base import ConnectionSettings, OAuthEndpoints, Token
from providers.errors import redact
from providers.http import authlib_client, oauth_client


def authorization_url(settings: ConnectionSettings, endpoints: OAuthEndpoints, *, state: str,
                      code_verifier: str | None) -> str:
    with oauth_client(settings, endpoints, authorize=True) as client:
        url, _ = client.create_authorization_url(
            endpoints.authorize_url, state=state, code_verifier=code_verifier, **dict(endpoints.extra_authorize_params)
        )
    return str(url)


def exchange_code(settings: ConnectionSettings, endpoints: OAuthEndpoints, *, code: str, code_verifier: str | None,
                  transport: httpx.BaseTransport | None, now: dt.datetime) -> Token:
    _, OAuthError = authlib_client()
    try:
        with oauth_client(settings, endpoints, transport=transport, authorize=True) as client:
            extra = {"code_verifier": code_verifier} if code_verifier else {}
            payload = dict(client.fetch_token(endpoints.token_url, code=code, **extra))
        return Token.from_response(payload, now=now)
    except OAuthError as exc:
        hint = " (check the client id and the secret in the environment variable)" if exc.error == "invalid_client" \
            else " (the code may have expired: run dunning setup again and finish within a few minutes)" \
            if exc.error == "invalid_grant" else ""
        detail = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
        raise SetupFailed(f"the platform refused to exchange the authorisation code ({redact(detail)}){hint}",
                          connection=settings.name) from None
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise SetupFailed(f"exchanging the authorisation code failed ({type(exc).__name__}); try again",
                          connection=settings.name) from None
