"""Agency formats as data: `mappings/agencies/<name>.toml`, loaded and checked before anything is exported.

A format says which file type an agency takes (CSV, JSON, XLSX), its encoding, delimiter, decimal separator and
date format, whether a row is a case or an invoice, and per column its source in the case (a path such as
`debtor.address.postal_code` or `invoice.outstanding`), its formatting and whether it is required. The paths a
format may use are the fields of the canonical case (`mappings/case.schema.json`), so a new agency is a new file,
never new code, and a typo in a path is refused at config load naming the file and the key.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from providers.errors import DunningError

FORMAT_DIR = "agencies"
"""Shipped formats: `mappings/agencies/*.toml` inside the installed package."""


class FormatError(DunningError):
    """An agency format file that cannot be used (the message names the file and the key)."""


class FieldType(StrEnum):
    TEXT = "text"
    MONEY = "money"
    DATE = "date"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    LIST = "list"


# --- the paths a column may read, from the canonical case's JSON Schema -------------------------------------------


@cache
def case_schema() -> dict[str, Any]:
    """The JSON Schema of the generic-json export (`mappings/case.schema.json`)."""
    text = resources.files("mappings").joinpath("case.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def _kind(node: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """('money' | 'date' | 'text' | …, the resolved node) of a schema node."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in ("money", "maybe_money"):
            return FieldType.MONEY, node
        if name in ("date", "maybe_date"):
            return FieldType.DATE, node
        if name == "texts":
            return FieldType.LIST, node
        if name == "text":
            return FieldType.TEXT, node
        return _kind(defs[name], defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        return _kind(options[0], defs)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        return "object", node
    if kind == "array":
        return "array", node
    if kind == "integer":
        return FieldType.INTEGER, node
    if kind == "boolean":
        return FieldType.BOOLEAN, node
    return FieldType.TEXT, node  # strings, enums, consts


def _walk(node: Mapping[str, Any], prefix: str, defs: Mapping[str, Any], out: dict[str, FieldType]) -> None:
    for name, child in node.get("properties", {}).items():
        kind, resolved = _kind(child, defs)
        path = f"{prefix}{name}"
        if kind == "object":
            _walk(resolved, f"{path}.", defs, out)
        elif kind == "array":
            if path == "invoices":  # one row per invoice reads `invoice.<field>`
                _walk(_kind(resolved["items"], defs)[1], "invoice.", defs, out)
            # other lists of records (reminders, holds, …) have no single cell: the summary fields flatten them
        else:
            out[path] = FieldType(kind)


@cache
def source_paths() -> dict[str, FieldType]:
    """Every path a column may name, with its type: the case's scalar fields and `invoice.*`."""
    schema = case_schema()
    defs = schema["$defs"]
    found: dict[str, FieldType] = {}
    _walk(defs["case"], "", defs, found)
    return found


# --- the format file ----------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Column(_Strict):
    """One column (CSV/XLSX) or field (JSON rows) of the agency's file."""

    name: Annotated[str, Field(min_length=1)]
    source: str | None = None
    """A path in the case, e.g. `debtor.address.postal_code`; or leave out and give `value`."""
    value: str | None = None
    """A fixed text in every row (e.g. the agency's client number)."""
    required: StrictBool = False
    """A case lacking this value is held back with the column named, instead of exported with a blank."""
    date_format: str | None = None
    """Overrides the format's date format for this column (strftime, e.g. %d-%m-%Y)."""
    decimals: Annotated[StrictInt, Field(ge=0, le=6)] = 2
    values: dict[str, str] = Field(default_factory=dict)
    """Translations of values, e.g. {business = "Bedrijf", consumer = "Particulier"}; true/false for booleans."""
    join: str = ", "
    """How a list (e-mail addresses, invoice numbers) becomes one cell."""
    max_length: Annotated[StrictInt, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Column:
        if (self.source is None) == (self.value is None):
            raise ValueError("give exactly one of source (a path in the case) or value (a fixed text)")
        if self.source is not None and self.source not in source_paths():
            close = [p for p in source_paths() if p.rsplit(".", 1)[-1] == self.source.rsplit(".", 1)[-1]]
            hint = f" (did you mean {', '.join(close[:3])}?)" if close else " (see mappings/case.schema.json)"
            raise ValueError(f"unknown source path {self.source!r}{hint}")
        return self

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str | None) -> str | None:
        return _check_date_format(value)

    @property
    def type(self) -> FieldType:
        return FieldType.TEXT if self.source is None else source_paths()[self.source]


def _check_date_format(value: str | None) -> str | None:
    if value is not None and not re.search(r"%[dmyYbBj]", value):
        raise ValueError(f"{value!r} is not a date format (strftime codes such as %d-%m-%Y)")
    return value


class AgencyFormat(_Strict):
    """An agency's intake file (`mappings/agencies/<name>.toml`)."""

    name: str = ""
    """Set from the file name."""
    description: str = ""
    file_type: Literal["csv", "json", "xlsx"]
    file_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] | None = None
    """The data file's name in the export folder (default: cases.<file_type>)."""
    encoding: str = "utf-8"
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    decimal_separator: Literal[".", ","] = "."
    date_format: str = "%Y-%m-%d"
    rows: Literal["case", "invoice"] = "case"
    """One row per case, or one per invoice (the case's fields repeated on each)."""
    sheet: Annotated[str, Field(min_length=1, max_length=31)] = "Cases"
    """XLSX only: the worksheet's name."""
    columns: tuple[Column, ...] = ()
    """Empty for JSON: the canonical case (`mappings/case.schema.json`)."""
    require: tuple[str, ...] = ()
    """Paths a case must have even where no column shows them (e.g. for the canonical JSON)."""
    documents: StrictBool = True
    """Copy the invoice PDFs and our letters into documents/<case>/."""

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (e.g. utf-8, cp1252)") from None
        return value

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str) -> str:
        return _check_date_format(value) or value

    @field_validator("require")
    @classmethod
    def _known_paths(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in paths if p not in source_paths()]
        if unknown:
            raise ValueError(f"unknown source path(s) {', '.join(map(repr, unknown))} (see mappings/case.schema.json)")
        return paths

    @model_validator(mode="after")
    def _consistent(self) -> AgencyFormat:
        if self.file_type != "json" and not self.columns:
            raise ValueError(f"a {self.file_type} format needs at least one [[columns]] table")
        if self.file_type == "csv" and self.delimiter == self.decimal_separator:
            raise ValueError("delimiter and decimal_separator must differ")
        if self.rows == "case":
            per_invoice = [c.source for c in self.columns if c.source and c.source.startswith("invoice.")]
            if per_invoice:
                raise ValueError(f"{per_invoice[0]!r} needs rows = \"invoice\" (one row per case has no single "
                                 "invoice; use summary.invoice_numbers)")
        names = [c.name for c in self.columns]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"column name(s) used twice: {', '.join(doubled)}")
        return self

    @property
    def data_file(self) -> str:
        return self.file_name or f"cases.{self.file_type}"

    @property
    def required_paths(self) -> tuple[tuple[str, str | None], ...]:
        """(path, column name or None) that a case must have a value for."""
        found = [(c.source, c.name) for c in self.columns if c.required and c.source]
        return tuple(found + [(p, None) for p in self.require if p not in {s for s, _ in found}])


