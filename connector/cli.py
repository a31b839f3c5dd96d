"""The `dunning` command line (contract: shared/reference/cli.md). Thin: parse, call one function, print.

Exit codes: 0 all done; 1 partial failure (some connection, action or case failed); 2 usage or configuration error
(nothing touched a platform). `--json` prints JSON Lines on stdout and nothing else; logs and errors go to stderr.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import typer.core
from rich import box
from rich.console import Console
from rich.table import Table

from connector.config import DEFAULT_PATH, Config, ConfigError, load_config, write_starter_config
from connector.logs import setup_logging
from connector.store import Store
from providers.base import TokenStore
from providers.errors import DunningError

_UsageError: type[Exception] = typer.BadParameter.__mro__[1]
"""click's UsageError (vendored by newer typer, so reached through its public subclass)."""


@contextmanager
def _usage_errors_on_one_line() -> Iterator[None]:
    try:
        yield
    except _UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # plain `dunning`: the help itself
            raise
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "dunning"  # type: ignore[attr-defined]
        line = f"{command}: {exc.format_message()} (see: {command} --help)"  # type: ignore[attr-defined]
        exc.show = lambda file=None: typer.echo(line, err=True)  # type: ignore[attr-defined]
        raise


class _OneLineUsageErrors(typer.core.TyperGroup):
    """A bad flag or argument is one stderr line naming the command (cli.md: errors one line each), exit 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_errors_on_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _usage_errors_on_one_line():
            return super().invoke(ctx)


app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="dunning",
    help="Dunning Connector: syncs open invoices from Exact Online, Moneybird and Xero, reminds through the "
    "platform itself and hands late cases to a collection agency.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help and one-line errors; help texts may show TOML's [tables] verbatim
)


class LogFormat(StrEnum):
    PLAIN = "plain"
    JSON = "json"


@dataclass(frozen=True)
class Options:
    """The global options, handed to every command through the typer context."""

    config_path: Path
    log_format: LogFormat


def _parse_as_of(value: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-02")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in the calendar; use YYYY-MM-DD") from None


AsOf = Annotated[
    date | None,
    typer.Option(
        "--as-of",
        parser=_parse_as_of,
        metavar="YYYY-MM-DD",
        help="Act as if today were this date (default: today).",
    ),
]
ConnectionName = Annotated[str | None, typer.Option("--connection", help="Only this connection (its name).")]
Json = Annotated[bool, typer.Option("--json", help="JSON Lines on stdout, one object per line.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would happen; write nothing to a platform.")]


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="DUNNING_CONFIG",
            help=f"The config file (default: $DUNNING_CONFIG, else ./{DEFAULT_PATH}).",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log lines on stderr as plain text or JSON.")
    ] = LogFormat.PLAIN,
) -> None:
    ctx.obj = Options(config_path=config or DEFAULT_PATH, log_format=log_format)
    setup_logging(log_format.value)


# --- helpers ------------------------------------------------------------------------------------------------------


def _options(ctx: typer.Context) -> Options:
    options: Options = ctx.obj
    return options


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Configuration problems → each on its own stderr line, exit 2; other known errors → stderr, exit 1."""
    try:
        yield
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2) from None
    except DunningError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _config(ctx: typer.Context) -> Config:
    return load_config(_options(ctx).config_path)


def _not_built(command: str, issue: str) -> NoReturn:
    typer.echo(f"dunning {command}: not built yet (see the open issue for {issue})", err=True)
    raise typer.Exit(1)


def _print_json_lines(objects: Iterable[Mapping[str, Any]]) -> None:
    for obj in objects:
        typer.echo(json.dumps(obj, default=str, ensure_ascii=False))


def _print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row[c]) for c in columns))
    Console().print(table)


