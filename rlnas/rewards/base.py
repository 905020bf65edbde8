"""Reward formulas: an :class:`~rlnas.spaces.seams.Evaluation` in, a float out.

The :class:`Reward` protocol and the default :class:`MetricReward` live in
:mod:`rlnas.spaces.seams`, below the environment that defaults to it.
"""

from rlnas.spaces.seams import MetricReward, Reward, reward_number

__all__ = ["MetricReward", "Reward", "reward_number"]
