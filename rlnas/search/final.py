"""The end of a search: the top sampled architectures re-scored on the whole validation split.

A mixin of :class:`~rlnas.search.loop.Search`: the final candidates, the
optional zero-cost proxy, the selection rule, and the controller against
uniform sampling on the final supernet.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rlnas.evaluators.proxies import arch_synflow, proxy_adjusted
from rlnas.search.faults import NumericFaultError
from rlnas.search.selection import select
from rlnas.search.settings import Candidate, SearchResult
from rlnas.spaces.base import Arch
from rlnas.spaces.seams import Evaluation, reward_number

log = logging.getLogger("rlnas.search.loop")


def train_paths(
    model: Any, task: Any, data: Any, settings: Any, steps: int, path: Callable[[], Sequence[int]], generator: Any
) -> None:
    """``steps`` more training steps of a supernet on the paths ``path()`` gives, one per step.

    The recipe of a short training from trained shared weights: SGD with Nesterov momentum from
    ``lr / 5`` down to ``lr_min`` (cosine), the search's batch size, weight decay and gradient bound;
    a step whose loss is not finite is skipped, as in the search.

    Args:
        model: The supernet (with its task head) to train in place.
        task: Its task (the loss).
        data: The splits; batches come from the training split.
        settings: The search's settings (``search:``).
        steps: Optimiser steps.
        path: The architecture of each step (one, or a sub-space's draws).
        generator: The batches' random stream.
    """
    import torch
    from torch import nn

    params = list(model.parameters())
    optimizer = torch.optim.SGD(
        params, lr=settings.lr / 5, momentum=0.9, nesterov=True, weight_decay=settings.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, steps), eta_min=min(settings.lr_min, settings.lr / 5)
    )
    model.train()
    for _ in range(steps):
        x, y = data.train.batch(settings.batch_size, generator)
        loss = task.loss(model(x, path()), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, settings.grad_clip)
        if bool(torch.isfinite(loss.detach())):
            optimizer.step()
        schedule.step()


class FinalSelection:
    """The final phase of a search (needs the attributes :class:`~rlnas.search.loop.Search` sets)."""

    settings: Any
    history: list[dict[str, Any]]
    controller: Any
    uniform: Any
    callbacks: list[Any]
    evaluator: Any
    reward: Any
    faults: Any
    selection: Any
    space: Any
    task: Any
    data: Any
    epoch: int
    seed: int
    device: Any

    def finish(self, last_mean: float, seconds: float) -> SearchResult:
        """Re-scores the top sampled architectures on the whole validation split."""
        s = self.settings
        ranked = sorted(self.history, key=lambda row: row["reward"], reverse=True)
        pool: dict[Arch, None] = {}
        for row in ranked:
            if len(pool) >= s.top_k:
                break
            pool[row["arch"]] = None
        for arch in self.controller.best_guess(s.final_samples) if s.final_samples else []:
            pool[arch] = None
        if not pool:  # no controller epoch ran: take a sample
            pool[self.controller.propose(1)[0]] = None
        candidates = []
        started = time.perf_counter()
        tuned = f", each after {s.final_finetune} steps on its own path" if s.final_finetune else ""
        log.info("final re-scoring: %d candidates on the whole validation split%s", len(pool), tuned)
        for i, arch in enumerate(pool, start=1):
            if i % 10 == 0:
                log.info("final re-scoring: %d/%d (%.0f s)", i, len(pool), time.perf_counter() - started)
            for cb in self.callbacks:
                cb.on_final_step(self)
            ev = self.finetuned_evaluation(arch, i) if s.final_finetune else self.evaluator.evaluate_full(arch)
            reward = reward_number(self.reward(ev), self.reward)
            if math.isfinite(reward):
                candidates.append(Candidate(arch, ev, reward))
            else:
                self.faults.skipped_rewards(1, self.epoch)
        if not candidates:
            raise NumericFaultError("every final candidate has a non-finite reward; lower search.lr or check the data")
        metric = self.evaluator.reward_metric
        values = [c.evaluation.metrics[metric] for c in candidates]
        if s.final_proxy:
            values = self.rank_with_proxy(candidates, values)
        order = select(
            [c.reward for c in candidates],
            values,
            [c.evaluation.costs.get(self.selection.cost, 0.0) for c in candidates],
            self.selection,
        )
        selected = [candidates[i] for i in order]
        keep = len(selected) if self.selection.rule == "top_k" else 1
        for c in selected[:keep]:  # FLOPs etc. only for what is reported
            c.evaluation.costs = {**c.evaluation.costs, **self.evaluator.full_costs(c.arch)}
        candidates.sort(key=lambda c: c.reward, reverse=True)
        controller_mean, random_mean = self.compare_with_random()
        return SearchResult(
            selected[0], candidates, selected, last_mean, controller_mean, random_mean, s.epochs, seconds
        )

    def finetuned_evaluation(self, arch: Arch, index: int) -> Evaluation:
        """``arch`` scored on the whole validation split after ``search.final_finetune`` steps of training on its
        own path, starting from the shared weights (on a copy: the supernet stays as it is).

        Weight inheritance, then a short training of the sub-network alone, as Once-for-All (Cai et al.,
        2020) does before it deploys one: the shared weights serve every path at once, and a few steps on
        one path undo part of that compromise before the path is judged. SGD with Nesterov momentum from
        ``lr / 5`` down to ``lr_min`` (cosine), the search's batch size, weight decay and gradient bound;
        the batches are seeded by the search's seed and the candidate's place, so a resumed search ends
        alike.
        """
        import copy

        import torch

        original = self.evaluator.model
        model = copy.deepcopy(original)
        generator = torch.Generator(self.device).manual_seed(self.seed * 100_003 + index)
        train_paths(model, self.task, self.data, self.settings, self.settings.final_finetune, lambda: arch, generator)
        self.evaluator.model = model
        try:
            return self.evaluator.evaluate_full(arch)
        finally:
            self.evaluator.model = original

    def rank_with_proxy(self, candidates: list[Candidate], values: list[float]) -> list[float]:
        """Rewards of the final candidates from their supernet metric ranked together with a zero-cost proxy.

        Each candidate's metric takes the place the mean of its supernet rank
        and its proxy rank gives it among the measured values
        (:func:`~rlnas.evaluators.proxies.proxy_adjusted`), and its reward is
        recomputed from that, so cost penalties apply as before. The measured
        metric stays in the evaluation; the proxy goes to :attr:`Candidate.proxy`.

        Args:
            candidates: The re-scored candidates (their rewards are replaced).
            values: Their measured reward metric, in the same order.

        Returns:
            The adjusted metric of each candidate (what the selection rule compares).
        """
        metric = self.evaluator.reward_metric
        started = time.perf_counter()
        proxy = [arch_synflow(self.space, self.task, self.data, c.arch) for c in candidates]
        adjusted = proxy_adjusted(values, proxy)
        for c, p, value in zip(candidates, proxy, adjusted):
            c.proxy[self.settings.final_proxy] = p
            scored = Evaluation({**c.evaluation.metrics, metric: value}, c.evaluation.costs)
            reward = reward_number(self.reward(scored), self.reward)
            # A NaN from the reward function keeps the candidate's supernet reward.
            c.reward = reward if math.isfinite(reward) else c.reward
        log.info(
            "final re-scoring: %s of %d candidates (%.1f s)",
            self.settings.final_proxy,
            len(candidates),
            time.perf_counter() - started,
        )
        return adjusted

    def compare_with_random(self) -> tuple[float, float]:
        """Mean reward of controller samples vs uniform samples on the same final minibatches."""
        n, per_step = self.settings.random_baseline, self.settings.archs_per_step
        if n == 0:
            return float("nan"), float("nan")
        ours, theirs = [], []
        for start in range(0, n, per_step):
            for cb in self.callbacks:
                cb.on_final_step(self)
            k = min(per_step, n - start)
            batch = self.controller.propose(k) + self.uniform.propose(k)
            _, rewards = self.score(batch)
            ours += rewards[:k]
            theirs += rewards[k:]
        return float(np.nanmean(ours)), float(np.nanmean(theirs))
