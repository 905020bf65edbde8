"""Search against an evaluator that answers at once (a tabular benchmark or a toy).

No supernet: the controller proposes ``archs_per_step`` architectures, the
evaluator scores them, the controller learns, until ``evaluations``
*distinct* architectures have been evaluated.

One accounting for every controller: the budget counts distinct
architectures, since that is what a search pays for (one training each). An
architecture proposed again is answered from the run's cache: the controller
observes its reward, but the repeat costs nothing and counts nothing. On a
noisy table (several reward columns, one training seed each) a controller may
re-query on purpose (``benchmark.requery=true``): a repeat then draws a new
seed and counts, since it buys information. The pick is the architecture with
the best mean reward over its evaluations (the best reward seen when each is
evaluated once).
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rlnas.benchmarks.parts import benchmark_parts
from rlnas.controllers.base import Controller
from rlnas.evaluators.base import Evaluation, Evaluator
from rlnas.rewards.base import Reward, reward_number
from rlnas.spaces.base import Arch, SearchSpace
from rlnas.utils import atomic_file, set_threads

log = logging.getLogger("rlnas")


@dataclass
class BudgetResult:
    """The outcome of a budgeted search.

    Attributes:
        rewards: The reward of each counted evaluation, in order.
        best_so_far: The pick's (mean) reward after each counted evaluation.
        picks: The pick after each counted evaluation.
        proposals: Architectures the controller proposed, repeats included.
        distinct: Distinct architectures evaluated.
    """

    best_arch: Arch
    best_reward: float
    best_evaluation: Evaluation
    rewards: list[float]
    best_so_far: list[float]
    seconds: float
    controller_stats: list[dict[str, float]] = field(default_factory=list)
    picks: list[Arch] = field(default_factory=list)
    proposals: int = 0
    distinct: int = 0


class BudgetSearch:
    """Propose, evaluate, observe until the evaluation budget is spent.

    Args:
        space: The search space.
        evaluator: Scores architectures (no weights are trained).
        controller: Proposes architectures and learns from rewards.
        reward: Turns evaluations into rewards.
        evaluations: Evaluations in all: distinct architectures, and with
            ``requery`` on a noisy table also repeats.
        archs_per_step: Architectures per proposal (and controller update).
        run_dir: Where outputs go (``None``: nothing is written).
        progress: Show a progress bar (``None``: only on a terminal).
        tensorboard: Log scalars to ``run_dir/tensorboard``.
        requery: On a noisy evaluator, a repeat is evaluated again (and counts).
        max_stall: Proposals in a row that bring nothing new before the search
            stops early (a controller that only repeats itself, or a space
            smaller than the budget); default ``20 * archs_per_step``.
    """

    def __init__(
        self,
        space: SearchSpace,
        evaluator: Evaluator,
        controller: Controller,
        reward: Reward,
        evaluations: int = 300,
        archs_per_step: int = 10,
        run_dir: str | Path | None = None,
        progress: bool | None = False,
        tensorboard: bool = True,
        requery: bool = False,
        max_stall: int | None = None,
    ) -> None:
        if int(evaluations) < 1:
            raise ValueError(f"benchmark.evaluations must be >= 1, got {evaluations}")
        if int(archs_per_step) < 1:
            raise ValueError(f"benchmark.archs_per_step must be >= 1, got {archs_per_step}")
        self.space, self.evaluator, self.controller, self.reward = space, evaluator, controller, reward
        self.evaluations, self.archs_per_step = int(evaluations), int(archs_per_step)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress
        self.tensorboard = tensorboard and self.run_dir is not None
        self.requery = bool(requery) and bool(getattr(evaluator, "noisy", False))
        self.max_stall = int(max_stall) if max_stall is not None else 20 * self.archs_per_step
        self.history: list[dict[str, Any]] = []
        #: Every evaluation of each architecture: (evaluation, reward) pairs.
        self.seen: dict[Arch, list[tuple[Evaluation, float]]] = {}
        #: Proposals a sparse table lacks (``benchmark.missing=skip``): never evaluated, never counted.
        self.absent: set[Arch] = set()

    def _to_evaluate(self, archs: list[Arch]) -> list[int]:
        """Indices of the new architectures in ``archs`` (with requery, repeats too); the rest come from the cache."""
        todo: list[int] = []
        fresh: set[Arch] = set()
        for i, arch in enumerate(archs):
            if arch in self.absent:
                continue
            if self.requery or (arch not in self.seen and arch not in fresh):
                todo.append(i)
                fresh.add(arch)
        return todo

    def _checked_pick(self, pick: Arch | None) -> Arch:
        """The pick, once the search has one (refusing a search that evaluated nothing)."""
        if self.absent:
            log.info("%d distinct proposals were absent from the table (benchmark.missing=skip)", len(self.absent))
        if pick is None:
            if self.absent:
                raise ValueError(
                    f"the table holds none of the {len(self.absent)} architectures "
                    f"{type(self.controller).__name__} proposed; check benchmark.key_template against its keys"
                )
            raise RuntimeError(f"{type(self.controller).__name__} proposed no architecture")
        return pick

    def _evaluate(self, archs: list[Arch], todo: list[int]) -> tuple[list[int], list[Evaluation]]:
        """The evaluations of ``archs[i]`` for ``i`` in ``todo``, less (and remembering) those the table lacks."""
        if not todo:
            return [], []
        if not getattr(self.evaluator, "skip_missing", False):
            return todo, self.evaluator.evaluate_batch([archs[i] for i in todo])
        from rlnas.benchmarks.tabular import AbsentRecord

        kept, evaluations = [], []
        for i in todo:
            try:
                evaluations.append(self.evaluator.evaluate(archs[i]))
            except AbsentRecord:
                self.absent.add(archs[i])
                continue
            kept.append(i)
        return kept, evaluations

    def _score(self, arch: Arch) -> float:
        return float(np.mean([r for _, r in self.seen[arch]]))

    def run(self) -> BudgetResult:
        from tqdm.auto import tqdm

        from rlnas.utils import timing

        start = time.perf_counter()
        writer = None
        if self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        rewards: list[float] = []
        best_so_far: list[float] = []
        picks: list[Arch] = []
        pick: Arch | None = None
        stats_log: list[dict[str, float]] = []
        bar = tqdm(
            total=self.evaluations,
            desc="search",
            unit="arch",
            disable=None if self.progress is None else not self.progress,
            dynamic_ncols=True,
        )
        # Where stderr is no terminal (nohup, CI, a cluster job) the bar is off: a line through logging now and
        # then instead, so a long table search is not silent; a search of seconds prints none.
        lines = timing.ProgressLines(on=self.progress is None and bar.disable)
        step = proposals = stall = 0
        while len(rewards) < self.evaluations:
            n = min(self.archs_per_step, self.evaluations - len(rewards))
            archs = self.controller.propose(n)  # tuples of ints of the space (Controller checks its answer)
            proposals += len(archs)
            todo, evaluations = self._evaluate(archs, self._to_evaluate(archs)[: self.evaluations - len(rewards)])
            for i, ev in zip(todo, evaluations):
                r = reward_number(self.reward(ev), self.reward)
                if not math.isfinite(r):
                    raise FloatingPointError(f"reward of {self.space.describe(archs[i])} is {r}")
                self.seen.setdefault(archs[i], []).append((ev, r))
                if pick is None or archs[i] == pick or self._score(archs[i]) > self._score(pick):
                    # A repeat of the pick can lower its mean: then the best mean is looked up again.
                    pick = max(self.seen, key=self._score) if archs[i] == pick else archs[i]
                rewards.append(r)
                best_so_far.append(self._score(pick))
                picks.append(pick)
                self.history.append({"step": step, "arch": archs[i], "reward": r, **ev.metrics, **ev.costs})
            # The controller learns from every proposal: a repeat brings its (latest) cached reward,
            # one the table lacks the reward that teaches it to avoid such proposals.
            archs = [a for a in archs if a in self.seen or a in self.absent]
            batch = [self.seen[a][-1][1] if a in self.seen else self.evaluator.missing_reward for a in archs]
            stats = self.controller.observe(archs, batch)
            stats_log.append(stats)
            stall = 0 if todo else stall + max(len(archs), 1)
            if writer is not None and todo:
                writer.add_scalar("reward/mean", float(np.mean(batch)), len(rewards))
                writer.add_scalar("reward/max", float(np.max(batch)), len(rewards))
                writer.add_scalar("reward/best_so_far", best_so_far[-1], len(rewards))
                for key, value in stats.items():
                    writer.add_scalar(f"controller/{key}", value, len(rewards))
            bar.update(len(todo))
            if pick is not None:
                bar.set_postfix(best=f"{best_so_far[-1]:.4f}")
            if rewards and lines.due():
                log.info(
                    "%d/%d evaluated, best so far %.4f, %s elapsed, ETA %s",
                    len(rewards),
                    self.evaluations,
                    best_so_far[-1],
                    *lines.elapsed_and_eta(len(rewards), self.evaluations - len(rewards)),
                )
            step += 1
            if stall >= self.max_stall:
                log.warning(
                    "%s proposed %d architectures in a row that were all evaluated before or absent from the "
                    "table; stopping at %d of %d evaluations",
                    type(self.controller).__name__,
                    stall,
                    len(rewards),
                    self.evaluations,
                )
                break
        bar.close()
        pick = self._checked_pick(pick)
        ev = max(self.seen[pick], key=lambda e: e[1])[0]
        result = BudgetResult(
            pick,
            self._score(pick),
            ev,
            rewards,
            best_so_far,
            time.perf_counter() - start,
            stats_log,
            picks,
            proposals,
            len(self.seen),
        )
        if writer is not None:
            writer.add_text("best_arch", self.space.describe(result.best_arch), len(rewards))
            writer.close()
        if self.run_dir is not None:
            self.write_outputs(result)
        return result

    def write_outputs(self, result: BudgetResult) -> None:
        """``history.csv``, ``best_arch.json``, ``summary.json`` and the controller state."""
        from rlnas.search.callbacks import arch_to_str
        from rlnas.utils import write_json_atomic

        assert self.run_dir is not None
        names = list(dict.fromkeys(k for row in self.history for k in row if k not in ("step", "arch", "reward")))
        with atomic_file(self.run_dir / "history.csv") as f:
            out = csv.writer(f)
            out.writerow(["evaluation", "step", "arch", "reward", "best_so_far", *names])
            for i, (row, best) in enumerate(zip(self.history, result.best_so_far), start=1):
                out.writerow(
                    [
                        i,
                        row["step"],
                        arch_to_str(row["arch"]),
                        f"{row['reward']:.6g}",
                        f"{best:.6g}",
                        *(f"{row.get(n, float('nan')):.6g}" for n in names),
                    ]
                )
        ev = result.best_evaluation
        write_json_atomic(
            self.run_dir / "best_arch.json",
            {
                "arch": list(result.best_arch),
                "decoded": self.space.decode(result.best_arch),
                "description": self.space.describe(result.best_arch),
                "metrics": dict(ev.metrics),
                "costs": dict(ev.costs),
                "reward": result.best_reward,
                "benchmark": getattr(self.evaluator, "name", type(self.evaluator).__name__),
            },
        )
        first_best = next(i for i, b in enumerate(result.best_so_far, start=1) if b == result.best_reward)
        write_json_atomic(
            self.run_dir / "summary.json",
            {
                "best_reward": result.best_reward,
                "evaluations": len(result.rewards),
                "distinct_evaluations": result.distinct,
                "proposals": result.proposals,
                "absent_from_table": len(self.absent),
                "evaluations_to_best": first_best,
                "mean_reward": float(np.mean(result.rewards)),
                "seconds": round(result.seconds, 3),
            },
        )
        self.controller.save(self.run_dir)


def _costs(evaluator: Evaluator, targets: dict[str, Any], arch: Arch) -> dict[str, float]:
    """An architecture's costs; one a sparse table lacks is infeasible under every limit."""
    from rlnas.benchmarks.tabular import AbsentRecord

    try:
        return evaluator.evaluate(arch).costs
    except AbsentRecord:
        return {name: math.inf for name in targets}


