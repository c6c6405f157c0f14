"""The Slack app's listeners, one module per feature, each with ``register(app, deps)``."""
