"""governance-bot: keeps the official social media and staff-learner channels of schools safe."""

__version__ = "0.1.0"