@dataclass(frozen=True)
class FormatSource:
    """Where a format was read from, for messages."""

    name: str
    path: Path | None


def shipped_formats() -> list[str]:
    """The names of the formats shipped in `mappings/agencies/`."""
    folder = resources.files("mappings").joinpath(FORMAT_DIR)
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def _describe(error: Mapping[str, Any]) -> str:
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling)"
    elif error["type"] == "missing":
        message = "is required"
    return f"{path or 'format'}: {message}"


def parse_format(text: str, *, name: str, shown_as: str) -> AgencyFormat:
    """Validate a format file's text; `shown_as` names the file in the error (one line per problem)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"{shown_as}: not valid TOML: {exc}") from None
    raw.pop("name", None)
    try:
        return AgencyFormat.model_validate(raw | {"name": name})
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise FormatError(f"{shown_as}: {problems}") from None


def load_format(agency: str, *, base_dir: Path | None = None) -> AgencyFormat:
    """The format named `agency`: a shipped name (`generic-csv`) or a path to a .toml file (relative to
    `base_dir`, the config file's folder), so an agency of one's own needs no change to the package."""
    if agency.endswith(".toml") or "/" in agency or "\\" in agency:
        path = Path(agency).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        return parse_format(text, name=path.name.removesuffix(".toml"), shown_as=str(path))
    if agency not in shipped_formats():
        raise FormatError(f"unknown agency format {agency!r}; shipped: {', '.join(shipped_formats())}, "
                          "or give the path of your own .toml file")
    text = resources.files("mappings").joinpath(FORMAT_DIR, f"{agency}.toml").read_text("utf-8")
    return parse_format(text, name=agency, shown_as=f"mappings/{FORMAT_DIR}/{agency}.toml")
