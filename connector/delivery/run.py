"""`dunning send`: every configured connection (or the one named), one after another, each on its own.

A connection that cannot start (authorisation expired, platform down) or stops (day budget) is reported in its
summary and never stops the others. Settings (secrets from the environment included) are resolved before the first
call, so a configuration problem is a usage error before anything touches a platform.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING

from connector import plugins
from connector.delivery.queueing import outbox_row
from connector.delivery.outcome import LIMITED_KINDS, Outcome, Summary
from connector.delivery.outcome import fields as row_fields
from connector.delivery.sender import ConnectionRun, Sender
from connector.delivery.smtp import mailer
from connector.escalation import Action
from connector.plan import connection_capabilities, plan
from connector.progress import NoProgress, Progress
from connector.store import Store
from providers.base import ConnectionSettings, Provider, TokenStore
from providers.errors import DunningError, redact

if TYPE_CHECKING:
    from connector.config import Config

log = logging.getLogger(__name__)

Connect = Callable[[ConnectionSettings], Provider]


def sender_for(config: Config, environ: Mapping[str, str] | None = None) -> Sender:
    """Who signs, where letters go and the optional mail server, from the config."""
    creditor = config.creditor
    lines: tuple[str, ...] = ()
    if creditor is not None:
        place = " ".join(filter(None, (creditor.postal_code, creditor.city)))
        lines = tuple(filter(None, (*creditor.address_lines, place, creditor.email, creditor.phone,
                                    f"KvK {creditor.coc_number}" if creditor.coc_number else None,
                                    f"IBAN {creditor.iban}" if creditor.iban else None)))
    try:
        smtp = mailer(config.mail, environ)
    except DunningError as exc:  # a configuration problem: reported before anything touches a platform (exit 2)
        from connector.config import ConfigError

        raise ConfigError([exc.message]) from None
    return Sender(creditor=creditor.name if creditor else "", creditor_lines=lines,
                  letters_dir=config.base_dir / "letters", mailer=smtp)


def send_all(
    config: Config,
    store: Store,
    tokens: TokenStore,
    *,
    as_of: date,
    emit: Callable[[Outcome], None],
    connection: str | None = None,
    step: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    connect: Connect | None = None,
) -> list[Summary]:
    chosen = [config.connection(connection)] if connection else list(config.connections)
    settings = [config.settings(c.name) for c in chosen]
    sender = sender_for(config)
    connect = connect or (lambda s: plugins.provider_class(s.provider).connect(s, tokens=tokens))
    capabilities = connection_capabilities((c.name, c.provider) for c in chosen)
    summaries: list[Summary] = []
    left = limit  # `--limit` is for the whole run: what one connection took up, the next ones may not
    for connection_settings in settings:
        name = connection_settings.name
        store.ensure_connection(name, connection_settings.provider, connection_settings.tenant)
        actions = [a for a in plan(store, config.policy, as_of, connection=name, capabilities=capabilities)
                   if step is None or str(a.step) == step]
        if dry_run:
            summary = preview(store, config, name, actions, sender, emit, limit=left)
        else:
            summary = _send_one(store, config, connection_settings, actions, sender, connect, as_of=as_of,
                                emit=emit, step=step, limit=left, progress=progress)
        if left is not None:
            left = max(left - summary.counted_for_limit, 0)
        summaries.append(summary)
    return summaries


def _send_one(store: Store, config: Config, settings: ConnectionSettings, actions: list[Action], sender: Sender,
              connect: Connect, *, as_of: date, emit: Callable[[Outcome], None], step: str | None,
              limit: int | None, progress: Progress | None) -> Summary:
    name = settings.name
    try:
        provider = connect(settings)
    except DunningError as exc:
        return Summary(name, error=exc.named(name))
    except Exception as exc:  # a broken adapter must not stop the other connections
        log.exception("%s: the adapter could not be started", name)
        return Summary(name, error=redact(f"{name}: the adapter could not be started: {exc}"))
    try:
        return deliver_connection(store, config, provider, name, actions, as_of=as_of, emit=emit, step=step,
                                  limit=limit, progress=progress, sender=sender)
    finally:
        provider.close()


def deliver_connection(
    store: Store,
    config: Config,
    provider: Provider,
    name: str,
    actions: Sequence[Action],
    *,
    as_of: date,
    emit: Callable[[Outcome], None] | None = None,
    dry_run: bool = False,
    step: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    sender: Sender | None = None,
) -> Summary:
    """One connection's day of delivery (the unit `dunning send` and `dunning run` share); never raises."""
    sender = sender or sender_for(config)
    emit = emit or (lambda outcome: None)
    if dry_run:
        shown = progress or NoProgress()
        shown.started(name, "send")
        summary = preview(store, config, name, list(actions), sender, emit, limit=limit)
        shown.finished(name, "send", ok=not summary.failing, detail="dry run: nothing sent")
        return summary

    def queue(run: ConnectionRun) -> None:
        for action in actions:
            row = outbox_row(action, config.policy, creditor=sender.creditor or None)
            if row is None:
                run.emit(Outcome("skipped", "handed to the collection agency by `dunning export`",
                                 _plan_fields(action)))
                continue
            run.queue(*row)

    try:
        run = ConnectionRun(store, provider, name, as_of=as_of, sender=sender, emit=emit, progress=progress)
        return run.run(queue, step=step, limit=limit)
    except Exception as exc:  # a bug with one platform must not stop the other connections
        log.exception("%s: sending failed unexpectedly", name)
        return Summary(name, error=redact(f"{name}: sending failed unexpectedly: {exc}"))


