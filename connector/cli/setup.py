"""`dunning setup`: the OAuth wizard that connects an administration (the wizard itself: `connector.setup`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from connector.cli.base import app, application, exit_codes
from connector.config import ConfigError
from connector.logs import error_line
from providers.errors import DunningError


@app.command()
def setup(
    ctx: typer.Context,
    provider: Annotated[
        str | None, typer.Option("--provider", metavar="PLATFORM", help="exact, moneybird or xero.")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="The connection's name in the config (default: the platform)."),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", metavar="ID", help="The app's OAuth client id.")
    ] = None,
    client_secret_env: Annotated[
        str | None,
        typer.Option("--client-secret-env", metavar="VARIABLE", help="The environment variable holding the app's "
                     "client secret (the secret never goes into the config). Leave out for an app without one."),
    ] = None,
    redirect_uri: Annotated[
        str | None,
        typer.Option("--redirect-uri", metavar="URL", help="The redirect URI registered with the app, exactly "
                     "(default: http://localhost:8765/callback; Exact Online needs https://localhost:PORT/...)."),
    ] = None,
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", metavar="ID", help="Connect this tenant (repeatable): a Xero tenant id, Moneybird "
                     "administration id or Exact division."),
    ] = None,
    all_tenants: Annotated[bool, typer.Option("--all-tenants", help="Connect every tenant the token reaches.")] = False,
    api_url: Annotated[
        str | None, typer.Option("--api-url", metavar="URL", help="Override the platform's API base URL.")
    ] = None,
    authorize_url: Annotated[
        str | None, typer.Option("--authorize-url", metavar="URL", help="Override the authorize URL.")
    ] = None,
    token_url: Annotated[str | None, typer.Option("--token-url", metavar="URL", help="Override the token URL.")] = None,
    no_browser: Annotated[
        bool,
        typer.Option("--no-browser", help="Print the authorization URL alone on stdout instead of opening a browser; "
                     "then wait for the redirect, or paste the full redirected URL on stdin."),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", show_default=False,
                     help="How long to wait for the platform's redirect (default: 300)."),
    ] = 300.0,
    reconnect: Annotated[
        str | None,
        typer.Option("--reconnect", metavar="NAME", help="Re-authorise an existing connection (and the connections "
                     "sharing its tokens)."),
    ] = None,
    allow_remote_redirect: Annotated[
        bool,
        typer.Option("--allow-remote-redirect", help="Accept a redirect URI on another machine (that machine then "
                     "receives the authorisation code; paste the URL the browser ends on)."),
    ] = False,
) -> None:
    """OAuth wizard: connect an administration and add or update its connection in the config file."""
    from connector.setup import SetupFailed, SetupOptions

    app_ = application(ctx)
    options = SetupOptions(
        provider=provider, name=name, client_id=client_id, client_secret_env=client_secret_env,
        redirect_uri=redirect_uri, tenants=tuple(tenant or ()), all_tenants=all_tenants, api_url=api_url,
        authorize_url=authorize_url, token_url=token_url, no_browser=no_browser, timeout=timeout, reconnect=reconnect,
        allow_remote_redirect=allow_remote_redirect,
    )
    interactive = sys.stdin.isatty()
    with exit_codes():
        try:
            result, in_keyring = app_.setup(
                options,
                ask=(lambda question, default: typer.prompt(question, default=default, err=True))
                if interactive else None,
                paste=sys.stdin if no_browser or interactive else None,
            )
        except SetupFailed as exc:  # its own exit code: 2 when nothing touched a platform
            error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
    if reconnect:
        try:
            app_.mark_reauthorised(result.connections)
        except (ConfigError, DunningError) as exc:  # the tokens are saved: the next sync clears the flag anyway
            error_line(f"note: the store still shows these connections as needing re-authorisation until the next "
                       f"sync ({exc})", level="warning")
    tenants = ", ".join(f"{t.name} ({t.id})" for t in result.tenants)
    done = "Re-authorised" if reconnect else "Connected"
    error_line(f"{done} {', '.join(result.connections)} for {tenants}; saved in {app_.config_path}. Next: dunning sync",
               level="info")
    if in_keyring:
        error_line("The key to the stored tokens is in your OS keyring: the scheduled job must run where that keyring "
                   "is unlocked (cron usually is not). Otherwise set DUNNING_TOKEN_STORE=file for setup and the job "
                   "alike, and connect again.", level="warning")
