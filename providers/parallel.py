"""Calls in parallel, answers in order: reading pages concurrently while the store still commits them one by one.

A platform that allows several calls at once (Xero: 5 per organisation) can have its further pages and id batches
read at the same time; the sync still hands pages to the store in their order, so its per-page commit and its
resumable cursor are exactly those of a sequential read. The rate limiter bounds how many calls are out at once;
this module only bounds how far reading runs ahead of the consumer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

AHEAD = 4
"""How many rounds of `at_once` tasks may run ahead of the consumer: enough that reading goes on at full width
while the consumer is busy for a while (storing a page, reading the contacts it names), few enough that memory
stays bounded (for Xero, 20 raw pages of 1,000 invoices: about 30 MB)."""


def in_order(tasks: Iterable[Callable[[], T]], *, at_once: int) -> InOrder[T]:
    """Start `tasks` now, `at_once` at a time, and hand the results over in the order given (see `InOrder`).
    With `at_once` 1 each task runs in the caller's thread when its result is asked for."""
    return InOrder(tasks, at_once)


class InOrder(Iterator[T]):
    """Results in the order of their tasks: `at_once` tasks run at a time, and at most `AHEAD` × `at_once` are
    started before the consumer takes their results, so a slow consumer does not make reading run far ahead. The
    first failure is raised at its place in the order and the tasks not yet started are dropped; `close` (a
    consumer that stops early) drops them too — the ones already running finish first, so no call is left behind
    half-made."""

    def __init__(self, tasks: Iterable[Callable[[], T]], at_once: int) -> None:
        self._queue = iter(tasks)
        self._pending: deque[Future[T]] = deque()
        self._executor = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="dunning-call") \
            if at_once > 1 else None
        for _ in range(AHEAD * at_once if self._executor else 0):
            self._start_next()

    def _start_next(self) -> None:
        assert self._executor is not None
        for task in self._queue:
            self._pending.append(self._executor.submit(task))
            break

    def __next__(self) -> T:
        if self._executor is None:
            return next(self._queue)()
        if not self._pending:
            self.close()
            raise StopIteration
        try:
            result = self._pending.popleft().result()
        except BaseException:
            self.close()
            raise
        self._start_next()
        return result

    def close(self) -> None:
        if self._executor is None:
            return
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)


def started(call: Callable[[], T], *, at_once: int) -> Callable[[], T]:
    """Start `call` now, in the background, and return a function that hands over its answer (waiting for it).

    For independent reads that can go out together (the invoice and the contact change lists). With `at_once` 1
    nothing starts early: the call is made, in the caller's thread, when its answer is asked for."""
    if at_once <= 1:
        return call
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dunning-call")
    future = executor.submit(call)
    executor.shutdown(wait=False)
    return future.result


def first_started(items: Iterator[T], *, at_once: int) -> Iterator[T]:
    """`items` with its first item (a listing's first page) fetched now, in the background; the rest as asked."""
    sentinel = object()
    first = started(lambda: next(items, sentinel), at_once=at_once)

    def rest() -> Iterator[T]:
        item = first()
        if item is sentinel:
            return
        yield item  # type: ignore[misc]
        yield from items

    return rest()
