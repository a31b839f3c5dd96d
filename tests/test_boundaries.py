"""The layout's promises, checked in the source so they keep holding as the code grows.

The core reaches a provider only through `providers.base.Provider`'s methods (never its HTTP client), and a
platform's field names and enumerated values live in that platform's `mapping.py` (and its simulator) alone.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
