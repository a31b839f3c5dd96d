"""Dunning Connector: the provider-independent core (model, config, store, escalation, delivery, export, CLI)."""

__version__ = "0.1.0"
