"""Action masks that keep every sampled architecture within hard limits."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from rlnas.spaces.base import Arch, SearchSpace


class InfeasibleConstraintError(ValueError):
    """No architecture of the space meets the limits."""


class FeasibilityMask:
    """Masks every action after which no completion can meet the limits.

    For each decision the *cheapest choice* is the one with the lowest summed
    ``cost / limit`` when only that decision changes; the cheapest completion
    of a prefix takes the cheapest choice for every open decision. An action is
    allowed when the cheapest completion after it meets every limit, so some
    feasible completion always exists and every finished architecture is
    feasible (exact for costs that add up over decisions, conservative
    otherwise).

    Args:
        space: The search space.
        costs: arch -> cost dict (cached by the caller).
        limits: Cost name -> upper limit.

    Raises:
        InfeasibleConstraintError: When even the cheapest architecture breaks a limit.
    """

    def __init__(self, space: SearchSpace, costs: Callable[[Arch], Mapping[str, float]], limits: Mapping[str, float]):
        self.space = space
        self.costs = costs
        self.limits = dict(limits)
        base = [0] * len(space)

        def score(arch: Sequence[int]) -> float:
            c = costs(tuple(arch))
            return sum(c[n] / v for n, v in self.limits.items())

        self.cheapest: list[int] = []
        for t, d in enumerate(space.decisions):
            scores = [score(base[:t] + [a] + base[t + 1 :]) for a in range(d.num_choices)]
            self.cheapest.append(int(np.argmin(scores)))
        cheapest_arch = tuple(self.cheapest)
        over = {n: costs(cheapest_arch)[n] for n, v in self.limits.items() if costs(cheapest_arch)[n] > v}
        if over:
            name, value = next(iter(over.items()))
            raise InfeasibleConstraintError(
                f"reward.targets.{name}={self.limits[name]:g} cannot be met: the cheapest architecture of the "
                f"space has {name}={value:g}"
            )

    def feasible(self, arch: Sequence[int]) -> bool:
        c = self.costs(tuple(arch))
        return all(c[n] <= v for n, v in self.limits.items())

    def mask(self, prefix: Sequence[int]) -> np.ndarray:
        """Allowed actions (``max_choices`` booleans) for the decision after ``prefix``."""
        t = len(prefix)
        out = np.zeros(self.space.max_choices, dtype=bool)
        tail = self.cheapest[t + 1 :]
        for a in range(self.space.decisions[t].num_choices):
            out[a] = self.feasible([*prefix, a, *tail])
        return out
