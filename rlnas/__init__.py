"""rlnas: reinforcement-learning neural architecture search with per-task objectives."""

__version__ = "0.1.0"
