"""A transport between an adapter and a simulator that can stop a sync or change an answer, as a user's Ctrl-C or a
misbehaving platform would."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest


class Tampered(httpx.BaseTransport):
    """Passes requests to `inner`; `interrupt` raises KeyboardInterrupt on a matching request, `rewrite` changes a
    matching JSON answer."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self._interrupts: list[list[Any]] = []
        self._rewrites: list[tuple[str, str, Callable[[Any], Any]]] = []

    def interrupt(self, path: str, *, on_call: int = 1, method: str = "GET", page: int | None = None) -> None:
        """Ctrl-C arrives while the `on_call`-th matching request is under way (with `page`: the request for that
        `page` query parameter, whatever order parallel page reads go out in)."""
        self._interrupts.append([path, method, on_call, page])

    def rewrite(self, path: str, change: Callable[[Any], Any], *, method: str = "GET") -> None:
        """Every matching answer's JSON body becomes `change(body)`."""
        self._rewrites.append((path, method, change))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        for planned in self._interrupts:
            if planned[1] == method and fnmatch.fnmatchcase(path, planned[0]) and (
                    planned[3] is None or request.url.params.get("page") == str(planned[3])):
                planned[2] -= 1
                if planned[2] == 0:
                    raise KeyboardInterrupt
        response = self.inner.handle_request(request)
        for pattern, wanted, change in self._rewrites:
            if wanted == method and fnmatch.fnmatchcase(path, pattern) and response.status_code == 200:
                body = json.loads(response.read())
                return httpx.Response(200, json=change(body), headers={"Content-Type": "application/json"},
                                      request=request)
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def tampered() -> Callable[[httpx.BaseTransport], Tampered]:
    return Tampered
