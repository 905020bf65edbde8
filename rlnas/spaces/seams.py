"""The seams lower rooms program against: an evaluation, who makes it, and who turns it into a reward.

They sit beside the spaces, below every room that uses them: the Gymnasium
environment, the controllers and the tabular benchmarks take an
:class:`Evaluator` and a :class:`Reward` without importing the evaluators or
the reward formulas that implement them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass
class Evaluation:
    """What is known about one architecture.

    Attributes:
        metrics: Task metrics, e.g. ``{"accuracy": 0.98}``.
        costs: Cost figures, e.g. ``{"params": 41234}``.
    """

    metrics: dict[str, float]
    costs: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Evaluator(Protocol):
    """Scores architectures; never changes weights."""

    #: Name of the metric (in :attr:`Evaluation.metrics`) rewards use by default.
    reward_metric: str

    def evaluate(self, arch: Sequence[int]) -> Evaluation:
        """Metrics and costs of one architecture."""
        ...

    def evaluate_batch(self, archs: Sequence[Sequence[int]]) -> list[Evaluation]:
        """Metrics and costs of several architectures, scored on the same data."""
        ...


@runtime_checkable
class Reward(Protocol):
    """Turns the metrics and costs of an architecture into a scalar reward."""

    def __call__(self, evaluation: Evaluation) -> float: ...


def reward_number(value: object, reward: object) -> float:
    """``value`` (what ``reward`` returned) as a float, refused unless it is a real number.

    A reward of the user's own could return anything: ``None`` or a list ended in a traceback, a string
    in "could not convert string to float" naming no reward, and ``True`` or ``"0.5"`` were taken as
    numbers. NaN and inf pass: the loops count or refuse those themselves, naming the architecture.

    Raises:
        ValueError: Naming the reward's class and what it returned.
    """
    import numbers

    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    item = getattr(value, "item", None)  # a one-element tensor or array; more elements raise
    try:
        scalar = item() if callable(item) else None
    except (ValueError, RuntimeError):
        scalar = None
    if isinstance(scalar, numbers.Real) and not isinstance(scalar, bool):
        return float(scalar)
    shown = f"{repr(value)[:80]} ({type(value).__name__})"
    raise ValueError(f"reward {type(reward).__name__} returned {shown}; it must return a number")


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
                    f"reward.metric={self.metric!r} is not among the evaluated metrics {sorted(evaluation.metrics)}"
                )
            return float(evaluation.metrics[self.metric])
        if len(evaluation.metrics) != 1:
            raise KeyError(f"reward.metric must name one of {sorted(evaluation.metrics)}")
        return float(next(iter(evaluation.metrics.values())))

    def __call__(self, evaluation: Evaluation) -> float:
        return self.metric_of(evaluation)
