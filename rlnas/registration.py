"""Gymnasium ids of rlnas's environments, registered when ``rlnas`` is imported.

Registration names entry points as strings, so it imports nothing heavy:
the environment modules load on the first ``gym.make``. Gymnasium before 1.0
also finds :func:`register_envs` through the ``gymnasium.envs`` entry point
(pyproject.toml), so ``gym.make("rlnas/NB201-v0")`` works there without any
import of rlnas; Gymnasium 1.x dropped that plugin hook, so there
``import rlnas`` (or the id ``"rlnas.env:rlnas/NB201-v0"``) registers them.
"""

from __future__ import annotations

ENV_ID = "rlnas/ArchitectureSearch-v0"
#: Tabular benchmarks: one architecture per episode, the table's metric as reward.
TABLE_ENV_IDS = {
    "rlnas/NB201-v0": "rlnas.env.tables:nb201_env",
    "rlnas/ToyTable-v0": "rlnas.env.tables:toy_env",
    "rlnas/Table-v0": "rlnas.env.tables:make_table_env",
}


def register_envs() -> None:
    """Registers every ``rlnas/...`` id that is not registered yet."""
    import gymnasium as gym

    for env_id, entry in {ENV_ID: "rlnas.env.arch_env:ArchitectureEnv", **TABLE_ENV_IDS}.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry)
