"""The Gymnasium environment, registered as ``rlnas/ArchitectureSearch-v0``."""

import gymnasium as gym

from rlnas.env.arch_env import ArchitectureEnv

ENV_ID = "rlnas/ArchitectureSearch-v0"
if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="rlnas.env.arch_env:ArchitectureEnv")

__all__ = ["ENV_ID", "ArchitectureEnv"]
