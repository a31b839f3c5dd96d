"""Delivering an export to the agency's SFTP server (`[handoff] upload = "sftp://user@host/path"`), with paramiko.

The private key comes from a file the config names (never from the config itself), and the server must be known:
its host key is checked against a known_hosts file, an unknown or changed key refuses the upload (no trust on first
use for files full of personal data). The export is uploaded under a hidden temporary name and renamed when
complete, so the agency's intake never picks up half an export.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from providers.errors import DunningError

if TYPE_CHECKING:
    from paramiko import SFTPClient


class UploadFailed(DunningError):
    """The export could not be delivered; it stays in the export folder."""


@dataclass(frozen=True)
class SftpTarget:
    user: str
    host: str
    port: int
    path: str

    def __str__(self) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}{self.path}"


def parse_sftp_url(url: str) -> SftpTarget:
    """`sftp://user@host[:port]/path` (the path is the folder the exports go into); no password in the URL."""
    parts = urlsplit(url)
    if parts.scheme != "sftp" or not parts.hostname or not parts.username:
        raise ValueError("must look like sftp://user@host/path (or sftp://user@host:port/path)")
    if parts.password is not None:
        raise ValueError("must not carry a password: give the private key's file in upload_key")
    try:
        port = parts.port or 22
    except ValueError:
        raise ValueError("has a port that is not a number") from None
    return SftpTarget(unquote(parts.username), parts.hostname, port, unquote(parts.path) or ".")


def upload_export(
    local: Path, target: SftpTarget, *, key_file: Path, known_hosts: Path | None = None, timeout: float = 30.0
) -> str:
    """Upload the export folder or zip `local` into the target folder; returns the remote path.

    Raises `UploadFailed` with a reason a person can act on (never the key or its passphrase).
    """
    import paramiko

    client = paramiko.SSHClient()
    try:
        try:
            key = paramiko.PKey.from_path(str(key_file))
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise UploadFailed(f"upload_key: cannot read the private key {key_file}: {_reason(exc)}") from None
        hosts = known_hosts if known_hosts is not None else Path("~/.ssh/known_hosts").expanduser()
        try:
            client.load_host_keys(str(hosts))
        except OSError as exc:
            raise UploadFailed(f"upload_known_hosts: cannot read {hosts}: {_reason(exc)}") from None
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                target.host, port=target.port, username=target.user, pkey=key, timeout=timeout,
                banner_timeout=timeout, auth_timeout=timeout, allow_agent=False, look_for_keys=False,
            )
            with client.open_sftp() as sftp:
                return _put(sftp, local, target.path)
        except (OSError, EOFError, paramiko.SSHException) as exc:  # timeouts are OSErrors
            raise UploadFailed(f"upload to {target} failed: {_reason(exc)}") from None
    finally:
        client.close()


def _put(sftp: SFTPClient, local: Path, folder: str) -> str:
    name = local.name
    staging = posixpath.join(folder, f".{name}.partial")
    final = posixpath.join(folder, name)
    if local.is_dir():
        _remove(sftp, staging)
        sftp.mkdir(staging, mode=0o700)
        for path in sorted(local.rglob("*")):
            remote = posixpath.join(staging, path.relative_to(local).as_posix())
            if path.is_dir():
                sftp.mkdir(remote, mode=0o700)
            else:
                sftp.put(str(path), remote)
                sftp.chmod(remote, 0o600)
    else:
        sftp.put(str(local), staging)
        sftp.chmod(staging, 0o600)
    sftp.posix_rename(staging, final)
    return final


def _remove(sftp: SFTPClient, path: str) -> None:
    """Remove a staging leftover of an earlier failed upload, if any."""
    import stat

    try:
        attributes = sftp.stat(path)
    except OSError:
        return
    if stat.S_ISDIR(attributes.st_mode or 0):
        for entry in sftp.listdir_attr(path):
            _remove(sftp, posixpath.join(path, entry.filename))
        sftp.rmdir(path)
    else:
        sftp.remove(path)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def configured_upload(upload: str | None, key_file: Path | None, known_hosts: Path | None, *, base_dir: Path,
                      ) -> Callable[[Path], str] | None:
    """The upload `[handoff]` asks for (paths relative to the config's folder), or None without `upload`."""
    if upload is None or key_file is None:
        return None
    target = parse_sftp_url(upload)

    def resolve(path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else base_dir / path

    hosts = resolve(known_hosts) if known_hosts is not None else None
    return lambda local: upload_export(local, target, key_file=resolve(key_file), known_hosts=hosts)
