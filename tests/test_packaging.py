"""An installed copy (not this checkout) carries its data files: the starter config and the agency formats."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from connector.store.migrations import head

REPO = Path(__file__).resolve().parents[1]

CHECK = """
import importlib.resources, json, connector, mappings
from connector.config import starter_config
from connector.store.migrations import head
print(json.dumps({
    "migrations_head": head(),
    "connector": connector.__file__,
    "starter": starter_config(),
    "agency": importlib.resources.files("mappings").joinpath("agencies", "example.toml").read_text(encoding="utf-8"),
}))
"""


def test_a_built_copy_ships_the_starter_config_and_the_agency_formats(tmp_path):
    pytest.importorskip("setuptools", reason="building needs setuptools in the test environment")
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "config.example.toml"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("connector", "providers", "mappings"):
        shutil.copytree(REPO / package, source / package, symlinks=True, ignore=ignore)
    (source / "mappings" / "agencies").mkdir(exist_ok=True)
    (source / "mappings" / "agencies" / "example.toml").write_text('name = "Example Incasso"\n', encoding="utf-8")
    built = tmp_path / "built"

    subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", str(built)],
        cwd=source, check=True, capture_output=True,
    )

    env = os.environ | {"PYTHONPATH": str(built)}
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["connector"]).is_relative_to(built)  # really the built copy, not this checkout
    assert not (built / "connector" / "config.example.toml").is_symlink()
    assert found["starter"] == (REPO / "config.example.toml").read_text(encoding="utf-8")
    assert found["agency"] == 'name = "Example Incasso"\n'
    assert found["migrations_head"] == head()  # the Alembic revisions ship with the package
