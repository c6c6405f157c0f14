"""Sinks: where notifications go when they leave the outbox (console, JSON file, Slack)."""
