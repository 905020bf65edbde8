"""Searching for the best architecture, not the best average: what the RL controllers learn from.

Plain policy gradient maximises the *expected* reward of the policy's samples,
while a search is judged by the *best* architecture it finds. The RL
controllers (ENAS and the PPO family) therefore share one mechanism,
:class:`EliteMemory`, built from three published ideas:

* **Risk-seeking policy gradient** (Petersen et al., ICLR 2021, eq. 3): only
  the top ``risk_quantile`` fraction of each batch is reinforced, against the
  batch's own ``(1 - risk_quantile)``-quantile as baseline. The advantages are
  divided by the batch's reward spread, so one setting serves rewards in
  percent, in fractions, or with differences of 1e-3 alike.
* **Priority-queue training** (Abolafia et al., 2018): the ``elite_size`` best
  architectures seen so far are kept, and every update also maximises their
  log-likelihood (weight ``elite_weight``), so good architectures found early
  are not forgotten when the batch that found them is gone.
* **Novel proposals**: an architecture already evaluated is resampled (up to
  ``novel_tries`` rounds), so a policy that concentrates around the elites
  spends its evaluations on their neighbours instead of on the elites again.
  A tabular benchmark answers a repeat with the same number; a supernet's
  repeated estimate is worth less than a new architecture's. A policy that
  has converged so far that it cannot produce a new architecture in that many
  rounds explores from its own samples instead: one decision at a time is
  changed until the architecture is new, so the search never stalls on
  repeats while the policy's entropy is gone.

* **Local steps** (opt-in, ``local_share``): up to that fraction of each batch
  is local search's step from the best architecture seen, its unseen
  one-decision neighbours (White, Nolen & Savani, UAI 2021), scaled by how
  little the policy knows yet (its normalised entropy, :attr:`EliteMemory.local_scale`):
  while the policy is near uniform the search climbs from its best find, as
  local search does from its tenth evaluation on; as the policy concentrates,
  it proposes alone.

Architectures from that fallback were not sampled by the policy, so their
log-probabilities are not a policy gradient's: every RL controller (ENAS and
the PPO family alike) leaves them out of the policy-gradient term and learns
from them only through the priority queue, which imitates them once they are
among the best. :attr:`EliteMemory.sources` counts who proposed what.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rlnas.spaces.base import Arch

#: How the novelty fallback leaves a known architecture: ``walk`` changes one random decision at a time
#: until the architecture is new; ``neighbours`` steps to an unseen neighbour whenever one is left.
FALLBACKS = ("walk", "neighbours")


class EliteMemory:
    """Top-k architectures, risk-seeking advantages and novelty filtering for one controller.

    Args:
        elite_size: Architectures kept in the priority queue (Abolafia et al. kept 10; 0 turns it off).
        risk_quantile: Fraction of each batch that is reinforced (Petersen et al.'s epsilon;
            1.0: every sample, against the batch mean).
        novel_tries: Rounds of resampling architectures that were already evaluated (0: off).
    """

    def __init__(
        self,
        elite_size: int = 5,
        risk_quantile: float = 0.5,
        novel_tries: int = 3,
        fallback: str = "walk",
        local_share: float = 0.0,
    ) -> None:
        if elite_size < 0:
            raise ValueError(f"controller.elite_size={elite_size} must be >= 0")
        if not 0 < risk_quantile <= 1:
            raise ValueError(f"controller.risk_quantile={risk_quantile} must be in (0, 1]")
        if novel_tries < 0:
            raise ValueError(f"controller.novel_tries={novel_tries} must be >= 0")
        if not 0 <= local_share <= 1:
            raise ValueError(f"controller.local_share={local_share} must be in [0, 1] (a fraction of each batch)")
        self.local_share = float(local_share)
        #: What the controller says of its policy's certainty: 1 while it is uniform, towards 0 as it
        #: concentrates (its normalised entropy); scales ``local_share``.
        self.local_scale = 1.0
        if fallback not in FALLBACKS:
            raise ValueError(f"controller.fallback={fallback!r} is unknown; allowed: {list(FALLBACKS)}")
        self.fallback_mode = fallback
        self.elite_size = int(elite_size)
        self.risk_quantile = float(risk_quantile)
        self.novel_tries = int(novel_tries)
        #: Latest reward of each architecture in the queue.
        self.elites: dict[Arch, float] = {}
        self.seen: set[Arch] = set()
        #: Proposals the policy sampled, the mutation fallback made and the local steps made, over the run.
        self.sources = {"policy": 0, "fallback": 0, "local": 0}
        #: Proposals the fallback made (not sampled by the policy) that were not observed yet.
        self.fallback: set[Arch] = set()

    def follow_entropy(self, entropy: float, num_choices: Sequence[int]) -> None:
        """Sets :attr:`local_scale` from the policy's entropy: its mean over one decision against a uniform
        policy's (``log`` of each decision's number of choices, averaged), at most 1."""
        uniform = float(np.log(np.maximum(np.asarray(num_choices), 1)).mean())
        self.local_scale = min(1.0, entropy / uniform) if uniform > 0 else 0.0

    def policy_share(self) -> float:
        """The fraction of all proposals so far that the policy sampled itself (NaN before any)."""
        total = sum(self.sources.values())
        return self.sources["policy"] / total if total else float("nan")

    # -- what to learn from ----------------------------------------------------
    def add(self, archs: Sequence[Arch], rewards: Sequence[float]) -> None:
        """Records evaluated architectures; the queue keeps the ``elite_size`` best (latest reward per arch)."""
        for arch, reward in zip(archs, rewards):
            arch = tuple(int(a) for a in arch)
            self.seen.add(arch)
            self.fallback.discard(arch)
            if not np.isfinite(reward) or self.elite_size == 0:
                continue
            self.elites[arch] = float(reward)
        if len(self.elites) > self.elite_size:
            ranked = sorted(self.elites.items(), key=lambda item: item[1], reverse=True)[: self.elite_size]
            self.elites = dict(ranked)

    def elite_archs(self) -> list[Arch]:
        """The queue's architectures, best first."""
        return [a for a, _ in sorted(self.elites.items(), key=lambda item: item[1], reverse=True)]

    def advantages(self, rewards: Sequence[float]) -> np.ndarray:
        """Risk-seeking advantages of one batch: ``(r - q) / spread`` for the top fraction, 0 for the rest.

        ``q`` is the batch's ``1 - risk_quantile`` quantile (its mean when
        ``risk_quantile`` is 1), the spread the batch's standard deviation.
        A batch whose rewards are all equal teaches nothing and gets zeros.
        """
        r = np.asarray(rewards, dtype=np.float64)
        finite = np.isfinite(r)
        out = np.zeros_like(r)
        if finite.sum() < 2:
            return out
        values = r[finite]
        spread = values.std()
        if spread <= 1e-12 * max(1.0, float(np.abs(values).max())):
            return out
        q = values.mean() if self.risk_quantile >= 1 else np.quantile(values, 1 - self.risk_quantile)
        adv = (r - q) / spread
        if self.risk_quantile < 1:
            adv = np.where(r >= q, adv, 0.0)  # only the top fraction is reinforced
        return np.where(finite, adv, 0.0)

    # -- what to propose --------------------------------------------------------
    def novel(
        self,
        sample: Callable[[int], list[Arch]],
        n: int,
        mutate: Callable[[Arch], Arch] | None = None,
        neighbour: Callable[[Arch, Callable[[Arch], bool]], Arch | None] | None = None,
    ) -> list[Arch]:
        """``n`` samples, resampling those already evaluated (or drawn twice) for up to ``novel_tries`` rounds.

        Args:
            sample: Draws ``k`` architectures from the policy.
            n: Architectures wanted.
            mutate: Changes one decision of an architecture. When the policy
                cannot produce enough new architectures in ``novel_tries``
                rounds, the rest are its samples mutated until new (at most
                ``4 * len(arch)`` mutations each); without it, plain samples.
            neighbour: A new one-decision neighbour of an architecture (``None`` when none is left). With
                ``fallback="neighbours"`` each step of the walk goes to one while one is left.
        """
        # Fallback proposals of earlier batches stay marked until observed: a trial search
        # proposes the next batch before the last one's results are in.
        if n <= 0:
            return []
        local = self._local_steps(round(self.local_share * self.local_scale * n), neighbour)
        if len(local) == n:
            return local
        n -= len(local)
        if self.novel_tries == 0:
            self.sources["policy"] += n
            return local + sample(n)
        taken: list[Arch] = []
        fresh: set[Arch] = set(local)
        for _ in range(self.novel_tries):
            for arch in sample(max(n - len(taken), 1) * 2):
                if arch not in self.seen and arch not in fresh:
                    fresh.add(arch)
                    taken.append(arch)
                    if len(taken) == n:
                        self.sources["policy"] += n
                        return local + taken
        rest = sample(n - len(taken))
        fallback: set[Arch] = set()
        if mutate is not None:
            for i, arch in enumerate(rest):
                drawn = arch
                for _ in range(4 * len(arch)):
                    if arch not in self.seen and arch not in fresh:
                        break
                    if self.fallback_mode == "neighbours" and neighbour is not None:
                        # Local search's step (White et al., 2021): an unseen neighbour while one is left.
                        step = neighbour(arch, lambda a: a in self.seen or a in fresh)
                        if step is not None:
                            arch = step
                            break
                    arch = mutate(arch)  # successive mutations walk further from the policy's mode
                fresh.add(arch)
                rest[i] = arch
                if arch != drawn:
                    fallback.add(arch)
        self.fallback |= fallback
        self.sources["fallback"] += len(fallback)
        self.sources["policy"] += n - len(fallback)
        return local + taken + rest

    def _local_steps(
        self, k: int, neighbour: Callable[[Arch, Callable[[Arch], bool]], Arch | None] | None
    ) -> list[Arch]:
        """Up to ``k`` unseen neighbours of the best architecture seen (fewer at a local optimum)."""
        if k <= 0 or not self.elites or neighbour is None:
            return []
        best = self.elite_archs()[0]
        steps: list[Arch] = []
        for _ in range(k):
            # Known: evaluated, or proposed and not yet observed (a trial search's earlier batch).
            step = neighbour(best, lambda a: a in self.seen or a in self.fallback or a in steps)
            if step is None:  # every neighbour is known: the policy proposes the rest
                break
            steps.append(step)
        # Not sampled by the policy: learnt from through the priority queue, as the fallback's are.
        self.fallback |= set(steps)
        self.sources["local"] += len(steps)
        return steps

    # -- persistence ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "elites": list(self.elites.items()),
            "seen": sorted(self.seen),
            "sources": dict(self.sources),
            "fallback": sorted(self.fallback),
            "local_scale": self.local_scale,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.elites = {tuple(a): float(r) for a, r in state["elites"]}
        self.seen = {tuple(a) for a in state["seen"]}
        self.sources = {"policy": 0, "fallback": 0, "local": 0, **state.get("sources", {})}
        self.local_scale = float(state.get("local_scale", 1.0))
        self.fallback = {tuple(a) for a in state.get("fallback", [])}
