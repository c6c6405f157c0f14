"""Detectors (one module each) and rule packs (TOML data in ``rules/packs``)."""
