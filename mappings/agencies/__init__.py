"""Agency intake formats as data (one .toml file per agency); see connector/handoff/formats.py."""
