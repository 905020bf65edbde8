"""Choosing the final architecture(s): best reward, top-k, or the knee of the Pareto front."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RULES = ("best", "top_k", "knee")


@dataclass
class SelectionSettings:
    """``selection:`` in the config.

    Attributes:
        rule: ``best`` (highest reward), ``top_k`` (the k highest, best first)
            or ``knee`` (the Pareto point of metric vs ``cost`` farthest from
            the line joining the front's ends, after normalising both axes).
        k: How many architectures ``top_k`` keeps.
        cost: Cost axis of the Pareto front.
    """

    rule: str = "best"
    k: int = 3
    cost: str = "params"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"selection.rule={self.rule!r} is unknown; allowed: {list(RULES)}")
        if int(self.k) < 1:
            raise ValueError(f"selection.k must be >= 1, got {self.k}")


def pareto_front(metric: Sequence[float], cost: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats (higher metric and lower cost), by cost."""
    m, c = np.asarray(metric, dtype=float), np.asarray(cost, dtype=float)
    order = np.lexsort((-m, c))  # by cost, then best metric first
    front, best = [], -np.inf
    for i in order:
        if m[i] > best:
            front.append(int(i))
            best = m[i]
    return front


def knee_point(metric: Sequence[float], cost: Sequence[float]) -> int:
    """Index of the knee of the Pareto front (largest distance to the chord between its ends)."""
    front = pareto_front(metric, cost)
    if len(front) <= 2:
        return max(front, key=lambda i: metric[i])
    m = np.asarray([metric[i] for i in front], dtype=float)
    c = np.asarray([cost[i] for i in front], dtype=float)
    m = (m - m.min()) / max(np.ptp(m), 1e-12)
    c = (c - c.min()) / max(np.ptp(c), 1e-12)
    start, end = np.array([c[0], m[0]]), np.array([c[-1], m[-1]])
    direction = (end - start) / np.linalg.norm(end - start)
    rel = np.stack([c, m], axis=1) - start
    distance = np.abs(rel[:, 0] * direction[1] - rel[:, 1] * direction[0])
    return front[int(np.argmax(distance))]


def select(
    rewards: Sequence[float], metric: Sequence[float], cost: Sequence[float], settings: SelectionSettings
) -> list[int]:
    """Indices of the selected candidates, the chosen one first."""
    by_reward = sorted(range(len(rewards)), key=lambda i: rewards[i], reverse=True)
    if settings.rule == "top_k":
        return by_reward[: settings.k]
    if settings.rule == "knee":
        knee = knee_point(metric, cost)
        return [knee] + [i for i in by_reward if i != knee]
    return by_reward
