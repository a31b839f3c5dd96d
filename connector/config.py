"""The configuration file (TOML) as validated pydantic models.

Every problem in the file becomes one message naming its key path (`connections[1].provider: must be one of
exact, moneybird, xero`); all of them are collected into one `ConfigError`, raised before anything touches a
platform. Secrets never live in the file: a connection names the environment variable holding its client secret.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from stdnum import iban
from stdnum.be import vat as be_vat
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import InvalidChecksum
from stdnum.exceptions import ValidationError as BadNumber
from sqlalchemy.exc import ArgumentError

from connector import plugins
from connector.delivery.smtp import MailConfig
from connector.escalation.legal_be import BELGIUM
from connector.escalation.policy import Policy
from connector.formatting import Lang
from connector.models import CountryCode, check_email
from providers.base import ConnectionSettings
from providers.errors import DunningError
from providers.files import write_atomically

DEFAULT_PATH = Path("dunning.toml")
DEFAULT_STORE_URL = "sqlite:///dunning.sqlite"
DEFAULT_REDIRECT_URI = "http://localhost:8765/callback"


class ConfigError(DunningError):
    """The configuration cannot be used; `problems` holds one message per problem, each naming its key path."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def default_path() -> Path:
    """`$DUNNING_CONFIG`, else `./dunning.toml`."""
    return Path(os.environ.get("DUNNING_CONFIG") or DEFAULT_PATH)


def _text(value: Any) -> Any:
    """Ids may be written as TOML numbers (a Moneybird administration id); they are text to us."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_text), Field(min_length=1)]


def _url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/") if value else value


def _email(value: str | None) -> str | None:
    return None if value is None else check_email(value)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class StoreConfig(_Strict):
    url: str = DEFAULT_STORE_URL
    """A SQLAlchemy URL; a relative SQLite path is relative to the config file's folder."""

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            parsed = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL (e.g. sqlite:///dunning.sqlite or postgresql+psycopg://user@host/db)"
            ) from None
        if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
        if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
            raise ValueError(
                "names no database file (an in-memory store forgets everything); e.g. sqlite:///dunning.sqlite"
            )
        return value


