"""Data, not code: collection-agency intake formats (`agencies/*.toml`), shipped as package data."""
