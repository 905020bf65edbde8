"""Baseline searchers behind the same propose/observe interface: grid, TPE and
regularized evolution (random search lives in :mod:`rlnas.controllers.base`).

All three honour extra action masks (``reward.mask_infeasible=true``): grid
skips architectures the mask rules out, TPE reports them as failed trials and
asks again, evolution draws its random members under the mask and keeps only
mutations the mask allows.
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
        if int(n_startup_trials) < 0:
            raise ValueError(f"controller.n_startup_trials={n_startup_trials} must be >= 0")
        super().__init__(space, seed)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=multivariate)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._pending: dict[Arch, list[Any]] = {}

    #: Trials an action mask may rule out in a row before a masked random sample is enqueued instead.
    max_rejections = 20

    def _ask(self) -> tuple[Any, Arch]:
        trial = self.study.ask()
        arch = tuple(int(trial.suggest_categorical(d.name, list(range(d.num_choices)))) for d in self.space.decisions)
        return trial, arch

    def propose(self, n: int) -> list[Arch]:
        import optuna

        archs = []
        for _ in range(n):
            trial, arch = self._ask()
            rejected = 0
            while not self.allowed(arch):
                # Infeasible under the hard limits: a failed trial, which TPE learns to avoid.
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                rejected += 1
                if rejected > self.max_rejections:  # the next ask returns this allowed sample
                    self.study.enqueue_trial({d.name: a for d, a in zip(self.space.decisions, self.sample_allowed())})
                trial, arch = self._ask()
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
