"""The search loop: supernet training and controller updates alternate (ENAS, Alg. 1).

Each epoch trains the shared weights for ``supernet_steps`` minibatches, each
on an architecture sampled by the controller, then updates the controller for
``controller_steps`` steps, each on ``archs_per_step`` architectures scored on
one validation minibatch. The final architecture is the best of the top
sampled ones re-scored on the whole validation split.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from rlnas.controllers.base import Controller, RandomController
from rlnas.controllers.rank_zero import RankZeroController
from rlnas.data.base import DataSplits
from rlnas.evaluators.base import Evaluation
from rlnas.evaluators.supernet import SuperNetEvaluator
from rlnas.rewards.base import Reward, reward_number
from rlnas.search.faults import NumericFaultError, NumericFaults, finite_weights
from rlnas.search.final import FinalSelection
from rlnas.search.selection import SelectionSettings
from rlnas.search.settings import Candidate, EpochStats, SearchResult, SearchSettings
from rlnas.spaces.base import Arch, SearchSpace
from rlnas.tasks.base import Network, Task
from rlnas.utils.distributed import Comm, DistributedError, global_batchnorm
from rlnas.utils.timing import ComputeTimer

log = logging.getLogger(__name__)

__all__ = ["Callback", "Candidate", "EpochStats", "Search", "SearchResult", "SearchSettings"]


class Callback:
    """Hooks the loop calls; subclasses override what they need (SB3 style)."""

    def on_search_start(self, search: Search) -> None: ...

    def on_evaluation(
        self,
        search: Search,
        epoch: int,
        archs: Sequence[Arch],
        evaluations: Sequence[Evaluation],
        rewards: Sequence[float],
    ) -> None: ...

    def on_epoch_end(self, search: Search, stats: EpochStats) -> None: ...

    def on_step(self, search: Search) -> None:
        """Called after each supernet and each controller step (a stop that cannot wait is honoured here)."""

    def on_final_step(self, search: Search) -> None:
        """Called between the final re-scoring's evaluations (a stop request is honoured here)."""

    def on_search_end(self, search: Search, result: SearchResult) -> None: ...


