"""Writing a file so that a crash leaves the old content or the new one, never a mix: the one helper the config
editor (`dunning setup`) and the token store share."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

NEW_FILE_MODE = 0o644


def write_atomically(path: Path | str, data: bytes | str, *, mode: int | None = None) -> None:
    """Replace `path` with `data` in one step (a sibling temp file, fsync, rename, fsync of the folder).

    `mode` sets the file's permissions; None keeps an existing file's (0644 for a new one). The temp file is 0600
    from its first byte, so a private file is never readable by others, not even half-written. A symlink (a config
    kept in a dotfiles folder, say) stays a link: the file it points at is replaced.
    """
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        mode = target.stat().st_mode & 0o777 if target.exists() else NEW_FILE_MODE
    temp = _write_temp(target, data.encode("utf-8") if isinstance(data, str) else data, mode)
    try:
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def create_once(path: Path | str, data: bytes, *, mode: int = 0o600) -> None:
    """Create `path` with `data` unless it exists; of two racing creators the first wins, whole."""
    target = Path(path)
    temp = _write_temp(target, data, mode)
    try:
        os.link(temp, target)
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(target.parent)


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    """A sibling temp file with `data`, flushed to disk, 0600 while written and `mode` once complete."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temp


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a directory; its rename is durable once it returns
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
