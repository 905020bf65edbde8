"""Baseline searchers behind the same propose/observe interface: grid, TPE and
regularized evolution (random search lives in :mod:`rlnas.controllers.base`).

These three ignore extra action masks (hard-limit masks): use the ENAS or
random controller with ``reward.mask_infeasible=true``, or a ``hard`` reward.
"""

from __future__ import annotations

import pickle
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlnas.controllers.base import Controller
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
        archs = [self.arch_at(self.position + i) for i in range(n)]
        self.position += n
        return archs

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.position = state["position"]


class TPEController(Controller):
    """Bayesian optimisation with optuna's Tree-structured Parzen Estimator (Bergstra et al., 2011).

    One categorical parameter per decision, driven through optuna's ask/tell API.

    Args:
        space: The search space.
        seed: Seed of the sampler.
        n_startup_trials: Random trials before TPE models the rewards (optuna's default: 10).
        multivariate: Model decisions jointly (optuna's multivariate TPE).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, n_startup_trials: int = 10, multivariate: bool = False):
        super().__init__(space, seed)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=multivariate)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._pending: dict[Arch, list[Any]] = {}

    def propose(self, n: int) -> list[Arch]:
        archs = []
        for _ in range(n):
            trial = self.study.ask()
            arch = tuple(
                int(trial.suggest_categorical(d.name, list(range(d.num_choices)))) for d in self.space.decisions
            )
            self._pending.setdefault(arch, []).append(trial)
            archs.append(arch)
        return archs

    def observe(self, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
        for arch, reward in zip(archs, rewards):
            trials = self._pending.get(tuple(arch))
            if trials:
                self.study.tell(trials.pop(0), float(reward))
            else:  # an architecture this controller did not propose: add it as a finished trial
                import optuna

                dists = {d.name: optuna.distributions.CategoricalDistribution(list(range(d.num_choices)))
                         for d in self.space.decisions}
                self.study.add_trial(optuna.trial.create_trial(
                    params={d.name: int(a) for d, a in zip(self.space.decisions, arch)},
                    distributions=dists, value=float(reward)))
        return {"trials": float(len(self.study.trials))}

    def best_guess(self, n: int) -> list[Arch]:
        done = [t for t in self.study.trials if t.value is not None]
        done.sort(key=lambda t: t.value, reverse=True)
        best = [tuple(int(t.params[d.name]) for d in self.space.decisions) for t in done[:n]]
        return best + self.propose(n - len(best))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "study": pickle.dumps(self.study), "pending": pickle.dumps(self._pending)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.study = pickle.loads(state["study"])
        self._pending = pickle.loads(state["pending"])


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

    def mutate(self, arch: Arch) -> Arch:
        mutable = [t for t, n in enumerate(self.space.num_choices) if n > 1]
        t = int(self.rng.choice(mutable))
        choices = [c for c in range(int(self.space.num_choices[t])) if c != arch[t]]
        child = list(arch)
        child[t] = int(self.rng.choice(choices))
        return tuple(child)

    def propose(self, n: int) -> list[Arch]:
        archs = []
        for _ in range(n):
            if len(self.population) < self.population_size:
                archs.append(self.space.sample(self.rng))
                continue
            picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
            parent = max((self.population[int(i)] for i in picks), key=lambda m: m[1])[0]
            archs.append(self.mutate(parent))
        return archs

    def observe(self, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
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