class Creditor(_Strict):
    """The user's own company, as it appears on letters and in agency exports."""

    name: Text
    address_lines: tuple[str, ...] = ()
    postal_code: str | None = None
    city: str | None = None
    country: CountryCode = "NL"
    coc_number: str | None = None
    """Chamber of Commerce (KvK / KBO) number."""
    vat_number: str | None = None
    iban: str | None = None
    bic: str | None = None
    email: str | None = None
    phone: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return _email(value)

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban.compact(value)):
            raise ValueError(f"{value!r} is not an IBAN (e.g. NL91 ABNA 0417 1643 00)")
        try:
            return str(iban.validate(value, check_country=False))  # a stale bank list must not refuse an IBAN
        except InvalidChecksum:
            raise ValueError(f"{value!r} is not a valid IBAN: its check digits do not match (a typo?)") from None
        except BadNumber:
            raise ValueError(f"{value!r} is not an IBAN (e.g. NL91 ABNA 0417 1643 00)") from None

    @field_validator("vat_number")
    @classmethod
    def _vat(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(eu_vat.validate(value))
        except BadNumber:
            raise ValueError(f"{value!r} is not a valid EU VAT number (e.g. NL004495445B01, BE0403170701)") from None

    @model_validator(mode="after")
    def _coc_number(self) -> Creditor:
        """A KvK number is 8 digits (it has no check digit); a Belgian enterprise number (KBO) is checked."""
        value = self.coc_number
        if value is None:
            return self
        if self.country == "BE":
            try:
                be_vat.validate(value)
            except BadNumber:
                raise ValueError(f"coc_number: {value!r} is not a valid Belgian enterprise number (e.g. "
                                 "0403.170.701)") from None
        elif self.country == "NL" and not re.fullmatch(r"\d{8}", value.replace(" ", "")):
            raise ValueError(f"coc_number: {value!r} is not a KvK number (8 digits, e.g. 12345678)")
        return self


class ConnectionConfig(_Strict):
    """One connected administration (a `[[connections]]` table)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    provider: str
    tenant: Text
    """Xero tenant id / Moneybird administration id / Exact division."""
    client_id: Text
    client_secret_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    """The NAME of the environment variable holding the client secret."""
    redirect_uri: str = DEFAULT_REDIRECT_URI
    api_url: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    scopes: tuple[str, ...] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    """Platform-specific settings, validated by the adapter's `Options` model."""
    token_key: str | None = None
    """Another connection's name whose authorisation this one shares (one consent reaching several companies);
    `dunning setup` writes it. A rotating refresh token can be spent once, so the two keep one token set."""

    @field_validator("redirect_uri", "api_url", "authorize_url", "token_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _url(value)


class SyncConfig(_Strict):
    """How `dunning sync` reads the platforms."""

    full_every_days: Annotated[int, Field(ge=0, strict=True)] = 7
    """Re-read each connection's whole open set when its last completed full read is this many days old (0: never).
    Incremental reads miss some changes (a Xero due date on a part-paid invoice, a deleted Exact invoice)."""


class UiConfig(_Strict):
    """How human output reads (never `--json`)."""

    lang: Lang | None = None
    """`nl` or `en` for amounts and dates in tables; default: nl for a creditor in the Netherlands or Belgium."""


class Handoff(_Strict):
    """Where cases past the last step go."""

    agency: str | None = None
    """The agency format: a name in `mappings/agencies/` or the path of an own .toml file (checked at load)."""
    out_dir: Path = Path("handoff")
    """The export folder; relative to the config file's folder."""
    upload: str | None = None
    """Where the agency takes uploads: `sftp://user@host[:port]/folder` (no password: a key file)."""
    upload_key: Path | None = None
    """The private key FILE for the upload (the key never goes into this file); relative to the config's folder."""
    upload_known_hosts: Path | None = None
    """A known_hosts file holding the agency server's host key (default: ~/.ssh/known_hosts)."""

    @field_validator("upload")
    @classmethod
    def _sftp_url(cls, value: str | None) -> str | None:
        from connector.handoff.upload import parse_sftp_url

        if value is not None:
            parse_sftp_url(value)
        return value

    @model_validator(mode="after")
    def _upload_key(self) -> Handoff:
        if self.upload is not None and self.upload_key is None:
            raise ValueError("upload_key: give the private key file for the upload (e.g. upload_key = "
                             "\"~/.ssh/agency_ed25519\")")
        return self


class Config(_Strict):
    store: StoreConfig = StoreConfig()
    creditor: Creditor | None = None
    policy: Policy = Field(default_factory=Policy)
    connections: tuple[ConnectionConfig, ...] = ()
    sync: SyncConfig = SyncConfig()
    ui: UiConfig = UiConfig()
    handoff: Handoff = Handoff()
    mail: MailConfig | None = None
    """Your own outgoing mail server, for steps a platform's mailing cannot carry (`connector.delivery.smtp`)."""
    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _business_law_of_the_creditor(self) -> Config:
        """Claims on businesses follow the creditor's law: a creditor in Belgium claims under Belgian law unless
        `[policy] business_law` says otherwise."""
        belgian = self.creditor is not None and self.creditor.country == BELGIUM
        if belgian and "business_law" not in self.policy.model_fields_set:
            object.__setattr__(self, "policy", self.policy.model_copy(update={"business_law": BELGIUM}))
        return self

    @property
    def path(self) -> Path | None:
        """The file this was read from (None when built in code)."""
        return self._path

    @property
    def base_dir(self) -> Path:
        return self._path.parent if self._path else Path.cwd()

    @property
    def store_url(self) -> str:
        """The store URL with a relative SQLite path anchored at the config file's folder."""
        parsed = make_url(self.store.url)
        database = parsed.database
        if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return self.store.url
        if Path(database).is_absolute():
            return self.store.url
        return parsed.set(database=str((self.base_dir / database).resolve())).render_as_string(hide_password=False)

    @property
    def handoff_dir(self) -> Path:
        return self.handoff.out_dir if self.handoff.out_dir.is_absolute() else self.base_dir / self.handoff.out_dir

    def connection(self, name: str) -> ConnectionConfig:
        for connection in self.connections:
            if connection.name == name:
                return connection
        known = ", ".join(c.name for c in self.connections) or "none configured; run `dunning setup`"
        raise ConfigError([f"--connection: no connection named {name!r} (known: {known})"])

    def settings(self, name: str, *, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
        """What the adapter gets, with the client secret read from the environment now (never from the file)."""
        connection = self.connection(name)
        environ = os.environ if environ is None else environ
        secret = None
        if connection.client_secret_env is not None:
            value = environ.get(connection.client_secret_env)
            if not value:
                index = self.connections.index(connection)
                raise ConfigError(
                    [
                        f"connections[{index}].client_secret_env: the environment variable "
                        f"{connection.client_secret_env} is not set (export it with the client secret of "
                        f"connection {name}'s app)"
                    ]
                )
            secret = SecretStr(value)
        return ConnectionSettings(
            client_secret=secret, **connection.model_dump(exclude={"client_secret_env"})
        )


# --- loading ------------------------------------------------------------------------------------------------------


def starter_config() -> str:
    """The commented starter config: `config.example.toml`, shipped inside the package for installed copies."""
    return resources.files("connector").joinpath("config.example.toml").read_text(encoding="utf-8")


def write_starter_config(path: Path | str, *, force: bool = False) -> None:
    """Write the starter config whole or not at all (a temporary file renamed into place)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError([f"{path}: is a folder; give the config file's path, e.g. {path / DEFAULT_PATH}"])
    if path.exists() and not force:
        raise ConfigError([f"{path}: already exists; edit it, or replace it with `dunning init --force`"])
    try:
        write_atomically(path, starter_config())
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be written ({exc.strerror or exc})"]) from None


def load_config(path: Path | str | None = None) -> Config:
    """Read and validate the config file; raises `ConfigError` listing every problem."""
    path = Path(path) if path is not None else default_path()
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM, as Windows editors write it, is allowed
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such config file; run `dunning init` to create a starter config"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot be read ({exc})"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    config = parse_config(raw)
    config._path = path.resolve()
    if config.handoff.agency:  # an agency format with a typo is refused now, not at the first export
        from connector.handoff.formats import FormatError, load_format

        try:
            load_format(config.handoff.agency, base_dir=config.base_dir)
        except FormatError as exc:
            raise ConfigError([f"handoff.agency: {exc}"]) from None
    return config


def parse_config(raw: dict[str, Any]) -> Config:
    """Validate a parsed TOML document; every problem is reported, not just the first."""
    problems = _connection_problems(raw.get("connections"))
    raw = _without_inline_secrets(raw)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems += [_describe(error) for error in exc.errors()]
        config = None
    if problems or config is None:
        raise ConfigError(list(dict.fromkeys(problems)))
    return config


def _connection_problems(connections: Any) -> list[str]:
    """What pydantic cannot check alone: secrets in the file, unique names, installed providers, their options."""
    if not isinstance(connections, list):
        return []
    problems: list[str] = []
    installed = plugins.names(plugins.PROVIDERS)
    seen: dict[str, int] = {}
    for index, entry in enumerate(connections):
        if not isinstance(entry, dict):
            continue
        where = f"connections[{index}]"
        if "client_secret" in entry:
            problems.append(
                f"{where}.client_secret: not allowed, a secret does not belong in this file; export it in an "
                "environment variable and give that variable's name as client_secret_env"
            )
        name = entry.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(f"{where}.name: {name!r} is already used by connections[{seen[name]}]")
            seen.setdefault(name, index)
        provider = entry.get("provider")
        if provider not in installed:
            if provider is not None:
                problems.append(f"{where}.provider: must be one of {', '.join(installed)}")
            continue
        problems += _option_problems(where, provider, entry.get("options", {}))
    return problems + token_sharing_problems(connections)


def token_sharing_problems(connections: list[Any]) -> list[str]:
    """`token_key` must name another connection of the same app that keeps its own tokens."""
    entries = [e for e in connections if isinstance(e, dict)]
    by_name = {e.get("name"): e for e in entries}
    problems = []
    for index, entry in enumerate(connections):
        key = entry.get("token_key") if isinstance(entry, dict) else None
        if key is None:
            continue
        where = f"connections[{index}].token_key"
        owner = by_name.get(key)
        if owner is None or owner is entry:
            problems.append(f"{where}: {key!r} is not another connection in this file")
        elif owner.get("token_key") is not None:
            problems.append(f"{where}: {key!r} itself shares {owner.get('token_key')!r}'s tokens; name that one")
        elif (owner.get("provider"), owner.get("client_id")) != (entry.get("provider"), entry.get("client_id")):
            problems.append(f"{where}: {key!r} is another platform or app (provider and client_id must match)")
    return problems


def _option_problems(where: str, provider: str, options: Any) -> list[str]:
    try:
        options_model = plugins.provider_class(provider).Options
    except plugins.PluginError as exc:
        return [f"{where}.provider: {exc}"]
    try:
        options_model.model_validate(options)
    except ValidationError as exc:
        return [_describe(error, prefix=(f"{where}.options",)) for error in exc.errors()]
    return []


def _without_inline_secrets(raw: dict[str, Any]) -> dict[str, Any]:
    connections = raw.get("connections")
    if not isinstance(connections, list):
        return raw
    cleaned = [
        {k: v for k, v in entry.items() if k != "client_secret"} if isinstance(entry, dict) else entry
        for entry in connections
    ]
    return raw | {"connections": cleaned}


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "unknown key (check the spelling)",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
}


def _describe(error: Any, prefix: tuple[str, ...] = ()) -> str:
    """`connections[1].provider: message` from a pydantic error."""
    path = ""
    for part in (*prefix, *error["loc"]):
        if isinstance(part, int):
            path += f"[{part}]"
        elif path:
            path += f".{part}"
        else:
            path = str(part)
    message = _MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
    if error["type"] in ("string_too_short", "too_short") and error.get("ctx", {}).get("min_length") == 1:
        message = "must not be empty"
    if error["type"] == "string_pattern_mismatch" and path.endswith(".name"):
        message = "use letters, digits, '-', '_' or '.' only (it is used on the command line)"
    elif error["type"] == "string_pattern_mismatch" and path.endswith("client_secret_env"):
        message = "the NAME of an environment variable (e.g. XERO_CLIENT_SECRET), not the secret itself"
    return f"{path or 'config'}: {message}"