# --- commands -----------------------------------------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config file.")] = False,
) -> None:
    """Write a commented starter config (to --config, default ./dunning.toml)."""
    path = _options(ctx).config_path
    with _exit_codes():
        write_starter_config(path, force=force)
    typer.echo(f"Wrote {path}. Fill in [creditor], then connect an administration with: dunning setup")


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
) -> None:
    """OAuth wizard: connect an administration and add or update its connection in the config file."""
    import sys

    from connector.setup import SetupFailed, SetupOptions, run_setup
    from providers.tokens import KeyringTokenStore, default_state_dir, open_token_store

    config_path = _options(ctx).config_path
    options = SetupOptions(
        provider=provider, name=name, client_id=client_id, client_secret_env=client_secret_env,
        redirect_uri=redirect_uri, tenants=tuple(tenant or ()), all_tenants=all_tenants, api_url=api_url,
        authorize_url=authorize_url, token_url=token_url, no_browser=no_browser, timeout=timeout, reconnect=reconnect,
    )
    interactive = sys.stdin.isatty()
    opened: list[TokenStore] = []

    def token_store() -> TokenStore:  # opened only once there is a token to save
        opened.append(open_token_store(default_state_dir(config_path)))
        return opened[-1]

    with _exit_codes():
        try:
            result = run_setup(
                options,
                config_path=config_path,
                tokens=token_store,
                ask=(lambda question, default: typer.prompt(question, default=default, err=True))
                if interactive else None,
                paste=sys.stdin if no_browser or interactive else None,
            )
        except SetupFailed as exc:  # its own exit code: 2 when nothing touched a platform
            typer.echo(str(exc), err=True)
            raise typer.Exit(exc.exit_code) from None
    if reconnect:
        _clear_reauth_flags(config_path, result.connections)
    tenants = ", ".join(f"{t.name} ({t.id})" for t in result.tenants)
    done = "Re-authorised" if reconnect else "Connected"
    typer.echo(f"{done} {', '.join(result.connections)} for {tenants}; saved in {config_path}. Next: dunning sync",
               err=True)
    if any(isinstance(store, KeyringTokenStore) for store in opened):
        typer.echo("The key to the stored tokens is in your OS keyring: the scheduled job must run where that keyring "
                   "is unlocked (cron usually is not). Otherwise set DUNNING_TOKEN_STORE=file for setup and the job "
                   "alike, and connect again.", err=True)


def _clear_reauth_flags(config_path: Path, names: Sequence[str]) -> None:
    """The last sync flagged these as needing re-authorisation; setup just renewed it, so `status` must say so now."""
    try:
        config = load_config(config_path)
        with Store.open(config.store_url) as store:
            store.mark_reauthorised(names)
    except (ConfigError, DunningError) as exc:  # the tokens are saved: the next sync clears the flag anyway
        typer.echo(f"note: the store still shows these connections as needing re-authorisation until the next "
                   f"sync ({exc})", err=True)


@app.command()
def status(ctx: typer.Context, json_out: Json = False) -> None:
    """Connections, tenants, last sync and whether one needs re-authorisation."""
    from providers.tokens import default_state_dir, open_token_store

    with _exit_codes():
        config = _config(ctx)
        state_dir = default_state_dir(config.path or _options(ctx).config_path)
        tokens, problem = None, None
        if state_dir.exists():  # status creates nothing
            try:
                tokens = open_token_store(state_dir)
            except DunningError as exc:  # e.g. the keyring is out of reach: still show what the store knows
                problem = str(exc)
        with Store.open(config.store_url) as store:
            rows = _status_rows(config, store, tokens, problem)
    if json_out:
        _print_json_lines(rows)
    elif not rows:
        typer.echo(f"No connections yet in {config.path}. Connect an administration with: dunning setup")
    else:
        _print_status(rows)


