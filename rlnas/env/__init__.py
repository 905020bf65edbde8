"""The Gymnasium environments.

``rlnas/ArchitectureSearch-v0`` builds an architecture of any search space
against any evaluator; ``rlnas/NB201-v0``, ``rlnas/ToyTable-v0`` and
``rlnas/Table-v0`` (``benchmark=NAME``) answer from the tabular benchmarks.
"""

from rlnas.env.arch_env import ArchitectureEnv
from rlnas.env.tables import make_table_env
from rlnas.registration import ENV_ID, TABLE_ENV_IDS, register_envs

register_envs()

__all__ = ["ENV_ID", "TABLE_ENV_IDS", "ArchitectureEnv", "make_table_env"]
