"""A trial search's outputs: progress, TensorBoard, and the files every search writes.

``trials.csv`` (one row per trial: status, epochs reached, reward, metrics,
costs, seconds), ``history.csv``, ``pareto.csv``/``pareto.png``,
``summary.json``, the controller, and ``best_arch.json`` last (its presence
marks a finished run).
"""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from rlnas.controllers.base import Controller
from rlnas.search.callbacks import OutputWriter, arch_to_str
from rlnas.search.selection import SelectionSettings
from rlnas.spaces.base import SearchSpace
from rlnas.spaces.training import TrainingSpace
from rlnas.trials.planner import Outcome, TrialPlanner, status_counts
from rlnas.trials.records import TABLE_FILE, write_table
from rlnas.utils import atomic_file, write_json_atomic
from rlnas.utils.timing import elapsed_and_eta

log = logging.getLogger("rlnas.trials")

#: Off a terminal, a progress line after every this share of the trials (log files, nohup, CI, cluster jobs).
LINE_EVERY = 0.05


class TrialOutputs:
    """Follows the trials as they finish and writes the run's files at the end.

    Args:
        run_dir: The run dir.
        space: The searched space (training decisions included).
        metric: The task's reward metric.
        cfg: The run's config (``selection.cost`` is the Pareto front's cost axis).
        progress: Show a progress bar (``None``: on a terminal, else a log line after every 5 % of the trials).
        total: Trials in all (the bar's length).
    """

    def __init__(
        self, run_dir: Path, space: SearchSpace, metric: str, cfg: Any, progress: bool | None, total: int
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm

        self.run_dir, self.space, self.metric = run_dir, space, metric
        selection = cfg.get("selection") or {}
        self.selection = SelectionSettings(cost=str(selection.get("cost", "params")))
        self.outcomes: list[Outcome] = []
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        self.bar = tqdm(
            total=total,
            desc="trials",
            unit="trial",
            disable=None if progress is None else not progress,
            dynamic_ncols=True,
        )
        self.total = total
        self.lines = progress is None and self.bar.disable
        self.started = time.perf_counter()
        self.restored = 0

    def restore(self, outcomes: list[Outcome]) -> None:
        """The trials a resumed run had finished, in the order they finished (already in TensorBoard)."""
        self.outcomes = list(outcomes)
        self.restored = len(outcomes)
        self.bar.update(len(outcomes))

    def best_reward(self) -> float:
        finite = [o.reward for o in self.outcomes if o.status != "failed" and math.isfinite(o.reward)]
        return max(finite, default=math.nan)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        step = len(self.outcomes)
        if outcome.status != "failed":
            self.writer.add_scalar("trials/reward", outcome.reward, step)
            self.writer.add_scalar(f"trials/val_{self.metric}", outcome.metrics.get(self.metric, math.nan), step)
        self.writer.add_scalar("trials/best_so_far", self.best_reward(), step)
        self.writer.add_scalar("trials/epochs", outcome.epochs, step)
        self.writer.add_scalar("trials/failed", float(sum(o.status == "failed" for o in self.outcomes)), step)
        self.writer.flush()
        self.bar.update(1)
        self.bar.set_postfix(best=f"{self.best_reward():.4f}", last=outcome.status)
        every = max(1, round(self.total * LINE_EVERY))
        if self.lines and (step % every == 0 or step == self.total):
            log.info(
                "trial %d/%d: best so far %.4f, last %s, %s elapsed, ETA %s",
                step,
                self.total,
                self.best_reward(),
                outcome.status,
                *elapsed_and_eta(self.started, step - self.restored, self.total - step),
            )

    def close_progress(self) -> None:
        self.bar.close()

    def _history(self) -> list[dict[str, Any]]:
        return [
            {"arch": o.arch, "reward": o.reward, **o.metrics, **o.costs}
            for o in self.outcomes
            if o.status != "failed" and math.isfinite(o.reward)
        ]

    def finish(
        self, best: Outcome, outcomes: list[Outcome], controller: Controller, seconds: float, planner: TrialPlanner
    ) -> None:
        """Writes every output file; ``best_arch.json`` last."""
        write_table(self.run_dir / TABLE_FILE, self.space, outcomes)
        self._write_history()
        # The Pareto writer reads what it needs from a search: its history, metric and cost axis.
        OutputWriter(self.run_dir).write_pareto(
            SimpleNamespace(
                history=self._history(),
                evaluator=SimpleNamespace(reward_metric=self.metric),
                selection=self.selection,
            )
        )
        for key, value in ((k, v) for stats in planner.stats[-1:] for k, v in stats.items()):
            self.writer.add_scalar(f"controller/{key}", value, len(outcomes))
        self.writer.add_text("best_arch", self.space.describe(best.arch), len(outcomes))
        self.writer.close()
        counts = status_counts(outcomes)
        write_json_atomic(
            self.run_dir / "summary.json",
            {
                "best_reward": best.reward,
                "trials": len(outcomes),
                **{f"trials_{k}": v for k, v in counts.items()},
                "epochs_trained": int(sum(o.epochs for o in outcomes)),
                "mean_trial_seconds": float(np.mean([o.seconds for o in outcomes])) if outcomes else math.nan,
                "stalled": planner.stalled,
                "seconds": round(seconds, 2),
            },
        )
        controller.save(self.run_dir)
        arch, settings = self.space.split(best.arch) if isinstance(self.space, TrainingSpace) else (best.arch, {})
        base = self.space.base if isinstance(self.space, TrainingSpace) else self.space
        write_json_atomic(
            self.run_dir / "best_arch.json",
            {
                "arch": list(arch),
                "decoded": base.decode(arch),
                "description": self.space.describe(best.arch),
                "metrics": {f"val_{k}": v for k, v in best.metrics.items()},
                "costs": dict(best.costs),
                "reward": best.reward,
                "trial": best.index,
                "epochs": best.epochs,
                **({"train": settings} if settings else {}),
            },
        )

    def _write_history(self) -> None:
        """``history.csv``: the trials in the order they finished, with the best reward so far."""
        names = list(dict.fromkeys(k for o in self.outcomes for k in (*o.metrics, *o.costs)))
        best = -math.inf
        with atomic_file(self.run_dir / "history.csv") as f:
            out = csv.writer(f)
            out.writerow(["evaluation", "trial", "status", "epochs", "arch", "reward", "best_so_far", *names])
            for i, o in enumerate(self.outcomes, start=1):
                if o.status != "failed" and math.isfinite(o.reward):
                    best = max(best, o.reward)
                values = {**o.metrics, **o.costs}
                out.writerow(
                    [
                        i,
                        o.index,
                        o.status,
                        o.epochs,
                        arch_to_str(o.arch),
                        f"{o.reward:.6g}",
                        f"{best:.6g}",
                        *(f"{values.get(n, math.nan):.6g}" for n in names),
                    ]
                )
