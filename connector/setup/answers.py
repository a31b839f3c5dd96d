"""The answers `dunning setup` works with, and their checks: what a connection block will hold, whether a
--client-secret-env value is a variable's name or the secret itself, where each platform's apps are registered, and
how the answers are written into a `[[connections]]` block."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from tomlkit.items import Table

from connector.config import ConnectionConfig
from connector.setup.errors import usage
from providers.base import Tenant


@dataclass(frozen=True)
class Answers:
    """What the flags, the questions and the connection being reconnected gave."""

    provider: str
    name: str
    client_id: str
    client_secret_env: str | None
    redirect_uri: str
    api_url: str | None
    authorize_url: str | None
    token_url: str | None
    scopes: tuple[str, ...] | None = None
    """Kept from an existing block (e.g. a Xero app from before March 2026), like `options`."""
    options: Mapping[str, Any] | None = None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


DEVELOPER_PORTALS = {
    "exact": "https://apps.exactonline.com (App Center: Manage apps)",
    "moneybird": "https://moneybird.com/user/applications/new",
    "xero": "https://developer.xero.com/app/manage",
}
"""Where each platform's apps are registered; a third-party plugin's platform gets a general line."""


def register_hint(provider: str, redirect_uri: str) -> str:
    portal = DEVELOPER_PORTALS.get(provider)
    where = f"at {portal}" if portal else f"in {provider}'s developer portal"
    return f"Register an app {where} with the redirect URI {redirect_uri} (exactly), and copy its client id."


_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def looks_like_a_secret(value: str) -> bool:
    """Whether a --client-secret-env value is more likely the secret than a variable's name: anything that is not
    a variable name, or a long mixed-case or underscore-free run of letters and digits (secrets are random)."""
    if not _VARIABLE_NAME.fullmatch(value):
        return True
    lower, upper, digit = (any(test(c) for c in value) for test in (str.islower, str.isupper, str.isdigit))
    return len(value) >= 16 and digit and ((lower and upper) or "_" not in value)


def check_answers(answers: Answers) -> None:
    """Refuse, before the browser opens, what the config file would refuse (a name with spaces, say)."""
    fields = {"name": answers.name, "client_secret_env": answers.client_secret_env,
              "redirect_uri": answers.redirect_uri, "api_url": answers.api_url,
              "authorize_url": answers.authorize_url, "token_url": answers.token_url}
    draft = {key: value for key, value in fields.items() if value is not None}
    draft |= {"provider": answers.provider, "tenant": "?", "client_id": answers.client_id}  # tenant: not known yet
    try:
        ConnectionConfig.model_validate(draft)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "name"
        why = _PATTERN_HELP.get(field, error["msg"]) if error["type"] == "string_pattern_mismatch" else error["msg"]
        shown = "" if field == "client_secret_env" else f" {fields.get(field)!r}"  # it may be the secret itself
        raise usage(f"--{field.replace('_', '-')}{shown}: {why}", answers.name) from None


_PATTERN_HELP = {
    "name": "use letters, digits, '.', '_' and '-' only, starting with a letter or digit",
    "client_secret_env": "give the NAME of an environment variable (letters, digits and '_'), not the secret",
}


def set_fields(block: Table, answers: Answers) -> None:
    """Write only what changed, so the user's comments on untouched lines stay where they are."""
    wanted: dict[str, str | None] = {
        "provider": answers.provider,
        "client_id": answers.client_id,
        "client_secret_env": answers.client_secret_env,
        "redirect_uri": answers.redirect_uri,
        "api_url": answers.api_url,
        "authorize_url": answers.authorize_url,
        "token_url": answers.token_url,
    }
    for key, value in wanted.items():
        if value is None:
            continue
        if block.get(key) != value:
            block[key] = value


def names_for(base: str, tenants: Sequence[Tenant]) -> list[str]:
    names: list[str] = []
    for tenant in tenants:
        candidate = f"{base}-{slug(tenant.name) or slug(tenant.id)}"
        while candidate in names:
            candidate = f"{candidate}-{slug(tenant.id)}"
        names.append(candidate)
    return names
