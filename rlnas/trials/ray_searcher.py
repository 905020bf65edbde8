"""A controller as a Ray Tune searcher (imported only when Ray is installed)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.search import Searcher

from rlnas.spaces.base import Arch
from rlnas.trials.planner import Outcome, TrialPlanner


class ControllerSearcher(Searcher):
    """Ray Tune's ask/tell around a :class:`TrialPlanner`.

    ``suggest`` answers ``None`` ("ask again later") while the planner waits
    for an open batch's stragglers, and ``FINISHED`` once the budget is spent.
    A failed trial is settled by :class:`FailureReader` (Tune calls it right
    after the searcher), which knows where the trial's traceback was written.

    Args:
        planner: Proposes architectures and feeds results back to the controller.
        epochs: The top fidelity: a trial that reported fewer epochs was stopped early.
        on_outcome: Called with each finished trial, before the controller hears of it.
    """

    def __init__(self, planner: TrialPlanner, epochs: int, on_outcome: Callable[[Outcome], None]) -> None:
        super().__init__(metric="reward", mode="max")
        self.planner = planner
        self.epochs = int(epochs)
        self.on_outcome = on_outcome
        #: Failed trials waiting for their error message (trial id -> outcome).
        self.failed: dict[str, Outcome] = {}
        self.trials: dict[str, tuple[int, Arch, float]] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        self.settle_failures()
        nxt = self.planner.next_arch()
        if nxt is None:
            return Searcher.FINISHED if self.planner.exhausted else None
        index, arch = nxt
        self.trials[trial_id] = (index, arch, time.perf_counter())
        return {"arch": list(arch), "index": index}

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self.trials:  # not one of this searcher's (a restored experiment's)
            return
        index, arch, started = self.trials.pop(trial_id)
        result = result or {}
        epochs = int(result.get("epoch", 0) or 0)
        reward = float(result.get("reward", math.nan)) if not error else math.nan
        if error or not math.isfinite(reward):
            status = "failed"
        else:
            status = "completed" if epochs >= self.epochs else "stopped"
        outcome = Outcome(
            index,
            arch,
            status,
            reward,
            epochs,
            {k[4:]: float(v) for k, v in result.items() if k.startswith("val_")},
            {k[5:]: float(v) for k, v in result.items() if k.startswith("cost_")},
            float(result.get("seconds", time.perf_counter() - started)),
        )
        if status == "failed":
            self.failed[trial_id] = outcome
            return
        self.on_outcome(outcome)
        self.planner.tell(outcome)

    def settle(self, trial_id: str, error: str) -> None:
        """Records a failed trial with why it failed."""
        outcome = self.failed.pop(trial_id, None)
        if outcome is not None:
            outcome.error = error
            self.on_outcome(outcome)
            self.planner.tell(outcome)

    def settle_failures(self) -> None:
        """Failed trials whose message never came (a lost worker) are recorded without one."""
        for trial_id in list(self.failed):
            self.settle(trial_id, "no result: its worker was lost")

    # The run keeps its own state (trials.jsonl, trials_state.pt: data, no pickle); what Ray would
    # pickle for Tuner.restore (a controller, open files) stays out of Ray's experiment folder.
    def __getstate__(self) -> dict[str, Any]:
        return {"epochs": self.epochs}

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        pass

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        pass


class FailureReader(Callback):
    """Hands :class:`ControllerSearcher` the exception line of each failed trial's traceback."""

    def __init__(self, searcher: ControllerSearcher) -> None:
        self.searcher = searcher

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        path = Path(trial.error_file) if trial.error_file else None
        text = path.read_text(errors="replace") if path is not None and path.is_file() else ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        self.searcher.settle(trial.trial_id, lines[-1] if lines else "the trial failed without a traceback")
