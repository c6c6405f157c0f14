"""governance-bot: keeps a school's or training provider's official social media and staff-learner channels safe."""

__version__ = "0.1.0"
