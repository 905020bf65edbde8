"""Reward formulas: an :class:`~rlnas.evaluators.base.Evaluation` in, a float out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rlnas.evaluators.base import Evaluation


@runtime_checkable
class Reward(Protocol):
    """Turns the metrics and costs of an architecture into a scalar reward."""

    def __call__(self, evaluation: Evaluation) -> float: ...


class MetricReward:
    """The validation metric alone, as in ENAS (reward = validation accuracy).

    Args:
        metric: Metric name; ``None`` uses the evaluator's reward metric, i.e.
            the only metric in a minibatch evaluation.
    """

    def __init__(self, metric: str | None = None) -> None:
        self.metric = metric

    def metric_of(self, evaluation: Evaluation) -> float:
        if self.metric is not None:
            if self.metric not in evaluation.metrics:
                raise KeyError(
                    f"reward.metric={self.metric!r} is not among the evaluated metrics "
                    f"{sorted(evaluation.metrics)}"
                )
            return float(evaluation.metrics[self.metric])
        if len(evaluation.metrics) != 1:
            raise KeyError(f"reward.metric must name one of {sorted(evaluation.metrics)}")
        return float(next(iter(evaluation.metrics.values())))

    def __call__(self, evaluation: Evaluation) -> float:
        return self.metric_of(evaluation)
