"""Baseline searchers behind the same propose/observe interface: grid, regularized evolution and
local search (random search lives in :mod:`rlnas.controllers.base`, TPE in :mod:`rlnas.controllers.tpe`).

All honour extra action masks (``reward.mask_infeasible=true``): grid skips
architectures the mask rules out, evolution draws its random members under the
mask and keeps only mutations the mask allows, local search walks only to
allowed neighbours.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlnas.controllers.base import Controller, check_observation
from rlnas.spaces.base import Arch, SearchSpace


class GridController(Controller):
    """Enumerates the space in lexicographic order (for small spaces), wrapping around.

    Args:
        space: The search space.
        seed: Unused (the order is fixed); kept for a uniform signature.
    """

    learns = False

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.position = 0

    def arch_at(self, index: int) -> Arch:
        """The ``index``-th architecture in lexicographic order (last decision fastest)."""
        index %= self.space.size
        digits = []
        for n in reversed(self.space.num_choices.tolist()):
            index, digit = divmod(index, n)
            digits.append(digit)
        return tuple(reversed(digits))

    def propose(self, n: int) -> list[Arch]:
        archs: list[Arch] = []
        skipped = 0
        while len(archs) < n:
            arch = self.arch_at(self.position)
            self.position += 1
            if self.allowed(arch):
                archs.append(arch)
                skipped = 0
            else:
                skipped += 1
                if skipped > self.space.size:  # pragma: no cover - a feasibility mask always allows one
                    raise RuntimeError("the action mask allows no architecture of the space")
        return archs

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.position = state["position"]


class EvolutionController(Controller):
    """Regularized (aging) evolution, Real et al., 2019, Alg. 1.

    Until the population is full, proposals are random. Then each proposal
    samples ``sample_size`` members, takes the one with the highest reward and
    mutates one random decision to a different choice; observed children join
    the population and the oldest member leaves. The paper's large runs used
    P = 100, S = 25; the defaults suit budgets of hundreds of evaluations.

    Args:
        space: The search space.
        seed: Seed of sampling and mutation.
        population_size: ``P``.
        sample_size: Tournament size ``S`` (<= P).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, population_size: int = 20, sample_size: int = 5) -> None:
        super().__init__(space, seed)
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                f"controller.sample_size={sample_size} must be in 1..controller.population_size={population_size}"
            )
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.population: deque[tuple[Arch, float]] = deque()
        self.history_best: tuple[Arch, float] | None = None

    def propose(self, n: int) -> list[Arch]:
        archs = []
        for _ in range(n):
            if len(self.population) < self.population_size:
                archs.append(self.sample_allowed())
                continue
            picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
            parent = max((self.population[int(i)] for i in picks), key=lambda m: m[1])[0]
            archs.append(self.mutate(parent))
        return archs

    def observe(self, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
        archs = check_observation(self.space, archs, rewards)
        for arch, reward in zip(archs, rewards):
            self.population.append((tuple(arch), float(reward)))
            if len(self.population) > self.population_size:
                self.population.popleft()  # aging: the oldest dies, not the worst
            if self.history_best is None or reward > self.history_best[1]:
                self.history_best = (tuple(arch), float(reward))
        return {"population_mean": float(np.mean([r for _, r in self.population]))}

    def best_guess(self, n: int) -> list[Arch]:
        ranked = sorted(self.population, key=lambda m: m[1], reverse=True)
        best = ([self.history_best[0]] if self.history_best else []) + [a for a, _ in ranked]
        best = list(dict.fromkeys(best))[:n]
        return best + self.propose(n - len(best))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": list(self.population), "history_best": self.history_best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = deque((tuple(a), r) for a, r in state["population"])
        self.history_best = state["history_best"]


class LocalSearchController(Controller):
    """Local search with restarts (White, Nolen & Savani, UAI 2021, Alg. 1).

    From the best of ``num_init`` random architectures, every neighbour of the
    current architecture (one decision changed, in random order) is evaluated;
    when the whole neighbourhood is in, the search moves to its best member if
    that beats the current one, and otherwise restarts from a random
    architecture not visited yet (a local optimum is reached). Neighbours
    already evaluated are not proposed again; they are known. White et al.
    found this simple method state of the art on NAS-Bench-201 and other
    tabular benchmarks.

    The controller proposes batches of ``n``: when the open neighbourhood has
    fewer members left than asked for, the batch is filled with random
    architectures (they are evaluated, and a later restart begins from the
    best of them not yet a centre).

    Args:
        space: The search space.
        seed: Seed of the random starts and the neighbour order.
        num_init: Random architectures evaluated before the first centre is chosen
            (NASLib's local search: 10).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, num_init: int = 10) -> None:
        if int(num_init) < 1:
            raise ValueError(f"controller.num_init={num_init} must be >= 1")
        super().__init__(space, seed)
        self.num_init = int(num_init)
        #: Latest reward of every architecture observed.
        self.known: dict[Arch, float] = {}
        self.centres: set[Arch] = set()
        self.centre: Arch | None = None
        #: Neighbours of the centre not proposed yet, and those proposed but not observed.
        self.queue: list[Arch] = []
        self.waiting: set[Arch] = set()
        self.neighbourhood: list[Arch] = []
        #: Random fill-ins not yet used as a centre: candidates for the next restart.
        self.spares: set[Arch] = set()

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every allowed architecture one decision away from ``arch``, in random order."""
        out = []
        for t, n in enumerate(self.space.num_choices.tolist()):
            for c in range(int(n)):
                if c != arch[t]:
                    child = (*arch[:t], c, *arch[t + 1 :])
                    if self.space.masks[t][c] and self.allowed(child):
                        out.append(child)
        order = self.rng.permutation(len(out))
        return [out[int(i)] for i in order]

    def _random_new(self, taken: Sequence[Arch]) -> Arch:
        arch = self.sample_allowed()
        for _ in range(4 * max(len(arch), 1)):
            if arch not in self.known and arch not in taken and arch not in self.waiting:
                break
            arch = self.mutate(arch)
        return arch

    def _move_to(self, centre: Arch) -> None:
        self.centre = centre
        self.centres.add(centre)
        self.spares.discard(centre)
        self.neighbourhood = self.neighbours(centre)
        # A restart's centre is evaluated too (first), so a neighbour must beat a known value to be moved to.
        self.queue = [a for a in [centre, *self.neighbourhood] if a not in self.known]

    def propose(self, n: int) -> list[Arch]:
        archs: list[Arch] = []
        while len(archs) < n:
            if self.queue:
                arch = self.queue.pop(0)
                if arch in self.known or arch in archs:
                    continue
                self.waiting.add(arch)
                archs.append(arch)
                continue
            arch = self._random_new(archs)  # before the first centre, or while a neighbourhood is out
            if self.centre is not None:
                self.spares.add(arch)
            self.waiting.add(arch)
            archs.append(arch)
        return archs

    def observe(self, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
        archs = check_observation(self.space, archs, rewards)  # tuples of ints, finite rewards
        for arch, reward in zip(archs, rewards):
            self.waiting.discard(arch)
            self.known[arch] = float(reward)
        if self.centre is None:
            if len(self.known) >= self.num_init:
                self._move_to(max(self.known, key=self.known.__getitem__))
        elif not self.queue and not any(a in self.waiting for a in [self.centre, *self.neighbourhood]):
            # The whole neighbourhood is in: move to its best, or restart at a local optimum.
            scored = [a for a in self.neighbourhood if a in self.known]
            best = max(scored, key=self.known.__getitem__, default=None)
            if best is not None and self.known[best] > self.known.get(self.centre, -math.inf):
                self._move_to(best)
            else:
                spares = [a for a in self.spares if a in self.known and a not in self.centres]
                self._move_to(max(spares, key=self.known.__getitem__) if spares else self._random_new([]))
        return {
            "centres": float(len(self.centres)),
            "centre_reward": self.known.get(self.centre, math.nan) if self.centre is not None else math.nan,
        }

    def best_guess(self, n: int) -> list[Arch]:
        ranked = sorted(self.known, key=self.known.__getitem__, reverse=True)[:n]
        return ranked + [self.sample_allowed() for _ in range(n - len(ranked))]

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "known": [(list(a), r) for a, r in self.known.items()],
            "centres": [list(a) for a in self.centres],
            "centre": list(self.centre) if self.centre else None,
            "queue": [list(a) for a in self.queue],
            "waiting": [list(a) for a in self.waiting],
            "neighbourhood": [list(a) for a in self.neighbourhood],
            "spares": [list(a) for a in self.spares],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.known = {tuple(a): float(r) for a, r in state["known"]}
        self.centres = {tuple(a) for a in state["centres"]}
        self.centre = tuple(state["centre"]) if state["centre"] is not None else None
        self.queue = [tuple(a) for a in state["queue"]]
        self.waiting = {tuple(a) for a in state["waiting"]}
        self.neighbourhood = [tuple(a) for a in state["neighbourhood"]]
        self.spares = {tuple(a) for a in state["spares"]}
