"""Who holds an outbox row: a claim names its process (host, pid, a run id), so a later run can tell a row another
live run is working (left alone) from one a crashed run left in flight (reconciled)."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from connector.store import OutboxEntry

LEASE = timedelta(minutes=30)
"""A claim counts as abandoned after this long (one row takes seconds), or at once on this machine when its process
is gone."""

def claimant() -> dict[str, Any]:
    """This process, as a claim on an outbox row names it."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "run": _run()}

_RUNS: dict[int, str] = {}

def _run() -> str:
    """This process's run id (per process id: a forked child gets its own, not its parent's)."""
    return _RUNS.setdefault(os.getpid(), uuid.uuid4().hex)

def abandoned(entry: OutboxEntry, now: datetime) -> bool:
    """A `sending` row whose claimant is gone: its process ended (same machine) or its lease ran out."""
    claim = (entry.receipt or {}).get("claimant") or {}
    if claim.get("run") == _run():
        return False
    try:
        claimed_at = datetime.fromisoformat(str((entry.receipt or {}).get("claimed_at")))
    except ValueError:
        return True
    if now - claimed_at > LEASE:  # one row takes seconds: this claim's process died (or its pid was reused)
        return True
    if claim.get("host") == socket.gethostname() and isinstance(claim.get("pid"), int):
        return not _alive(claim["pid"])
    return False

def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this very process, in an earlier run of the same interpreter (tests): not abandoned
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

