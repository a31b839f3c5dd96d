"""The escalation package is pure: it imports no platform adapter and reports through values, never through
Python's process-wide `warnings`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import connector.escalation

PACKAGE = Path(connector.escalation.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_module_of_the_escalation_package_imports_providers_or_warnings() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 5
    for path in modules:
        bad = {name for name in _imports(path) if name.split(".")[0] in ("providers", "warnings")}
        assert not bad, f"{path.name} imports {sorted(bad)}"
        assert not re.search(r"(?<![.\w])warnings\.", path.read_text("utf-8")), f"{path.name} uses warnings."
