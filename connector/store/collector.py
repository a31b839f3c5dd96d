"""Fewer garbage collections while a whole book streams through the rules.

Streaming the open book creates a few hundred short-lived objects per invoice (rows, models, histories, actions) and
keeps almost none: no cycles for the collector to find, yet CPython's default threshold (a young-generation pass
every 700 allocations) runs it some thousand times per 100,000 invoices, and the older generations with it. A
higher threshold while streaming cuts a tenth of the CPU time of planning a large book (`bench/plan_million.py`);
the collector still runs, just less often, and the defaults come back when the last stream ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STREAMING_THRESHOLD = 10_000
"""Allocations between young-generation collections while streaming (CPython's default is 700)."""

_streams = 0
_saved: tuple[int, int, int] | None = None
_lock = threading.Lock()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the young generation's threshold for the duration (nested, interleaved and concurrent streams — `dunning
    run` works connections in threads —: the first one in raises it, the last one out puts back what was there)."""
    global _streams, _saved
    with _lock:
        if _streams == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(STREAMING_THRESHOLD, _saved[0]), *_saved[1:])
        _streams += 1
    try:
        yield
    finally:
        with _lock:
            _streams -= 1
            if _streams == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
