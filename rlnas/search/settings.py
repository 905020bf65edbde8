"""What the search loop is configured with and what it reports.

Kept apart from :mod:`rlnas.search.loop` (which re-exports them) so that the
final phase (:mod:`rlnas.search.final`) can name them without the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rlnas.evaluators.proxies import PROXIES
from rlnas.spaces.base import Arch
from rlnas.spaces.seams import Evaluation
from rlnas.tasks.training import check_decay

#: Most architectures a search draws as one batch (a controller step, the final candidates, the
#: random baseline): each is held in memory with its policy state until it is scored.
MAX_BATCH_ARCHS = 100_000


@dataclass
class SearchSettings:
    """Budgets and the supernet optimiser (``search:`` in the config).

    Optimiser defaults follow the ENAS macro search: SGD with Nesterov momentum
    0.9, cosine learning rate 0.05 -> 0.0005, L2 2.5e-4, gradient norm bound 5.
    ``optimizer=adamw`` suits dense heads (detection) better on short budgets.
    """

    epochs: int = 30
    warmup_epochs: int = 5
    supernet_steps: int = 40
    controller_steps: int = 10
    archs_per_step: int = 20
    batch_size: int = 128
    val_batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    lr_min: float = 0.0005
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 2.5e-4
    grad_clip: float = 5.0
    augment: bool = False
    bn_calibration: int = 256
    bn_calibration_scope: str = "final"
    top_k: int = 10
    final_samples: int = 20
    final_proxy: str | None = None
    final_finetune: int = 0
    random_baseline: int = 100
    fault_limit: int = 20
    fault_backoff_after: int = 3
    fault_backoff: float = 0.5

    def __post_init__(self) -> None:
        self._check_counts()
        if self.warmup_epochs >= self.epochs and self.controller_steps > 0:
            raise ValueError(
                f"search.warmup_epochs={self.warmup_epochs} leaves no epoch to train the controller "
                f"(search.epochs={self.epochs})"
            )
        if self.bn_calibration_scope not in ("final", "all"):
            raise ValueError(
                f"search.bn_calibration_scope={self.bn_calibration_scope!r} is unknown; allowed: ['final', 'all']"
            )
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"search.optimizer={self.optimizer!r} is unknown; allowed: ['sgd', 'adamw']")
        if self.final_proxy is not None and self.final_proxy not in PROXIES:
            raise ValueError(f"search.final_proxy={self.final_proxy!r} is unknown; allowed: {[None, *PROXIES]}")
        if not self.grad_clip > 0:
            raise ValueError(f"search.grad_clip must be > 0 (a gradient norm bound), got {self.grad_clip}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"search.momentum must be in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:  # torch's optimisers refuse it without naming the key
            raise ValueError(f"search.weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.fault_backoff <= 1:
            raise ValueError(f"search.fault_backoff must be in (0, 1], got {self.fault_backoff}")
        if not (self.lr > 0 and 0 <= self.lr_min <= self.lr):
            raise ValueError(f"search.lr={self.lr} and search.lr_min={self.lr_min} need 0 <= lr_min <= lr, lr > 0")
        check_decay(self.lr, self.weight_decay, "search")

    def _check_counts(self) -> None:
        """Counts of epochs, steps and architectures: positive, non-negative, or a batch memory holds."""
        positive = ("epochs", "supernet_steps", "archs_per_step", "batch_size", "val_batch_size", "top_k")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"search.{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "warmup_epochs",
            "controller_steps",
            "bn_calibration",
            "final_samples",
            "final_finetune",
            "random_baseline",
            "fault_limit",
            "fault_backoff_after",
        ):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"search.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("archs_per_step", "final_samples", "random_baseline"):
            # Drawn and held as one batch: final_samples=100,000,000 asked the ENAS policy for 25.6 GB at once.
            if int(getattr(self, name)) > MAX_BATCH_ARCHS:
                raise ValueError(
                    f"search.{name}={getattr(self, name)} draws more architectures at once than a search holds "
                    f"in memory ({MAX_BATCH_ARCHS:,} at most)"
                )


@dataclass
class Candidate:
    """An architecture scored on the whole validation split."""

    arch: Arch
    evaluation: Evaluation
    reward: float
    #: Zero-cost proxy scores the final choice ranked it with (``search.final_proxy``).
    proxy: dict[str, float] = field(default_factory=dict)


@dataclass
class EpochStats:
    """What one epoch did, for logging callbacks."""

    epoch: int
    supernet_loss: float
    train_metric: float | None
    lr: float
    rewards: list[float] = field(default_factory=list)
    metric_values: list[float] = field(default_factory=list)
    costs: dict[str, list[float]] = field(default_factory=dict)
    controller: dict[str, float] = field(default_factory=dict)
    faults: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class SearchResult:
    """The outcome of a search."""

    best: Candidate
    candidates: list[Candidate]
    selected: list[Candidate]
    last_epoch_mean_reward: float
    controller_mean_reward: float
    random_mean_reward: float
    epochs: int
    seconds: float