def _check_reward_fits_the_table(reward: Reward, evaluator: Evaluator) -> None:
    """Refuses a reward that would prefer worse architectures: a hard limit's penalty above the table's rewards,
    and on a lower-is-better column (negative metric_scale) a penalty above its lowest, or ``reward=mnas``.

    Raises:
        ValueError: For ``reward=mnas`` (it multiplies the metric, so a penalty would raise a
            negated error) and for ``reward=hard`` whose ``penalty`` is above some feasible reward.
    """
    from rlnas.rewards import HardReward, MnasReward
    from rlnas.search.builder import check_penalty_below

    lowest = getattr(evaluator, "lowest_reward", None)
    if getattr(evaluator, "metric_scale", 1.0) < 0 and lowest is not None:
        if isinstance(reward, MnasReward):
            raise ValueError(
                "reward=mnas multiplies the metric by cost ratios; with a negative benchmark.metric_scale "
                "(a lower-is-better column) that rewards breaking the targets: use reward=weighted, tunas_abs or hard"
            )
        if isinstance(reward, HardReward) and reward.penalty >= lowest:
            raise ValueError(
                f"reward.penalty={reward.penalty:g} is not below the table's lowest reward ({lowest:g}, the negated "
                f"column); an architecture over a limit would beat feasible ones: set reward.penalty below {lowest:g}"
            )
    check_penalty_below(reward, getattr(evaluator, "highest_reward", None), "the table's highest reward")


