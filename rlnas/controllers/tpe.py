"""Bayesian optimisation with optuna's TPE behind the propose/observe interface.

Infeasible architectures under an extra action mask are reported to TPE as
failed trials, and it is asked again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rlnas.controllers.base import Controller, check_observation
from rlnas.spaces.base import Arch, SearchSpace
from rlnas.utils import legacy_rng_state, legacy_rng_tuple


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
            exhausted = len(self.known.keys() | set(archs)) >= self.space.size  # neither changes while asking
            while not self.allowed(arch) or arch in self.known or arch in archs:
                attempts += 1
                if (exhausted or attempts > 10 * (self.max_rejections + self.max_repeats)) and self.allowed(arch):
                    # Every (allowed) architecture is known, in a small space: a repeat, which the loop counts.
                    # Asking on would add a told trial per ask, and TPE's asks slow down with its trials.
                    break
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
        archs = check_observation(self.space, archs, rewards)
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
            "samplers": [legacy_rng_state(rng.get_state()) for rng in self._sampler_rngs()],
            "settings": self.settings,
            "pending": [(list(a), [_trial_number(t) for t in ts]) for a, ts in self._pending.items()],
            "known": [(list(a), r) for a, r in self.known.items()],
        }

    def _sampler_rngs(self) -> list[Any]:
        """The numpy RandomStates of the TPE sampler and of its random sampler for the startup trials."""
        sampler = self.study.sampler
        return [sampler._rng.rng, sampler._random_sampler._rng.rng]

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
        for rng, saved in zip(self._sampler_rngs(), state["samplers"]):
            rng.set_state(legacy_rng_tuple(saved))
        # optuna's tell takes a trial number as it takes the trial.
        self._pending = {tuple(a): list(numbers) for a, numbers in state["pending"]}
        self.known = {tuple(a): float(r) for a, r in state.get("known", [])}


def _trial_number(trial: Any) -> int:
    return trial if isinstance(trial, int) else int(trial.number)