class Search(FinalSelection):
    """Alternates supernet training and controller updates.

    Args:
        space: The search space.
        task: The task (loss and metrics).
        data: Device-resident splits.
        model: Supernet with the task head, on the device.
        evaluator: Scores architectures with the shared weights.
        controller: Proposes architectures and learns from rewards.
        reward: Turns evaluations into rewards.
        settings: Budgets and optimiser settings.
        seed: Seed of batch and warm-up sampling.
        callbacks: Logging, progress and output writers.
        selection: How the final architecture is chosen among the candidates.
        comm: The ranks of a multi-process search (``torchrun``): every rank
            trains on its share of each batch and the gradients are averaged
            (:mod:`rlnas.utils.distributed`). Default: one process.
    """

    def __init__(
        self,
        space: SearchSpace,
        task: Task,
        data: DataSplits,
        model: Network,
        evaluator: SuperNetEvaluator,
        controller: Controller,
        reward: Reward,
        settings: SearchSettings,
        seed: int = 0,
        callbacks: Sequence[Callback] = (),
        selection: SelectionSettings | None = None,
        comm: Comm | None = None,
    ) -> None:
        self.comm = comm or Comm()
        self.space, self.task, self.data, self.model = space, task, data, model
        self.evaluator, self.controller, self.reward = evaluator, controller, reward
        self.settings = settings
        self.selection = selection or SelectionSettings()
        self.callbacks = list(callbacks)
        self.device = data.train.x.device
        #: Child compute time accounting (off unless a benchmark enables it).
        self.timer = ComputeTimer(self.device)
        evaluator.timer = self.timer
        self.seed = seed
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        # Uniform sampling (warm-up, random comparison) under the controller's extra masks.
        uniform = RandomController(space)
        uniform.rng = self.rng
        uniform.action_mask = controller.action_mask
        self.uniform = RankZeroController(uniform, self.comm) if self.comm.active else uniform
        s = settings
        self.optimizer: torch.optim.Optimizer
        if s.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(
                model.parameters(),
                lr=s.lr,
                momentum=s.momentum,
                nesterov=s.nesterov and s.momentum > 0,
                weight_decay=s.weight_decay,
            )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=s.epochs, eta_min=s.lr_min)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        #: First epoch :meth:`run` trains (a restored checkpoint moves it on).
        self.start_epoch = 0
        #: Mean reward of the last epoch that trained the controller.
        self.last_mean = float("nan")
        self.faults = NumericFaults(s.fault_limit, s.fault_backoff_after, s.fault_backoff)
        #: Statistics of a differentiable controller's alpha steps in the current epoch.
        self.arch_stats: dict[str, list[float]] = {}

    # -- phases ---------------------------------------------------------------
    def train_supernet(self, archs: Sequence[Arch]) -> tuple[float, float | None]:
        """One optimiser step per architecture; returns the mean loss and train metric (if any)."""
        return self._train_steps(len(archs), lambda i, x: self.model(x, archs[i]))

    def train_weighted(self) -> tuple[float, float | None]:
        """A differentiable controller's epoch (DARTS, GDAS; first-order, Liu et al., 2019, sec. 2.3).

        Each step trains the weights on a training batch through the current
        mixture (alpha held fixed), then takes one alpha step on a validation
        batch (weights held fixed).
        """
        s, ctrl = self.settings, self.controller
        # The first alpha epoch runs at tau_max, the last at tau_min (a single one: at tau_min).
        span = s.epochs - s.warmup_epochs - 1
        ctrl.set_progress((self.epoch - s.warmup_epochs) / span if span > 0 else 1.0)
        backbone = self.model.backbone

        def forward(_: int, x: torch.Tensor) -> torch.Tensor:
            weights, active = ctrl.path_weights()
            return self.model.head(backbone.forward_weighted(x, [w.detach() for w in weights], active))

        def arch_step() -> None:
            x, y = self.data.val.batch(s.batch_size, self.generator, self.comm.rank, self.comm.world)
            weights, active = ctrl.path_weights()
            with self.timer():
                loss = self.task.loss(self.model.head(backbone.forward_weighted(x, weights, active)), y)
                if not bool(torch.isfinite(loss.detach())):
                    self.faults.skipped_rewards(1, self.epoch)
                    return
                for key, value in ctrl.arch_step(loss, weights).items():
                    self.arch_stats.setdefault(key, []).append(value)
            self.arch_stats.setdefault("val_loss", []).append(float(loss.detach()))

        return self._train_steps(s.supernet_steps, forward, after_step=arch_step)

    def _train_steps(
        self,
        steps: int,
        forward: Callable[[int, torch.Tensor], torch.Tensor],
        after_step: Callable[[], None] | None = None,
    ) -> tuple[float, float | None]:
        """``steps`` weight updates, step ``i`` on ``forward(i, x)`` of a fresh training batch."""
        self.model.train()
        params = [p for p in self.model.parameters()]
        loss_sum = torch.zeros((), device=self.device)
        metric_sum = torch.zeros((), device=self.device)
        has_metric = False
        applied = 0
        # The task's training augmentation, as the standalone retrain uses it.
        transform = (lambda x, y: self.task.augment(x, y, self.generator)) if self.settings.augment else None
        for i in range(steps):
            x, y = self.data.train.batch(
                self.settings.batch_size, self.generator, self.comm.rank, self.comm.world, transform=transform
            )
            with self.timer(), global_batchnorm(self.comm):
                out = forward(i, x)
                loss = self.task.loss(out, y)
                # Unused ops get no gradient; set_to_none keeps SGD from decaying them.
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                # Several ranks: the mean gradient and loss of the global batch (one all-reduce).
                loss = self.comm.average_gradients(params, loss)
                grad_norm = nn.utils.clip_grad_norm_(params, self.settings.grad_clip)
                # One host sync per step: a NaN must never reach the shared weights.
                finite = bool(torch.isfinite(loss.detach() + grad_norm))
                if finite:
                    self.optimizer.step()
            if not finite:
                self.optimizer.zero_grad(set_to_none=True)
                self.faults.skipped_step(self.model, self.epoch)
                continue
            applied += 1
            loss_sum += loss.detach()
            metric = self.task.train_metric(out.detach(), y)
            if metric is not None:
                metric_sum += metric
                has_metric = True
            if after_step is not None:
                after_step()
            for cb in self.callbacks:
                cb.on_step(self)
        if not applied:
            return float("nan"), None
        sums = self.comm.mean_(torch.stack([loss_sum, metric_sum]))  # the loss is already averaged: unchanged
        loss_mean, metric_mean = (sums / applied).tolist()  # one host sync per epoch
        return loss_mean, metric_mean if has_metric else None

    def score(self, archs: Sequence[Arch]) -> tuple[list[Evaluation], list[float]]:
        """Scores ``archs`` on one fresh validation minibatch."""
        self.evaluator.next_batch()
        evaluations = self.evaluator.evaluate_batch(archs)
        return evaluations, [reward_number(self.reward(e), self.reward) for e in evaluations]

    def train_controller(self, epoch: int, stats: EpochStats) -> None:
        s = self.settings
        agg: dict[str, list[float]] = {}
        for _ in range(s.controller_steps):
            archs = self.controller.propose(s.archs_per_step)
            evaluations, rewards = self.score(archs)
            keep = [i for i, r in enumerate(rewards) if math.isfinite(r)]
            if len(keep) < len(archs):  # a NaN/inf reward would poison the controller's baseline
                self.faults.skipped_rewards(len(archs) - len(keep), epoch)
                archs, evaluations, rewards = ([seq[i] for i in keep] for seq in (archs, evaluations, rewards))
            if not archs:
                continue
            for key, value in self.controller.observe(archs, rewards).items():
                agg.setdefault(key, []).append(value)
            self._record(epoch, archs, evaluations, rewards, stats)
            for cb in self.callbacks:
                cb.on_step(self)
        for key, values in self.arch_stats.items():  # alpha steps of a differentiable controller
            agg.setdefault(key, []).extend(values)
        self.arch_stats = {}
        stats.controller = {k: float(np.mean(v)) for k, v in agg.items()}

    def _record(
        self,
        epoch: int,
        archs: Sequence[Arch],
        evaluations: Sequence[Evaluation],
        rewards: Sequence[float],
        stats: EpochStats,
    ) -> None:
        metric = self.evaluator.reward_metric
        for arch, ev, r in zip(archs, evaluations, rewards):
            self.history.append({"epoch": epoch, "arch": arch, "reward": r, **ev.metrics, **ev.costs})
            stats.rewards.append(r)
            stats.metric_values.append(ev.metrics[metric])
            for name, value in ev.costs.items():
                stats.costs.setdefault(name, []).append(value)
        for cb in self.callbacks:
            cb.on_evaluation(self, epoch, archs, evaluations, rewards)

    # -- the whole search -----------------------------------------------------
    def run(self) -> SearchResult:
        try:
            return self._run()
        except BaseException:
            # A search that fails leaves the process as it found it (its signal handlers, say): a later
            # Ctrl-C in the same process (a notebook, the next sweep job) must stop it again.
            for cb in self.callbacks:
                failed = getattr(cb, "on_search_failed", None)
                if failed is not None:
                    failed(self)
            raise

    def _run(self) -> SearchResult:
        s = self.settings
        start = time.perf_counter()
        for cb in self.callbacks:
            cb.on_search_start(self)
        for epoch in range(self.start_epoch, s.epochs):
            self.epoch = epoch
            t0 = time.perf_counter()
            warmup = epoch < s.warmup_epochs
            # Warm-up trains every path uniformly before the controller's
            # choices start to shape the shared weights (fair sampling).
            lr = self.optimizer.param_groups[0]["lr"]
            if not warmup and self.controller.differentiable:
                loss, acc = self.train_weighted()
            else:
                if warmup or not self.controller.learns:
                    archs = self.uniform.propose(s.supernet_steps)
                else:
                    archs = self.controller.propose(s.supernet_steps)
                loss, acc = self.train_supernet(archs)
            self.scheduler.step()
            self.faults.end_epoch(self.optimizer, self.scheduler)
            stats = EpochStats(epoch, loss, acc, lr)
            if not warmup:
                self.train_controller(epoch, stats)
                self.last_mean = float(np.mean(stats.rewards)) if stats.rewards else self.last_mean
            stats.faults = self.faults.scalars()
            stats.seconds = time.perf_counter() - t0
            for cb in self.callbacks:
                cb.on_epoch_end(self, stats)
        if not self.comm.same_weights(self.model):  # a fault of the gradient exchange, never expected
            raise DistributedError(f"rank {self.comm.rank}: the ranks' supernet weights differ after training")
        if not finite_weights(self.model):  # outputs would carry them: stop before anything is written
            bad = [name for name, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())] or [
                "buffers"
            ]
            raise NumericFaultError(
                f"the supernet's weights are not finite after epoch {self.epoch + 1} ({bad[0]}, {len(bad)} tensors); "
                f"nothing was written; lower search.lr (now {self.settings.lr:g})"
            )
        result = self.finish(self.last_mean, time.perf_counter() - start)
        for cb in self.callbacks:
            cb.on_search_end(self, result)
        return result
