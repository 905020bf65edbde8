"""The Gymnasium environments.

``rlnas/ArchitectureSearch-v0`` builds an architecture of any search space
against any evaluator; ``rlnas/NB201-v0``, ``rlnas/ToyTable-v0`` and
``rlnas/Table-v0`` (``benchmark=NAME``) answer from the tabular benchmarks.
"""

import gymnasium as gym

from rlnas.env.arch_env import ArchitectureEnv
from rlnas.env.tables import make_table_env

ENV_ID = "rlnas/ArchitectureSearch-v0"
#: Tabular benchmarks: one architecture per episode, the table's metric as reward.
TABLE_ENV_IDS = {
    "rlnas/NB201-v0": "rlnas.env.tables:nb201_env",
    "rlnas/ToyTable-v0": "rlnas.env.tables:toy_env",
    "rlnas/Table-v0": "rlnas.env.tables:make_table_env",
}
for _id, _entry in {ENV_ID: "rlnas.env.arch_env:ArchitectureEnv", **TABLE_ENV_IDS}.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=_entry)

__all__ = ["ENV_ID", "TABLE_ENV_IDS", "ArchitectureEnv", "make_table_env"]
