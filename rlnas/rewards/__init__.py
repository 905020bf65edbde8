"""Reward formulas combining a validation metric with cost penalties."""

from rlnas.rewards.base import MetricReward, Reward, reward_number
from rlnas.rewards.constraints import FeasibilityMask, InfeasibleConstraintError
from rlnas.rewards.formulas import ConstrainedReward, HardReward, MnasReward, TunasAbsReward, WeightedReward

__all__ = [
    "ConstrainedReward",
    "FeasibilityMask",
    "HardReward",
    "InfeasibleConstraintError",
    "MetricReward",
    "MnasReward",
    "Reward",
    "TunasAbsReward",
    "WeightedReward",
    "reward_number",
]
