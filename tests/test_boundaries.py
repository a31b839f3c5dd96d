"""The layout's promises, checked in the source so they keep holding as the code grows.

The core reaches a provider only through `providers.base.Provider`'s methods (never its HTTP client), and a
platform's field names and enumerated values live in that platform's `mapping.py` (and its simulator) alone.
"""
from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from connector.capabilities import DeliveryMethod

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT.parent / "shared" / "specs"
"""The platforms' specs, in the steering folder beside the checkout (CI lays a copy there too)."""
PLATFORMS = ("exact", "moneybird", "xero")
OURS = set(get_args(DeliveryMethod))
"""Our own delivery methods (`email`, `post`, `manual`): Moneybird happens to name fields the same."""
MESSAGE_WORDS = {"moneybird": {"identity"}}
"""Literals that equal a platform name but are words of a message to the bookkeeper ("no workflow or identity")."""


def _python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def test_the_core_never_reaches_into_a_providers_http_client() -> None:
    """`provider.api` is the adapter's own client; the core asks `Provider.calls` and the other methods."""
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _python_files(ROOT / "connector")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "api"
    ]
    assert offenders == []


# --- a platform's names only in its mapping.py ----------------------------------------------------------------------


@cache
def _platform_names(platform: str) -> frozenset[str]:
    """Field, entity, parameter and enumerated names the platform's spec declares, and every text constant its
    mapping.py names (so a value mapping.py declares is not written out again beside it)."""
    names: set[str] = set()
    if platform == "exact":
        for entity, spec in json.loads((SPECS / "exact-online-entities.json").read_text())["entities"].items():
            names |= {entity, spec["path"], *(prop["name"] for prop in spec["properties"])}
    elif platform == "moneybird":
        for spec in json.loads((SPECS / "moneybird-entities.json").read_text())["entities"].values():
            names |= {spec.get("endpoint"), spec.get("namespace"), *spec.get("fields", ())}
    else:
        names |= set(_xero_names(yaml.load((SPECS / "xero_accounting.yaml").read_text(), Loader=yaml.CSafeLoader)))
    for node in ast.parse((ROOT / "providers" / platform / "mapping.py").read_text(encoding="utf-8")).body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        values = value.elts if isinstance(value, ast.Tuple) else [value]
        names |= {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return frozenset(name for name in names if isinstance(name, str) and len(name) > 1)


def _xero_names(node: Any) -> Iterator[str]:
    """Schema properties, enum values and query/path parameter names of an OpenAPI document."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            yield from node["properties"]
        if isinstance(node.get("enum"), list):
            yield from (v for v in node["enum"] if isinstance(v, str))
        if node.get("in") in ("query", "path") and isinstance(node.get("name"), str):
            yield node["name"]
        for value in node.values():
            yield from _xero_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _xero_names(value)


def _not_data(tree: ast.AST) -> set[int]:
    """Text constants that are no platform data: docstrings, HTTP header names (`headers.get("Location")`,
    `headers={...}`), the names of our own streams and `__all__`."""
    skipped: set[int] = set()

    def skip(node: ast.AST) -> None:
        skipped.update(id(sub) for sub in ast.walk(node) if isinstance(sub, ast.Constant))

    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip(node)  # a docstring
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "headers"):
            skip(node.args[0])
        elif isinstance(node, ast.Subscript) and (
                isinstance(node.value, ast.Attribute) and node.value.attr == "headers"
                or isinstance(node.value, ast.Name) and node.value.id == "headers"):
            skip(node.slice)
        elif isinstance(node, ast.keyword) and node.arg == "headers":
            skip(node.value)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None and any(
                isinstance(target, ast.Name) and target.id in ("headers", "__all__")
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])):
            skip(node.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Stream" and node.args:
            skip(node.args[0])
    return skipped


def raw_platform_names(source: str, platform: str) -> list[tuple[int, str]]:
    """(line, text) of every text constant in `source` that is one of the platform's own names."""
    tree = ast.parse(source)
    skipped = _not_data(tree)
    allowed = OURS | MESSAGE_WORDS.get(platform, set())
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped
                  and node.value in _platform_names(platform) and node.value not in allowed)


def _adapter_modules(platform: str) -> list[Path]:
    """Every module of the platform's folder except mapping.py and the simulator."""
    return [path for path in _python_files(ROOT / "providers" / platform)
            if path.name not in ("mapping.py", "simulator.py")]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_platform_names_appear_only_in_mapping(platform: str) -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {text!r}" for path in _adapter_modules(platform)
             for line, text in raw_platform_names(path.read_text(encoding="utf-8"), platform)]
    assert found == [], "move these into mapping.py and refer to them by mapping's name"


def test_the_scan_finds_a_field_read_a_header_does_not_hide() -> None:
    """The rule itself: a field read, a field sent and an enumerated value are found; a header is not."""
    source = '''
def receipt(answer, response, api):
    """Reads `EmailCreationSuccess`."""
    location = response.headers.get("Location")
    api.request("GET", "/x", headers={"Accept": "application/pdf"})
    if answer.get("EmailCreationError") or answer["Status"] == 50:
        return {"InvoiceID": location}
'''
    assert [text for _, text in raw_platform_names(source, "exact")] == ["EmailCreationError", "Status", "InvoiceID"]
    assert [text for _, text in raw_platform_names('statuses = ("AUTHORISED", "SUBMITTED")', "xero")] == [
        "AUTHORISED", "SUBMITTED"]