def preview(store: Store, config: Config, name: str, actions: list[Action], sender: Sender,
            emit: Callable[[Outcome], None], *, limit: int | None = None) -> Summary:
    """What a run would send, with recipients and texts, touching nothing (no store write, no platform call): rows
    an earlier run left pending first, then the day's actions, as a run works them, and `limit` as a run applies it
    (reminders, letters and tasks past it would stay pending)."""
    summary = Summary(name)
    planned = {row[1] for action in actions if (row := outbox_row(action, config.policy, creditor=None))}
    found: list[tuple[Outcome, bool]] = []
    """Each outcome, and whether it counts towards the limit."""
    for entry in store.outbox_rows(connection=name, status=["pending", "sending"]):
        if entry.idempotency_key in planned:
            continue
        what = ("would first be checked against the platform (left in flight by an interrupted run)"
                if entry.status == "sending" else f"would deliver the queued {entry.kind.replace('_', ' ')}")
        found.append((Outcome("sent", what, row_fields(entry), key=entry.idempotency_key,
                              extra={"subject": entry.payload.get("subject"), "body": entry.payload.get("body")
                                     or entry.payload.get("text"), "dry_run": True}),
                      entry.status == "pending" and entry.kind in LIMITED_KINDS))
    for action in actions:
        fields = _plan_fields(action)
        row = outbox_row(action, config.policy, creditor=sender.creditor or None)
        if row is None:
            found.append((Outcome("skipped", "handed to the collection agency by `dunning export`", fields), False))
            continue
        kind, key, payload = row
        existing = store.outbox_by_key(key)
        text = {"subject": payload.get("subject"), "body": payload.get("body"), "dry_run": True}
        if existing is not None and existing.status in ("sent", "task", "done", "sending"):
            found.append((Outcome("skipped", f"already {existing.status}", fields, key=key, extra=text), False))
        elif payload.get("render_error"):
            found.append((Outcome("failed", str(payload["render_error"]), fields, key=key, extra=text),
                          kind in LIMITED_KINDS))
        elif kind == "reminder" and not action.debtor.emails:
            found.append((Outcome("task", f"would become a task: {action.debtor_name} has no e-mail address", fields,
                                  key=key, extra=text), True))
        elif kind == "reminder":
            found.append((Outcome("sent", f"would send {action.step} through the platform", fields,
                                  recipients=action.debtor.emails, key=key, extra=text), True))
        else:
            found.append((Outcome("task", f"would create a {kind} task", fields, key=key, extra=text),
                          kind in LIMITED_KINDS))
    for outcome, counted in found:
        if counted and limit is not None:
            if summary.counted_for_limit >= limit:
                outcome = Outcome("skipped", "--limit reached; would stay pending for the next run",
                                  outcome.fields, key=outcome.key)
            else:
                summary.counted_for_limit += 1
        summary.count(outcome)
        emit(outcome)
    return summary


def _plan_fields(action: Action) -> dict[str, object]:
    data = action.as_json()
    keep = ("connection", "debtor", "debtor_name", "invoices", "invoice_numbers", "step", "channel", "due_on",
            "outstanding", "currency", "costs", "interest", "pay_by")
    return {key: data.get(key) for key in keep}


__all__ = ["deliver_connection", "preview", "send_all", "sender_for"]