def _print_status(rows: list[dict[str, Any]]) -> None:
    """A row per connection, folded rather than cut at any terminal width; then what needs attention, in full
    (a `dunning setup --reconnect NAME` cut short would be no help)."""
    table = Table(title="Connections", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("name", "provider", "tenant", "last sync (UTC)", "token expires (UTC)", "open", "authorisation"):
        table.add_column(column, overflow="fold")
    for row in rows:
        expires = _moment(row["token_expires_at"]) or ("no expiry" if row["authorisation"] == "ok" else "")
        authorisation = "re-authorise" if row["needs_reauth"] else row["authorisation"]
        table.add_row(row["name"], row["provider"], row["tenant"] or "", _moment(row["last_sync_at"]) or "never",
                      expires, str(row["open_invoices"]), authorisation)
    Console().print(table)
    for row in rows:
        if row["attention"]:
            typer.echo(f"{row['name']}: {row['attention']}")
        for warning in row["platform_warnings"]:
            typer.echo(f"{row['name']}: warning: {warning}")


def _moment(iso: str | None) -> str | None:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M") if iso else None


def _status_rows(
    config: Config, store: Store, tokens: TokenStore | None = None, token_problem: str | None = None
) -> list[dict[str, Any]]:
    from connector.setup import authorisation_state, reconnect_command

    known = store.connection_status()
    now = datetime.now(UTC)
    rows = []
    for connection in config.connections:
        state = known.get(connection.name)
        owner = connection.token_key or connection.name  # connections sharing one consent share its tokens
        authorisation = authorisation_state(owner, tokens, now=now, store_problem=token_problem)
        needs_reauth = bool(state and state.needs_reauth) or authorisation.needs_reauth
        reason = state.reauth_reason if state and state.needs_reauth else authorisation.reason
        rows.append(
            {
                "name": connection.name,
                "provider": connection.provider,
                "tenant": connection.tenant,
                "last_sync_at": state.last_sync_at.isoformat() if state and state.last_sync_at else None,
                "last_full_sync_at": state.last_full_sync_at.isoformat() if state and state.last_full_sync_at else None,
                "token_expires_at": authorisation.expires_at.isoformat() if authorisation.expires_at else None,
                "authorisation": "needs re-authorisation" if needs_reauth else authorisation.state,
                "open_invoices": state.open_invoices if state else 0,
                "platform_warnings": list(state.platform_warnings) if state else [],
                "needs_reauth": needs_reauth,
                "reauth_command": reconnect_command(connection.name) if needs_reauth else None,
                "attention": _with_command(reason, reconnect_command(connection.name)) if needs_reauth else reason,
            }
        )
    return rows


def _with_command(reason: str | None, command: str) -> str:
    if reason and command in reason:
        return reason
    return f"{reason or 'needs re-authorisation'}. Run: {command}"


@app.command()
def sync(
    ctx: typer.Context,
    connection: ConnectionName = None,
    full: Annotated[
        bool,
        typer.Option("--full", help="Ignore the stored cursors and re-read everything now (also done every "
                     "[sync] full_every_days)."),
    ] = False,
    json_out: Json = False,
) -> None:
    """Pull open receivables and their debtors from the platforms into the store."""
    from connector.sync import failed, sync_all
    from providers.tokens import default_state_dir, open_token_store

    with _exit_codes():
        config = _config(ctx)
        if connection is not None:
            config.connection(connection)  # an unknown name is a usage error, also when none are configured
        if not config.connections:
            typer.echo(f"No connections in {config.path} to sync. Connect one with: dunning setup", err=True)
            return
        with Store.open(config.store_url) as store:
            tokens = open_token_store(default_state_dir(config.path or _options(ctx).config_path))
            summaries = sync_all(config, store, tokens, connection=connection, full=full)
    if json_out:
        _print_json_lines(s.as_json() for s in summaries)
    else:
        rows = [s.as_json() | {"kind": "full" if s.full else "changes", "result": "ok" if s.ok else "failed"}
                for s in summaries]
        _print_table("Sync", rows, ["connection", "kind", "fetched", "changed", "closed", "api_calls", "result"])
    if failed(summaries):
        raise typer.Exit(1)


@app.command()
def plan(ctx: typer.Context, as_of: AsOf = None, connection: ConnectionName = None, json_out: Json = False) -> None:
    """The actions due (reminders, calls, letters, handoffs), with reasons, grouped by debtor."""
    from connector.plan import connection_capabilities
    from connector.plan import plan as plan_actions

    today = as_of or date.today()
    with _exit_codes():
        config = _config(ctx)
        if connection is not None:
            config.connection(connection)  # an unknown name: a usage error listing the known ones
        capabilities = connection_capabilities((c.name, c.provider) for c in config.connections)
        with Store.open(config.store_url) as store:
            names = [connection] if connection else [c.name for c in config.connections]  # configured ones only
            actions = (
                action
                for name in names
                for action in plan_actions(store, config.policy, today, connection=name, capabilities=capabilities)
            )
            if json_out:
                _print_json_lines(action.as_json() for action in actions)
                return
            rows, previous = [], None
            for action in actions:
                debtor = (action.connection, action.debtor_id)
                rows.append(
                    {
                        "debtor": f"{action.debtor_name} ({action.connection})" if debtor != previous else "",
                        "invoices": ", ".join(action.invoice_numbers),
                        "step": action.step,
                        "channel": action.channel.value,
                        "due_on": action.due_on.isoformat(),
                        "outstanding": f"{action.currency} {action.outstanding:,.2f}",
                        "costs": None if action.costs is None else f"{action.costs:,.2f}",
                        "reason": action.reason,
                    }
                )
                previous = debtor
    if not rows:
        typer.echo(f"Nothing due on {today}.")
        return
    _print_table(f"Actions due on {today}", rows,
                 ["debtor", "invoices", "step", "channel", "due_on", "outstanding", "costs", "reason"])


@app.command()
def send(
    ctx: typer.Context,
    as_of: AsOf = None,
    connection: ConnectionName = None,
    dry_run: DryRun = False,
    limit: Annotated[int | None, typer.Option("--limit", metavar="N", min=0, help="Send at most N.")] = None,
    step: Annotated[str | None, typer.Option("--step", metavar="NAME", help="Only this escalation step.")] = None,
    json_out: Json = False,
) -> None:
    """Send the due reminders through each platform's own mailing."""
    _not_built("send", "reminder delivery")


InvoiceRef = Annotated[str, typer.Argument(help="The invoice number (or platform id).")]


@app.command()
def hold(
    ctx: typer.Context,
    invoice: InvoiceRef,
    connection: ConnectionName = None,
    dispute: Annotated[bool, typer.Option("--dispute", help="The debtor disputes it: pause until released.")] = False,
    promise: Annotated[
        date | None,
        typer.Option("--promise", parser=_parse_as_of, metavar="YYYY-MM-DD", help="Promised to pay by this date."),
    ] = None,
    exclude: Annotated[bool, typer.Option("--exclude", help="Never escalate this invoice.")] = False,
    release: Annotated[bool, typer.Option("--release", help="End the hold; escalation resumes.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the history.")] = None,
    as_of: AsOf = None,
) -> None:
    """Pause escalation of an invoice: a dispute, a promise to pay, or an exclusion."""
    from connector.planning import find_invoice, record_hold, release_hold

    chosen = [flag for flag, on in (("--dispute", dispute), ("--promise", promise), ("--exclude", exclude),
                                    ("--release", release)) if on]
    if len(chosen) != 1:
        typer.echo("dunning hold: give exactly one of --dispute, --promise YYYY-MM-DD, --exclude, --release", err=True)
        raise typer.Exit(2)
    with _exit_codes(), _usage_errors():
        config = _config(ctx)
        with Store.open(config.store_url) as store:
            found = find_invoice(store, invoice, connection)
            on = as_of or date.today()
            if release:
                release_hold(store, found, on, reason=reason)
            else:
                kind = "dispute" if dispute else "promise" if promise else "excluded"
                record_hold(store, found, kind, on, until=promise, reason=reason)
    typer.echo(f"invoice {found.label} ({found.connection}): {chosen[0].lstrip('-')} recorded on {on}")


@app.command()
def arrange(
    ctx: typer.Context,
    invoice: InvoiceRef,
    instalment: Annotated[
        list[str] | None,
        typer.Option("--instalment", metavar="YYYY-MM-DD:AMOUNT", help="One instalment (repeatable)."),
    ] = None,
    end: Annotated[bool, typer.Option("--end", help="End the arrangement.")] = False,
    connection: ConnectionName = None,
    as_of: AsOf = None,
    down_payment: Annotated[
        str | None,
        typer.Option("--down-payment", metavar="YYYY-MM-DD:AMOUNT", help="A down payment before the instalments."),
    ] = None,
) -> None:
    """Record a payment arrangement (instalments with dates and amounts)."""
    from connector.planning import end_arrangement, find_invoice, record_arrangement

    if end and (instalment or down_payment):
        typer.echo("dunning arrange: --end cannot be combined with --instalment or --down-payment", err=True)
        raise typer.Exit(2)
    with _exit_codes(), _usage_errors():
        config = _config(ctx)
        with Store.open(config.store_url) as store:
            found = find_invoice(store, invoice, connection)
            on = as_of or date.today()
            if end:
                end_arrangement(store, found, on)
            else:
                record_arrangement(store, found, instalment or [], on, down_payment=down_payment)
    what = "arrangement ended" if end else "arrangement recorded"
    typer.echo(f"invoice {found.label} ({found.connection}): {what} on {on}")


@app.command()
def note(
    ctx: typer.Context,
    invoice: InvoiceRef,
    text: Annotated[str, typer.Argument(help="The note, e.g. what the debtor said on the phone.")],
    connection: ConnectionName = None,
    as_of: AsOf = None,
) -> None:
    """Add a call note to an invoice's history."""
    from connector.planning import find_invoice, record_note

    with _exit_codes(), _usage_errors():
        config = _config(ctx)
        with Store.open(config.store_url) as store:
            found = find_invoice(store, invoice, connection)
            on = as_of or date.today()
            record_note(store, found, text, on)
    typer.echo(f"invoice {found.label} ({found.connection}): note recorded on {on}")


@contextmanager
def _usage_errors() -> Iterator[None]:
    """A request that cannot be carried out as given (unknown invoice, bad instalment) → stderr, exit 2."""
    from connector.planning import UsageError

    try:
        yield
    except UsageError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def export(
    ctx: typer.Context,
    as_of: AsOf = None,
    agency: Annotated[str | None, typer.Option("--agency", metavar="NAME", help="The agency format.")] = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="DIR", help="The output folder.")] = None,
    zip_: Annotated[bool, typer.Option("--zip", help="Also pack the files into one zip.")] = False,
    again: Annotated[str | None, typer.Option("--again", metavar="CASE", help="Export this case again.")] = None,
    json_out: Json = False,
) -> None:
    """Hand the cases past the last step to the collection agency (files + manifest)."""
    _not_built("export", "the collection agency handoff")


@app.command()
def run(
    ctx: typer.Context,
    as_of: AsOf = None,
    connection: ConnectionName = None,
    dry_run: DryRun = False,
    log_format: Annotated[
        LogFormat | None, typer.Option("--log-format", help="Log lines on stderr as plain text or JSON.")
    ] = None,
) -> None:
    """The daily job for a scheduler: sync, plan, send, export."""
    if log_format is not None:
        setup_logging(log_format.value)
    _not_built("run", "the daily run")


@app.command()
def report(
    ctx: typer.Context,
    as_of: AsOf = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="Where to write the HTML.")] = None,
) -> None:
    """A self-contained HTML report of the receivables and the escalation."""
    _not_built("report", "the HTML report")


@app.command()
def demo(
    ctx: typer.Context,
    dir_: Annotated[
        Path | None, typer.Option("--dir", help="Where the demo writes its config, store and files.")
    ] = None,
    days: Annotated[int, typer.Option("--days", metavar="N", min=1, help="Simulate this many days.")] = 90,
) -> None:
    """The whole product against the built-in simulators, on a virtual clock."""
    _not_built("demo", "the demo")


def main() -> None:
    app()
