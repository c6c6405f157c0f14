"""Connectors: one module per platform, turning platform data into normalised items."""
