"""rlnas: reinforcement-learning neural architecture search with per-task objectives."""

__version__ = "0.1.0"

from rlnas.registration import register_envs as _register_envs
from rlnas.registration import register_resolvers as _register_resolvers

# The rlnas/... Gymnasium ids resolve once the package is imported (string entry points: nothing heavy loads),
# and the resolver of sweep job folders, also in a launcher's worker processes (they import rlnas).
_register_envs()
_register_resolvers()
