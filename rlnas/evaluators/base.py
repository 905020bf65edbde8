"""The evaluator seam: an architecture in, its metrics and costs out."""

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
