"""Editing the config file's `[[connections]]` blocks with tomlkit, so the user's comments and layout stay.

One authorisation can reach several tenants. Refresh tokens rotate (Exact kills the old one at once), so connections
set up together share ONE stored token: the first is stored under its own name, the others carry
`token_key = "<that name>"` in their block (see `token_key_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table
from tomlkit.toml_document import TOMLDocument

from connector.setup.errors import usage


def load_config_document(path: Path) -> TOMLDocument:
    """The config file as an editable document (empty when there is none yet; a UTF-8 BOM is allowed)."""
    if not path.exists():
        return tomlkit.document()
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise usage(f"{path} is not UTF-8 text; save it as UTF-8 and run setup again") from None
    except tomlkit.exceptions.TOMLKitError as exc:
        raise usage(f"{path} is not valid TOML ({exc}); fix it and run setup again") from None


def connection_blocks(doc: TOMLDocument) -> list[Table]:
    blocks = doc.get("connections")
    return list(blocks) if isinstance(blocks, AoT | list) else []


def find_connection(doc: TOMLDocument, name: str) -> Table | None:
    return next((block for block in connection_blocks(doc) if block.get("name") == name), None)


def token_key_of(block: Mapping[str, Any]) -> str:
    """The token store entry a connection uses: its own name, or the connection it shares an authorisation with."""
    return str(block.get("token_key") or block["name"])


def connections_table(doc: TOMLDocument) -> AoT:
    """The `[[connections]]` array of tables, created when missing."""
    blocks = doc.get("connections")
    if isinstance(blocks, AoT):
        return blocks
    if blocks is not None:
        raise usage("`connections` in the config file must be written as [[connections]] tables")
    aot = tomlkit.aot()
    doc.append("connections", aot)
    return aot
