"""Adapters are found by entry-point name; unknown or broken names get a clear error."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from connector import plugins


def test_the_three_platforms_are_registered_by_name():
    assert {"exact", "moneybird", "xero"} <= set(plugins.names(plugins.PROVIDERS))
    assert {"exact", "moneybird", "xero"} <= set(plugins.names(plugins.SIMULATORS))


def test_a_registered_provider_class_is_loaded(fake_provider):
    assert plugins.provider_class("fake") is fake_provider


def test_an_unknown_name_lists_the_known_ones(fake_provider):
    with pytest.raises(plugins.PluginError, match=r"unknown provider 'sage'; known: exact, fake, moneybird, xero"):
        plugins.provider_class("sage")


def test_a_plugin_that_fails_to_import_says_so(monkeypatch):
    def boom():
        raise ImportError("No module named 'lxml'")

    monkeypatch.setattr(plugins, "installed", lambda group: {"odd": SimpleNamespace(name="odd", load=boom)})
    with pytest.raises(plugins.PluginError, match="the provider 'odd' is installed but cannot be loaded: No module"):
        plugins.provider_class("odd")


def test_a_class_that_is_not_a_provider_is_refused(monkeypatch):
    monkeypatch.setattr(plugins, "installed", lambda group: {"odd": SimpleNamespace(name="odd", load=lambda: dict)})
    with pytest.raises(plugins.PluginError, match="does not implement providers.base.Provider"):
        plugins.provider_class("odd")
