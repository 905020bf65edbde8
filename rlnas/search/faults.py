"""Numeric faults: a NaN/inf supernet loss or reward skips its step instead of ending the search.

Weight sharing makes one bad minibatch everyone's problem: a NaN that reaches
the shared weights ruins every architecture. So a step whose loss or gradient
norm is not finite is skipped (no optimiser step; BatchNorm statistics it
spoiled are reset), an architecture whose reward is not finite is left out of
the controller update, and both are counted. Several faulty steps in one epoch
lower the learning rate; past a limit the search stops with one line, and the
last checkpoint (written only with finite weights) is kept.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


class NumericFaultError(FloatingPointError):
    """Too many NaN/inf losses or rewards: the search stops; the message is one line."""


class NumericFaults:
    """Counts numeric faults, backs the learning rate off and enforces the limit.

    Args:
        limit: Faults (skipped steps plus skipped rewards) the whole search may
            have; one more stops it. 0 stops at the first.
        backoff_after: Skipped supernet steps within one epoch that lower the
            learning rate.
        backoff: Factor applied to the learning rate (and the schedule) then.
    """

    def __init__(self, limit: int = 20, backoff_after: int = 3, backoff: float = 0.5) -> None:
        self.limit = int(limit)
        self.backoff_after = int(backoff_after)
        self.backoff = float(backoff)
        self.loss = 0  # skipped supernet steps, whole search
        self.reward = 0  # skipped rewards, whole search
        self.backoffs = 0
        self._epoch_loss = 0

    @property
    def total(self) -> int:
        return self.loss + self.reward

    def skipped_step(self, model: nn.Module, epoch: int) -> None:
        """Records a supernet step that was not applied; resets BatchNorm statistics it spoiled."""
        self.loss += 1
        self._epoch_loss += 1
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
                if not (torch.isfinite(module.running_mean).all() and torch.isfinite(module.running_var).all()):
                    module.reset_running_stats()
        log.warning("epoch %d: non-finite supernet loss or gradient; step skipped (%d so far)", epoch, self.total)
        self.check()

    def skipped_rewards(self, count: int, epoch: int) -> None:
        """Records ``count`` architectures left out of a controller update for a non-finite reward."""
        if count:
            self.reward += count
            log.warning("epoch %d: %d non-finite rewards left out of the controller update", epoch, count)
            self.check()

    def check(self) -> None:
        """Raises :class:`NumericFaultError` once the faults exceed :attr:`limit`."""
        if self.total > self.limit:
            raise NumericFaultError(
                f"{self.loss} skipped supernet steps and {self.reward} skipped rewards (NaN/inf) exceed "
                f"search.fault_limit={self.limit}; the last checkpoint is kept; lower search.lr or check the data"
            )

    def end_epoch(self, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        """Lowers the learning rate after an epoch with ``backoff_after`` or more skipped steps."""
        if self.backoff_after and self._epoch_loss >= self.backoff_after:
            for group in optimizer.param_groups:
                group["lr"] *= self.backoff
            scheduler.base_lrs = [lr * self.backoff for lr in scheduler.base_lrs]
            if hasattr(scheduler, "eta_min"):
                scheduler.eta_min *= self.backoff
            self.backoffs += 1
            log.warning(
                "%d skipped steps in one epoch: learning rate x%g (now %.3g)",
                self._epoch_loss,
                self.backoff,
                optimizer.param_groups[0]["lr"],
            )
        self._epoch_loss = 0

    def scalars(self) -> dict[str, float]:
        """Totals for TensorBoard (``faults/*``)."""
        return {
            "skipped_steps": float(self.loss),
            "skipped_rewards": float(self.reward),
            "lr_backoffs": float(self.backoffs),
        }

    def state_dict(self) -> dict[str, int]:
        return {"loss": self.loss, "reward": self.reward, "backoffs": self.backoffs}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.loss, self.reward, self.backoffs = int(state["loss"]), int(state["reward"]), int(state["backoffs"])


def finite_weights(model: torch.nn.Module) -> bool:
    """Whether every parameter and buffer is finite (one host sync for the whole model)."""
    checks = [torch.isfinite(t).all() for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()]
    return bool(torch.stack(checks).all()) if checks else True
