"""Ask/tell between a controller and trials that finish in any order.

The controller proposes a batch of ``batch`` architectures; each new one
becomes a trial. Results arrive as the trials finish; once every member of a
batch has its result, the batch goes to :meth:`Controller.observe`, batches in
the order they were proposed. To keep ``n`` trials busy the next batch is
proposed before the previous one is observed, but never more than one ahead
(``max_open`` batches open at once): the policy that proposes is at most one
update behind the results. ENAS's REINFORCE update and the PPO family's
rollouts are therefore computed on the batch as its members finish; a slot that
asks while two batches are open waits for the older one's stragglers.

One accounting as in every search: a proposal already trained (or in
training) starts no trial, it is answered with that trial's result, and the
budget counts trials, i.e. distinct architectures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlnas.controllers.base import Controller
from rlnas.spaces.base import Arch
from rlnas.utils import is_number


@dataclass
class Outcome:
    """What one trial found: its reward at the fidelity it reached, or a failure."""

    index: int
    arch: Arch
    status: str  # completed | stopped | failed
    reward: float
    epochs: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""

    def as_record(self) -> dict[str, Any]:
        """The outcome as plain JSON values (a line of the trial log)."""
        return {
            "index": self.index,
            "arch": list(self.arch),
            "status": self.status,
            "reward": self.reward if math.isfinite(self.reward) else None,
            "epochs": self.epochs,
            "metrics": self.metrics,
            "costs": self.costs,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }

    @classmethod
    def from_record(cls, record: Any) -> Outcome:
        """An outcome from a line of the trial log (:meth:`as_record`).

        Raises:
            ValueError: On a field no trial writes (a tampered or foreign log): a line that is not an object,
                an unknown status, an index, choice or epoch count that is not a whole number, a reward that is
                infinite, not a number, or missing from a trial that did not fail, a metric, cost or time that is
                not a finite number.
        """

        def whole(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 0

        def finite(value: Any) -> bool:
            return is_number(value) and math.isfinite(value)

        if not isinstance(record, dict):
            raise ValueError(f"{type(record).__name__} instead of an object")
        reward, arch, status = record.get("reward"), record["arch"], record["status"]
        if status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {list(STATUSES)}")
        if not whole(record["index"]) or not isinstance(arch, list) or not all(whole(a) for a in arch):
            raise ValueError("index and arch must be whole numbers >= 0")
        if record["index"] > MAX_INDEX:  # from about 2**63 on, every later trial's seed overflows
            raise ValueError(f"trial index {record['index']} is beyond any search's (at most {MAX_INDEX:,})")
        if reward is not None and (isinstance(reward, bool) or not isinstance(reward, (int, float))):
            raise ValueError(f"reward {reward!r} is not a number")
        if reward is not None and not math.isfinite(reward):
            raise ValueError(f"reward {reward!r} is not finite")
        if reward is None and status != "failed":
            raise ValueError(f"a {status} trial without a reward (only a failed trial has none)")
        if not whole(record.get("epochs", 0)):
            raise ValueError(f"epochs {record.get('epochs')!r} is not a whole number >= 0")
        if not (finite(record.get("seconds", 0.0)) and record.get("seconds", 0.0) >= 0):
            raise ValueError(f"seconds {record.get('seconds')!r} is not a time")
        for name in ("metrics", "costs"):
            values = record.get(name) or {}
            if not isinstance(values, dict) or not all(finite(v) for v in values.values()):
                raise ValueError(f"{name} must map names to finite numbers, got {values!r}"[:200])
        return cls(
            int(record["index"]),
            tuple(int(a) for a in arch),
            str(status),
            float(reward) if reward is not None else math.nan,
            int(record.get("epochs", 0)),
            {str(k): float(v) for k, v in dict(record.get("metrics") or {}).items()},
            {str(k): float(v) for k, v in dict(record.get("costs") or {}).items()},
            float(record.get("seconds", 0.0)),
            str(record.get("error", "")),
        )


#: The largest trial index a trial log may hold: far more trials than any search trains.
MAX_INDEX = 2**31 - 1

#: What a trial can end as.
STATUSES = ("completed", "stopped", "failed")


def status_counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """How many trials ended in each of :data:`STATUSES`."""
    return {s: sum(o.status == s for o in outcomes) for s in STATUSES}


class TrialPlanner:
    """Hands out architectures to train and feeds their results back to a controller.

    Args:
        controller: Proposes architectures and learns from their rewards.
        budget: Trials in all (distinct architectures).
        batch: Architectures per proposal and per controller update.
        failed_reward: Reward of a failed trial for the controller (``None``: left out of its batch).
        max_open: Batches proposed but not yet observed, at most.
        max_stall: Proposals in a row that start no trial before the planner gives up (a space
            smaller than the budget, or a controller that only repeats itself).
        on_observe: Called after each controller update with the trial indices observed so far.
    """

    def __init__(
        self,
        controller: Controller,
        budget: int,
        batch: int,
        failed_reward: float | None = None,
        max_open: int = 2,
        max_stall: int | None = None,
        on_observe: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.controller = controller
        self.budget, self.batch = int(budget), int(batch)
        self.failed_reward = failed_reward
        self.max_open = int(max_open)
        self.max_stall = int(max_stall) if max_stall is not None else 20 * self.batch
        self.on_observe = on_observe
        #: Finished trials by architecture, and those still training (architecture -> trial index).
        self.done: dict[Arch, Outcome] = {}
        self.running: dict[Arch, int] = {}
        #: Proposed architectures without a trial yet, and the open batches (oldest first).
        self.queue: list[Arch] = []
        self.open: list[list[Arch]] = []
        self.started = 0
        self.next_index = 0
        #: Trial indices the controller has learnt from.
        self.observed: list[int] = []
        self.stall = 0
        self.stalled = False
        self.stats: list[dict[str, float]] = []

    # -- asking -----------------------------------------------------------------
    @property
    def exhausted(self) -> bool:
        """No trial will be started any more (the budget is spent or the controller stalled)."""
        return self.started >= self.budget or self.stalled

    def next_arch(self) -> tuple[int, Arch] | None:
        """The next trial's index and architecture; ``None``: none now (wait, or see :attr:`exhausted`)."""
        while not self.exhausted:
            if not self.queue:
                if len(self.open) >= self.max_open:
                    return None
                self._propose()
                continue
            arch = self.queue.pop(0)
            if arch in self.done or arch in self.running:
                continue
            index = self.next_index
            self.next_index += 1
            self.started += 1
            self.running[arch] = index
            return index, arch
        return None

    def _propose(self) -> None:
        archs = self.controller.propose(self.batch)  # tuples of ints of the space (Controller checks its answer)
        new = [a for a in dict.fromkeys(archs) if a not in self.done and a not in self.running]
        self.stall = 0 if new else self.stall + len(archs)
        if self.stall >= self.max_stall:
            self.stalled = True
        self.queue.extend(new)
        self.open.append(archs)
        self._observe_ready()

    # -- telling ------------------------------------------------------------------
    def tell(self, outcome: Outcome) -> None:
        """Records a finished trial and updates the controller with every batch now complete."""
        self.running.pop(outcome.arch, None)
        self.done[outcome.arch] = outcome
        self._observe_ready()

    def restore(self, outcomes: Sequence[Outcome], observed: Sequence[int]) -> None:
        """Puts back the finished trials of a run; those not yet learnt from are observed now, as one batch."""
        for outcome in outcomes:
            self.done[outcome.arch] = outcome
        self.started = len(outcomes)
        self.next_index = max((o.index for o in outcomes), default=-1) + 1
        self.observed = [int(i) for i in observed]
        seen = set(self.observed)
        late = [o.arch for o in sorted(outcomes, key=lambda o: o.index) if o.index not in seen]
        if late:
            self.open.append(late)
            self._observe_ready()

    def _reward(self, arch: Arch) -> float | None:
        outcome = self.done[arch]
        if outcome.status == "failed" or not math.isfinite(outcome.reward):
            return self.failed_reward
        return outcome.reward

    def _observe_ready(self) -> None:
        while self.open and all(a in self.done for a in self.open[0]):
            archs = self.open.pop(0)
            pairs = [(a, r) for a in archs if (r := self._reward(a)) is not None]
            if pairs:
                self.stats.append(self.controller.observe([a for a, _ in pairs], [r for _, r in pairs]))
            self.observed.extend(sorted({self.done[a].index for a in archs} - set(self.observed)))
            if self.on_observe is not None:
                self.on_observe(list(self.observed))

    def finish(self) -> None:
        """Observes what the open batches already have results for (the end of the search)."""
        for archs in self.open:
            ready = [a for a in archs if a in self.done]
            pairs = [(a, r) for a in ready if (r := self._reward(a)) is not None]
            if pairs:
                self.stats.append(self.controller.observe([a for a, _ in pairs], [r for _, r in pairs]))
            self.observed.extend(sorted({self.done[a].index for a in ready} - set(self.observed)))
        self.open = []
        if self.on_observe is not None:
            self.on_observe(list(self.observed))
