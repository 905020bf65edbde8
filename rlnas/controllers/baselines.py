"""Baseline searchers behind the same propose/observe interface: grid, TPE and
regularized evolution (random search lives in :mod:`rlnas.controllers.base`).

All three honour extra action masks (``reward.mask_infeasible=true``): grid
skips architectures the mask rules out, TPE reports them as failed trials and
asks again, evolution draws its random members under the mask and keeps only
mutations the mask allows.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

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
    A batch is asked before any of it is told, so TPE runs with the constant
    liar (optuna's ``constant_liar``: trials still running count as poor
    results), and a batch holds distinct architectures that were not evaluated
    before: an architecture already known is told its known reward at once (a
    free trial) and TPE is asked again; after ``max_repeats`` such answers in a
    row, a new neighbour of TPE's proposal (one decision changed at a time) is
    enqueued instead, as the RL controllers' novelty fallback does.

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
        self.settings = {"n_startup_trials": int(n_startup_trials), "multivariate": bool(multivariate)}
        self.study = optuna.create_study(direction="maximize", sampler=self._sampler(seed))
        self._pending: dict[Arch, list[Any]] = {}
        #: Latest reward of each architecture observed.
        self.known: dict[Arch, float] = {}

    def _sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, **self.settings)

    #: Trials an action mask may rule out in a row before a masked random sample is enqueued instead.
    max_rejections = 20
    #: Known (or in-batch) architectures TPE may propose in a row before a new neighbour is enqueued instead.
    max_repeats = 1

    def _ask(self) -> tuple[Any, Arch]:
        trial = self.study.ask()
        arch = tuple(int(trial.suggest_categorical(d.name, list(range(d.num_choices)))) for d in self.space.decisions)
        return trial, arch

    def propose(self, n: int) -> list[Arch]:
        import optuna

        archs: list[Arch] = []
        for _ in range(n):
            trial, arch = self._ask()
            rejected = repeats = attempts = 0
            while not self.allowed(arch) or arch in self.known or arch in archs:
                attempts += 1
                if attempts > 10 * (self.max_rejections + self.max_repeats) and self.allowed(arch):
                    break  # every allowed architecture is known (a small space): a repeat, which the loop counts
                if not self.allowed(arch):
                    # Infeasible under the hard limits: a failed trial, which TPE learns to avoid.
                    self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    rejected += 1
                elif arch in self.known:  # known already: told at once, no evaluation spent on it
                    self.study.tell(trial, self.known[arch])
                    repeats += 1
                else:  # drawn twice in this batch: told with the first one's result
                    self._pending[arch].append(trial)
                    repeats += 1
                if rejected > self.max_rejections or repeats > self.max_repeats:
                    # The next ask returns a new allowed architecture: a walk from TPE's own proposal
                    # (as the RL controllers' novelty fallback), so it stays where TPE looks.
                    start = arch if self.allowed(arch) else self.sample_allowed()
                    self.study.enqueue_trial(
                        {d.name: a for d, a in zip(self.space.decisions, self._fresh(archs, start))}
                    )
                    rejected = repeats = 0
                trial, arch = self._ask()
            if arch in self.known and arch not in self._pending:
                self.study.tell(trial, self.known[arch])  # answered at once, as above
            else:
                self._pending.setdefault(arch, []).append(trial)
            archs.append(arch)
        return archs

    def _fresh(self, batch: Sequence[Arch], start: Arch) -> Arch:
        """An allowed architecture neither known nor in ``batch``: ``start`` mutated until new, else a random one."""
        arch = start
        for _ in range(4 * max(len(arch), 1)):
            if arch not in self.known and arch not in batch and self.allowed(arch):
                return arch
            arch = self.mutate(arch)
        return self.sample_allowed()

    def observe(self, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
        for arch, reward in zip(archs, rewards):
            self.known[tuple(arch)] = float(reward)
            trials = self._pending.pop(tuple(arch), None)
            if trials:
                for trial in trials:  # an architecture asked twice in one batch: both trials get its result
                    self.study.tell(trial, float(reward))
            elif trials is None:  # an architecture this controller did not propose: add it as a finished trial
                import optuna

                dists = {
                    d.name: optuna.distributions.CategoricalDistribution(list(range(d.num_choices)))
                    for d in self.space.decisions
                }
                self.study.add_trial(
                    optuna.trial.create_trial(
                        params={d.name: int(a) for d, a in zip(self.space.decisions, arch)},
                        distributions=dists,
                        value=float(reward),
                    )
                )
        return {"trials": float(len(self.study.trials))}

    def best_guess(self, n: int) -> list[Arch]:
        done = [t for t in self.study.trials if t.value is not None]
        done.sort(key=lambda t: t.value, reverse=True)
        best = [tuple(int(t.params[d.name]) for d in self.space.decisions) for t in done[:n]]
        return best + self.propose(n - len(best))

    def state_dict(self) -> dict[str, Any]:
        # The study as plain data (no pickle, so a checkpoint loads with weights_only=True): each
        # trial's state, parameters, value and system attributes (where enqueued parameters live),
        # in order, and the samplers' random states; rebuilt by replaying them into a new study.
        trials = [
            {
                "state": t.state.name,
                "params": dict(t.params),
                "value": t.value,
                "system_attrs": json.dumps(t.system_attrs),
            }
            for t in self.study.get_trials(deepcopy=False)
        ]
        return {
            **super().state_dict(),
            "trials": trials,
            "samplers": self._sampler_states(),
            "settings": self.settings,
            "pending": [(list(a), [_trial_number(t) for t in ts]) for a, ts in self._pending.items()],
            "known": [(list(a), r) for a, r in self.known.items()],
        }

    def _sampler_rngs(self) -> list[Any]:
        """The numpy RandomStates of the TPE sampler and of its random sampler for the startup trials."""
        sampler = self.study.sampler
        return [sampler._rng.rng, sampler._random_sampler._rng.rng]

    def _sampler_states(self) -> list[list[Any]]:
        states = []
        for rng in self._sampler_rngs():
            name, keys, pos, has_gauss, cached = rng.get_state()
            states.append([name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)])
        return states

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import optuna

        super().load_state_dict(state)
        self.settings = {
            "n_startup_trials": int(state["settings"]["n_startup_trials"]),
            "multivariate": bool(state["settings"]["multivariate"]),
        }
        self.study = optuna.create_study(direction="maximize", sampler=self._sampler(0))  # its RNG state follows
        dists = {
            d.name: optuna.distributions.CategoricalDistribution(list(range(d.num_choices)))
            for d in self.space.decisions
        }
        for t in state["trials"]:
            trial_state = optuna.trial.TrialState[t["state"]]
            done = trial_state.is_finished()
            self.study.add_trial(
                optuna.trial.create_trial(
                    state=trial_state,
                    params={k: int(v) for k, v in t["params"].items()},
                    distributions={k: dists[k] for k in t["params"]},
                    value=float(t["value"]) if t["value"] is not None and done else None,
                    system_attrs=json.loads(t["system_attrs"]),
                )
            )
        for rng, (name, keys, pos, has_gauss, cached) in zip(self._sampler_rngs(), state["samplers"]):
            rng.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        # optuna's tell takes a trial number as it takes the trial.
        self._pending = {tuple(a): list(numbers) for a, numbers in state["pending"]}
        self.known = {tuple(a): float(r) for a, r in state.get("known", [])}


def _trial_number(trial: Any) -> int:
    return trial if isinstance(trial, int) else int(trial.number)


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
        for arch, reward in zip(archs, rewards):
            arch = tuple(int(a) for a in arch)
            self.waiting.discard(arch)
            if np.isfinite(reward):
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
