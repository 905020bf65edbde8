"""rlnas: reinforcement-learning neural architecture search with per-task objectives."""

__version__ = "0.1.0"

from rlnas.registration import register_envs as _register_envs

# The rlnas/... Gymnasium ids resolve once the package is imported (string entry points: nothing heavy loads).
_register_envs()
