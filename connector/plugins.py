"""Adapters and simulators are found by name through entry points, so the core never imports a platform.

A third-party platform is an installable package declaring `[project.entry-points."dunning.providers"]`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib.metadata import entry_points
from typing import Any, Protocol

from providers.base import Provider
from providers.errors import DunningError

PROVIDERS = "dunning.providers"
SIMULATORS = "dunning.simulators"

_KIND = {PROVIDERS: "provider", SIMULATORS: "simulator"}


class PluginError(DunningError):
    """An unknown or broken plugin name."""


class Loadable(Protocol):
    name: str

    def load(self) -> Any: ...


def installed(group: str) -> dict[str, Loadable]:
    """The plugins installed in `group`, by name."""
    return {point.name: point for point in entry_points(group=group)}


def names(group: str) -> list[str]:
    return sorted(installed(group))


def load(group: str, name: str) -> Any:
    """The class registered under `name`; an unknown name lists the known ones."""
    found = installed(group)
    kind = _KIND.get(group, group)
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise PluginError(f"unknown {kind} {name!r}; known: {known}")
    try:
        return found[name].load()
    except Exception as exc:  # an import error in a plugin must not look like a missing plugin
        raise PluginError(f"the {kind} {name!r} is installed but cannot be loaded: {exc}") from exc


def provider_class(name: str) -> type[Provider]:
    cls = load(PROVIDERS, name)
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise PluginError(f"the provider {name!r} does not implement providers.base.Provider")
    return cls


def provider_loaders() -> dict[str, Callable[[], type[Provider]]]:
    """Adapters by name, each loaded only when called (a broken plugin fails alone, when it is chosen)."""
    return {name: partial(provider_class, name) for name in names(PROVIDERS)}


def simulator_class(name: str) -> Any:
    return load(SIMULATORS, name)
