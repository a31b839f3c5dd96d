"""The export folder: written whole or not at all, readable by its owner only, with a manifest of hashes.

Everything is written into a hidden temporary folder next to the destination and renamed into place at the end (a
rename within one file system is atomic), so an agency's pick-up job or a person never sees half an export; a
failure removes the temporary folder. Folders are 0700 and files 0600: the export holds debtors' personal data.
`manifest.json` lists every file with its size and SHA-256, and the case totals, so the agency can check what
arrived; with `--zip` the folder becomes one archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
DOCUMENTS = "documents"


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700 folders; an existing folder keeps its mode."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    return path


def write_private(path: Path, content: bytes) -> Path:
    """Write a new 0600 file (never following or replacing an existing one)."""
    private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def free_name(out_dir: Path, stem: str) -> str:
    """`stem`, or `stem-2`, `stem-3`, … : the first name taken neither by a folder nor by a zip."""
    name, number = stem, 1
    while (out_dir / name).exists() or (out_dir / f"{name}.zip").exists():
        number += 1
        name = f"{stem}-{number}"
    return name


class ExportFolder:
    """A folder being written; `finish` moves it into place."""

    def __init__(self, staging: Path) -> None:
        self.path = staging

    def file(self, relative: str) -> Path:
        """Where to write `relative` (its folders created 0700); call `seal` after writing it yourself."""
        target = self.path / relative
        private_dir(target.parent)
        return target

    def write(self, relative: str, content: bytes) -> Path:
        return write_private(self.path / relative, content)

    def files(self) -> list[Path]:
        return sorted(p for p in self.path.rglob("*") if p.is_file())

    def seal(self) -> None:
        """Every file 0600 and every folder 0700, whoever wrote them."""
        for item in self.path.rglob("*"):
            os.chmod(item, 0o700 if item.is_dir() else 0o600)

    def write_manifest(self, header: Mapping[str, Any]) -> dict[str, Any]:
        """`manifest.json`: `header` plus every other file with its size and SHA-256."""
        self.seal()
        listed = [
            {"path": p.relative_to(self.path).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_of(p)}
            for p in self.files()
            if p.relative_to(self.path).as_posix() != MANIFEST
        ]
        manifest = dict(header) | {"files": listed}
        text = json.dumps(manifest, ensure_ascii=False, indent=1, default=str) + "\n"
        self.write(MANIFEST, text.encode("utf-8"))
        return manifest


@contextmanager
def staged_export(out_dir: Path, name: str, *, as_zip: bool = False) -> Iterator[tuple[ExportFolder, list[Path]]]:
    """Stage an export named `name` in `out_dir`; on a clean exit it appears as `out_dir/name` (or `name.zip`),
    whose path is appended to the yielded list. On an error nothing appears and the staging folder is removed."""
    private_dir(out_dir)
    staging = out_dir / f".{name}.partial-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    os.chmod(staging, 0o700)
    result: list[Path] = []
    try:
        folder = ExportFolder(staging)
        yield folder, result
        folder.seal()
        if as_zip:
            result.append(_zip_into_place(staging, out_dir, name))
            shutil.rmtree(staging)
        else:
            target = out_dir / name
            os.rename(staging, target)  # atomic; refuses to replace an existing non-empty folder
            result.append(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _zip_into_place(staging: Path, out_dir: Path, name: str) -> Path:
    partial = out_dir / f".{name}.zip.partial-{secrets.token_hex(4)}"
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in staging.rglob("*") if p.is_file()):
                archive.write(path, f"{name}/{path.relative_to(staging).as_posix()}")
        target = out_dir / f"{name}.zip"
        if target.exists():
            raise FileExistsError(f"{target} exists")
        os.rename(partial, target)
        return target
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
