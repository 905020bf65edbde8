"""Reward formulas combining a validation metric with cost penalties."""

from rlnas.rewards.base import MetricReward, Reward

__all__ = ["MetricReward", "Reward"]