def build_budget_search(cfg: Any, run_dir: str | Path | None, progress: bool | None = None) -> BudgetSearch:
    """A :class:`BudgetSearch` from a config with a ``benchmark:`` node (see ``conf/benchmark/``)."""
    from omegaconf import OmegaConf

    from rlnas.search.builder import build_controller, build_reward, claim_run_dir, warn_random_start
    from rlnas.utils import seed_everything

    if run_dir is not None:
        run_dir = Path(run_dir)
        claim_run_dir(run_dir, resume=False, can_resume=False)  # a tabular run takes seconds: started again
    bench = OmegaConf.to_container(cfg.benchmark, resolve=True)
    assert isinstance(bench, dict)
    # The controllers' networks are tiny: one thread is fastest, and torch's default (every
    # core) is several times slower on a busy machine. threads= still decides when given.
    set_threads(int(cfg.threads) if cfg.get("threads") else 1)
    seed = int(cfg.seed)
    seed_everything(seed)
    space, evaluator = benchmark_parts(bench, seed)
    reward, mask_infeasible = build_reward(cfg.reward, evaluator.reward_metric)
    controller = build_controller(cfg.controller, space, seed)
    evaluations = int(bench.get("evaluations", 300))
    warn_random_start(cfg.controller, evaluations, f"benchmark.evaluations={evaluations}")
    if controller.differentiable:
        raise ValueError(
            f"{type(controller).__name__} learns by gradient through a supernet; a +benchmark run has none "
            "(use enas, the PPO family or a baseline there)"
        )
    _check_reward_fits_the_table(reward, evaluator)
    targets = dict(getattr(reward, "targets", {}))
    if mask_infeasible:
        if not targets:
            raise ValueError("reward.mask_infeasible=true needs reward.targets (the hard limits)")
        from rlnas.rewards import FeasibilityMask

        columns = getattr(evaluator, "cost_fields", None)
        if columns is None:
            columns = evaluator.evaluate(space.sample(np.random.default_rng(0))).costs
        missing = sorted(set(targets) - set(columns))
        if missing:
            raise ValueError(
                f"reward.targets.{missing[0]}: benchmark {bench.get('name')} has no such cost column (benchmark.costs)"
            )
        controller.action_mask = FeasibilityMask(space, partial(_costs, evaluator, targets), targets).mask
    if run_dir is not None:
        with atomic_file(run_dir / "config.yaml") as f:
            f.write(OmegaConf.to_yaml(cfg))
    return BudgetSearch(
        space,
        evaluator,
        controller,
        reward,
        evaluations,
        int(bench.get("archs_per_step", 10)),
        run_dir,
        progress,
        requery=bool(bench.get("requery", False)),
    )
