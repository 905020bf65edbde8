"""``trials:``: what a trial search is configured with (``conf/trials/default.yaml``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from rlnas.tasks.training import RECIPE_HPARAMS, TASK_HPARAMS
from rlnas.utils import is_whole, section_values

__all__ = ["RECIPE_HPARAMS", "SCHEDULERS", "TASK_HPARAMS", "TrialSettings", "trial_settings"]
#: Early-stopping schedulers over training epochs.
SCHEDULERS = ("asha", "none")


@dataclass
class TrialSettings:
    """Budgets, parallelism and fidelity of a trial search.

    Attributes:
        budget: Trials in all: distinct candidates trained (a candidate proposed
            again is answered from the run's results and costs nothing).
        concurrent: Trials at once (null: as many as the resources allow).
        epochs: Epochs of a trial that is not stopped early (the top fidelity).
        cpus_per_trial: CPUs Ray reserves for a trial (its torch threads too).
        gpus_per_trial: GPUs Ray reserves for a trial (null: 1 when CUDA is available, else 0).
        address: Ray cluster to join (``auto``, ``ray://host:10001``); null: Ray
            started locally with this machine's cores.
        scheduler: ``asha`` (asynchronous successive halving over epochs, Li et
            al., MLSys 2020) or ``none`` (every trial trains all ``epochs``).
        grace_period: Epochs every trial trains before ASHA may stop it (null: a
            quarter of ``epochs``, at least 1: 5 of the default 20, so that a short
            ``epochs`` needs no second setting).
        reduction_factor: ASHA keeps the top ``1 / reduction_factor`` at each rung.
        batch: Results per controller update (``observe``).
        failed_reward: Reward a failed trial (NaN loss, exception, lost worker)
            hands the controller; null: the controller is not told of it.
        train: The training recipe: ``conf/retrain.yaml``'s ``train:`` keys (null
            takes the search's ``search:`` value).
        hparams: Training decisions searched beside the architecture's, name ->
            candidate values (``{lr: [0.01, 0.05, 0.1]}``); names among
            :data:`RECIPE_HPARAMS` and :data:`TASK_HPARAMS`.
    """

    budget: int = 100
    concurrent: Optional[int] = 2  # noqa: UP045 - OmegaConf's structured configs need typing.Optional on 3.10
    epochs: int = 20
    cpus_per_trial: float = 1.0
    gpus_per_trial: Optional[float] = None  # noqa: UP045
    address: Optional[str] = None  # noqa: UP045
    scheduler: str = "asha"
    grace_period: Optional[int] = None  # noqa: UP045
    reduction_factor: int = 3
    batch: int = 8
    failed_reward: Optional[float] = None  # noqa: UP045
    train: Any = field(default_factory=dict)
    hparams: Any = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_numbers()
        if self.grace_period is None:
            self.grace_period = max(1, self.epochs // 4)
        for name in ("budget", "epochs", "grace_period", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"trials.{name} must be >= 1, got {getattr(self, name)}")
        if self.concurrent is not None and self.concurrent < 1:
            raise ValueError(f"trials.concurrent must be >= 1 or null, got {self.concurrent}")
        if not (self.cpus_per_trial > 0 and math.isfinite(self.cpus_per_trial)):
            raise ValueError(f"trials.cpus_per_trial must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and not 0 <= self.gpus_per_trial < math.inf:
            raise ValueError(f"trials.gpus_per_trial must be >= 0 or null, got {self.gpus_per_trial}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"trials.scheduler={self.scheduler!r} is unknown; allowed: {list(SCHEDULERS)}")
        if self.reduction_factor < 2:
            raise ValueError(f"trials.reduction_factor must be >= 2, got {self.reduction_factor}")
        if self.scheduler == "asha" and self.grace_period > self.epochs:  # scheduler=none stops no trial
            raise ValueError(
                f"trials.grace_period={self.grace_period} exceeds trials.epochs={self.epochs}; "
                "a trial cannot be stopped after its last epoch"
            )
        if self.failed_reward is not None and not math.isfinite(self.failed_reward):
            raise ValueError(f"trials.failed_reward must be a finite number or null, got {self.failed_reward}")
        self._check_training()

    def _check_numbers(self) -> None:
        """Counts are whole numbers and resources numbers, named ``trials.key`` (``trials.budget=1.5``)."""
        for name in ("budget", "concurrent", "epochs", "grace_period", "reduction_factor", "batch"):
            value = getattr(self, name)
            if value is None and name in ("concurrent", "grace_period"):
                continue
            if not is_whole(value):
                raise ValueError(f"trials.{name} must be a whole number, got {value!r}")
            setattr(self, name, int(value))
        for name in ("cpus_per_trial", "gpus_per_trial", "failed_reward"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"trials.{name} must be a number, got {value!r}")

    def _check_training(self) -> None:
        """``train`` and ``hparams``: mappings of the recipe's and the head's settings to values."""
        for name in ("train", "hparams"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), Mapping):
                raise ValueError(
                    f"trials.{name} must be a mapping of setting names to values, got {getattr(self, name)!r}"
                )
        for name, values in dict(self.hparams or {}).items():
            for value in values if isinstance(values, (list, tuple)) else [values]:
                if isinstance(value, (Mapping, list, tuple)):
                    raise ValueError(
                        f"trials.hparams.{name}: {value!r} is not a value (list the candidates, e.g. [0.01, 0.1])"
                    )
        unknown = sorted(set(dict(self.hparams or {})) - set(RECIPE_HPARAMS) - set(TASK_HPARAMS))
        if unknown:
            raise ValueError(
                f"trials.hparams.{unknown[0]} is not a training setting; allowed: {[*RECIPE_HPARAMS, *TASK_HPARAMS]}"
            )
        if "epochs" in dict(self.train or {}):
            raise ValueError("trials.train.epochs: set trials.epochs (the top fidelity) instead")


def trial_settings(cfg: Any) -> TrialSettings:
    """``trials:`` of a run's config as :class:`TrialSettings`, rejecting unknown keys."""
    return TrialSettings(**section_values(cfg.trials, TrialSettings, "trials"))
