"""Rewards that trade the validation metric against costs and limits.

``targets`` maps a cost name (see :data:`rlnas.costs.COST_NAMES`) to its target
or limit, e.g. ``{"size_mb": 1.0, "latency_ms": 100.0}``; several at once are
combined as each paper combines them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rlnas.costs.model import COST_NAMES
from rlnas.evaluators.base import Evaluation
from rlnas.rewards.base import MetricReward


def _number(value: Any, key: str) -> float:
    """``reward.KEY``'s value as a float; ``true`` is not a number of anything here (YAML would make it 1)."""
    if isinstance(value, bool):
        raise ValueError(f"reward.{key}={value!r} must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"reward.{key}={value!r} must be a number") from None


def _check_targets(targets: Mapping[str, float] | None, kind: str = "targets") -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, value in dict(targets or {}).items():
        if name not in COST_NAMES:
            raise ValueError(f"reward.{kind}.{name} is not a cost; allowed: {list(COST_NAMES)}")
        if value is None:
            continue
        value = _number(value, f"{kind}.{name}")
        if not value > 0:
            raise ValueError(f"reward.{kind}.{name} must be > 0, got {value}")
        checked[name] = float(value)
    return checked


class ConstrainedReward(MetricReward):
    """Base of the cost-aware rewards: a metric plus cost targets.

    Args:
        metric: Metric name (``None``: the task's reward metric).
        targets: Cost name -> target (> 0).
    """

    needs_targets = True
    #: Whether the targets are limits an architecture must meet (so a space none of whose architectures meets
    #: them cannot be searched), rather than reference points that scale a penalty (MnasNet's soft reward,
    #: TuNAS, the weighted sum), which any architecture can be scored against.
    limits = False

    def __init__(self, metric: str | None = None, targets: Mapping[str, float] | None = None) -> None:
        super().__init__(metric)
        self.targets = _check_targets(targets)
        if self.needs_targets and not self.targets:
            raise ValueError(f"reward.targets must set at least one of {list(COST_NAMES)} for {type(self).__name__}")

    def ratios(self, evaluation: Evaluation) -> dict[str, float]:
        """``cost / target`` per targeted cost."""
        out = {}
        for name, target in self.targets.items():
            if name not in evaluation.costs:
                raise KeyError(
                    f"reward.targets.{name}: the evaluator reports no {name!r} (has {sorted(evaluation.costs)})"
                )
            cost = float(evaluation.costs[name])
            if not (math.isfinite(cost) and cost >= 0):  # a table's column or a measurement gone wrong
                raise ValueError(f"reward.targets.{name}: an architecture has {name}={cost}; a cost is a number >= 0")
            out[name] = cost / target
        return out

    def feasible(self, evaluation: Evaluation) -> bool:
        """Whether every targeted cost is within its target."""
        return all(r <= 1.0 for r in self.ratios(evaluation).values())


class MnasReward(ConstrainedReward):
    """MnasNet reward (Tan et al., 2019, eq. 2): ``metric * prod (cost / target) ** w``.

    ``w = alpha`` when the cost is within the target, ``beta`` otherwise. The
    soft variant uses ``alpha = beta = -0.07`` and the hard one ``alpha = 0,
    beta = -1`` (both from the paper, sec. 3).

    Args:
        mode: ``soft`` or ``hard`` (sets the default exponents).
        alpha: Exponent within the target (<= 0).
        beta: Exponent beyond the target (<= 0).
    """

    def __init__(
        self,
        metric: str | None = None,
        targets: Mapping[str, float] | None = None,
        mode: str = "soft",
        alpha: float | None = None,
        beta: float | None = None,
    ) -> None:
        super().__init__(metric, targets)
        defaults = {"soft": (-0.07, -0.07), "hard": (0.0, -1.0)}
        if mode not in defaults:
            raise ValueError(f"reward.mode={mode!r} is unknown; allowed: {list(defaults)}")
        self.limits = mode == "hard"
        self.alpha = defaults[mode][0] if alpha is None else _number(alpha, "alpha")
        self.beta = defaults[mode][1] if beta is None else _number(beta, "beta")
        for key in ("alpha", "beta"):
            if getattr(self, key) > 0:
                raise ValueError(f"reward.{key} must be <= 0 (a penalty exponent), got {getattr(self, key)}")

    def __call__(self, evaluation: Evaluation) -> float:
        reward = self.metric_of(evaluation)
        for name, ratio in self.ratios(evaluation).items():
            exponent = self.alpha if ratio <= 1.0 else self.beta
            if ratio == 0 and exponent < 0:  # (0 / target) ** alpha: a free architecture's reward is unbounded
                raise ValueError(
                    f"reward.targets.{name}: an architecture has {name}=0, and MnasNet's factor "
                    f"({name} / target) ** {exponent:g} is infinite there; use reward=tunas_abs or reward=weighted "
                    "for a cost that can be 0"
                )
            reward *= ratio**exponent
        return reward


class TunasAbsReward(ConstrainedReward):
    """TuNAS absolute-value reward (Bender et al., 2020): ``metric + beta * |cost / target - 1|``.

    Summed over targets; ``beta < 0`` (default -0.07, the TuNAS setting). Unlike
    MnasNet's ratio, it penalises missing the target in either direction.
    """

    def __init__(
        self, metric: str | None = None, targets: Mapping[str, float] | None = None, beta: float = -0.07
    ) -> None:
        super().__init__(metric, targets)
        self.beta = _number(beta, "beta")
        if not self.beta < 0:
            raise ValueError(f"reward.beta must be < 0, got {beta}")

    def __call__(self, evaluation: Evaluation) -> float:
        return self.metric_of(evaluation) + sum(self.beta * abs(r - 1.0) for r in self.ratios(evaluation).values())


class HardReward(ConstrainedReward):
    """The metric when every limit holds, else a fixed ``penalty`` reward."""

    limits = True

    def __init__(
        self, metric: str | None = None, targets: Mapping[str, float] | None = None, penalty: float = 0.0
    ) -> None:
        super().__init__(metric, targets)
        self.penalty = _number(penalty, "penalty")

    def __call__(self, evaluation: Evaluation) -> float:
        return self.metric_of(evaluation) if self.feasible(evaluation) else self.penalty


class WeightedReward(ConstrainedReward):
    """Linear scalarisation: ``metric - sum lambda_i * cost_i / target_i``.

    Args:
        weights: Cost name -> lambda (> 0); every weighted cost needs a target.
    """

    def __init__(
        self,
        metric: str | None = None,
        targets: Mapping[str, float] | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(metric, targets)
        self.weights = _check_targets(weights, "weights")
        if not self.weights:  # the reward would be the metric alone: say so rather than run a weightless search
            raise ValueError(
                "reward.weights is empty; name at least one cost (e.g. reward.weights.params=0.1), or use reward=metric"
            )
        for name in self.weights:
            if name not in self.targets:
                raise ValueError(f"reward.weights.{name} has no reward.targets.{name} to normalise by")

    def __call__(self, evaluation: Evaluation) -> float:
        ratios = self.ratios(evaluation)
        return self.metric_of(evaluation) - sum(w * ratios[n] for n, w in self.weights.items())
