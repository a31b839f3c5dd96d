"""The SFTP upload against a real OpenSSH server (Debian's `openssh-server`), started by the test on a loopback port
with its own host key, client key and config, and stopped by it. Skipped with the reason where sshd cannot start,
except under CI=true, where that is a failure."""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connector.handoff import export_cases, load_format
from connector.handoff.upload import UploadFailed, configured_upload
from connector.models import EventKind
from connector.store import Store

from .conftest import AS_OF, PdfPlatform, config_for

SSHD = "/usr/sbin/sshd"


@dataclass
class SftpServer:
    port: int
    user: str
    inbox: Path
    client_key: Path
    known_hosts: Path

    @property
    def url(self) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{self.inbox}"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the SFTP test must run)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[SftpServer]:
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        _unavailable(f"{SSHD} or ssh-keygen is not installed (Debian package openssh-server)")
    if os.geteuid() == 0:  # sshd run by root wants its privilege separation folder (the service would create it)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    root = tmp_path / "sshd"
    root.mkdir()
    inbox = tmp_path / "agency-inbox"
    inbox.mkdir()
    _keygen(root / "host_key")
    _keygen(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    os.chmod(root / "authorized_keys", 0o600)
    port = _free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\n"
    )
    host_key = (root / "host_key.pub").read_text().split()
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    log = (root / "sshd.log").open("w")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                _unavailable(f"sshd could not start: {(root / 'sshd.log').read_text().strip()[:300]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    _unavailable("sshd did not listen within 10 s")
                time.sleep(0.05)
        yield SftpServer(port, getpass.getuser(), inbox, root / "client_key", known_hosts)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _export(book: Store, tmp_path: Path, server: SftpServer, **kwargs: object) -> object:
    config = config_for(tmp_path, upload=server.url, upload_key=str(server.client_key),
                        upload_known_hosts=str(server.known_hosts))
    upload = configured_upload(config.handoff.upload, config.handoff.upload_key, config.handoff.upload_known_hosts,
                               base_dir=config.base_dir)
    return export_cases(book, config, load_format("generic-json"), AS_OF, out_dir=config.handoff_dir,
                        fetch_pdf=PdfPlatform(), upload=upload, **kwargs)


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_export_folder_is_uploaded_whole_and_the_cases_marked_uploaded(book: Store, tmp_path: Path,
                                                                           sftp_server: SftpServer) -> None:
    result = _export(book, tmp_path, sftp_server)
    assert result.ok and result.uploaded_to == f"{sftp_server.inbox}/{result.path.name}"  # type: ignore[attr-defined]
    arrived = sftp_server.inbox / result.path.name  # type: ignore[attr-defined]
    assert _tree(arrived) == _tree(result.path) and "manifest.json" in _tree(arrived)  # type: ignore[attr-defined]
    assert [p.name for p in sftp_server.inbox.iterdir()] == [arrived.name]  # no staging leftover
    assert {c.status for c in book.handoff_cases()} == {"uploaded"}
    assert any(e.kind is EventKind.HANDOFF for e in book.events("acme", "IB1"))


def test_a_zip_is_uploaded_as_one_file(book: Store, tmp_path: Path, sftp_server: SftpServer) -> None:
    result = _export(book, tmp_path, sftp_server, as_zip=True)
    arrived = sftp_server.inbox / "2026-09-30-generic-json.zip"
    assert result.ok and arrived.read_bytes() == result.path.read_bytes()  # type: ignore[attr-defined]


def test_an_unknown_host_key_refuses_the_upload_and_leaves_the_export_and_the_cases(
        book: Store, tmp_path: Path, sftp_server: SftpServer) -> None:
    impostor = tmp_path / "impostor"
    _keygen(impostor)
    kind, key = impostor.with_suffix(".pub").read_text().split()[:2]
    sftp_server.known_hosts.write_text(f"[127.0.0.1]:{sftp_server.port} {kind} {key}\n")
    result = _export(book, tmp_path, sftp_server)
    assert not result.ok and result.upload_error  # type: ignore[attr-defined]
    assert str(sftp_server.port) in result.upload_error  # type: ignore[attr-defined]
    assert (result.path / "cases.json").exists()  # type: ignore[attr-defined]
    assert list(sftp_server.inbox.iterdir()) == []
    assert {c.status for c in book.handoff_cases()} == {"exported"}
    assert not any(e.kind is EventKind.HANDOFF for e in book.events("acme", "IB1"))
    assert book.outbox_pending("acme") == []


def test_a_server_that_does_not_answer_fails_the_upload_with_a_plain_reason(tmp_path: Path) -> None:
    from connector.handoff.upload import parse_sftp_url, upload_export

    key = tmp_path / "key"
    _keygen(key)
    (tmp_path / "export").mkdir()
    (tmp_path / "known_hosts").write_text("")
    with pytest.raises(UploadFailed, match=r"upload to sftp://agency@127\.0\.0\.1:\d+/in failed: "):
        upload_export(tmp_path / "export", parse_sftp_url(f"sftp://agency@127.0.0.1:{_free_port()}/in"), key_file=key,
                      known_hosts=tmp_path / "known_hosts", timeout=5)
