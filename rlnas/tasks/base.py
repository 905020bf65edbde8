"""A task is a plug-in: its data, the head on the searched backbone, its loss,
metrics, the metric the reward uses and its default search-space choices.

Adding a task means one module with a :class:`Task` subclass plus one
``conf/task/NAME.yaml`` whose ``_target_`` names it; no other code changes.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from rlnas.data.base import DataSplits


class Task(abc.ABC):
    """Base class of tasks.

    Args:
        reward_metric: Name of the metric (a key of :meth:`metrics`) the reward uses.
        data: Keyword arguments of the task's data loader.
    """

    #: Metrics this task reports; ``reward_metric`` must be one of them.
    metric_names: tuple[str, ...] = ()
    #: The highest value its metrics can take (``None``: unbounded or unknown); a hard limit's
    #: penalty must stay below it.
    metric_max: float | None = None
    #: Short name used in logs and outputs.
    name: str = "task"
    #: Search-space classes whose networks take this task's inputs (names, matched along the space's MRO).
    spaces: tuple[str, ...] = ("MacroSpace", "NB201Space")
    #: Dimensions of the maps a convolutional space works on for this task (2: images, 1: signals).
    dims: int = 2
    #: The function ``task.data`` configures (its signature validates those keys); ``None``: unchecked.
    data_loader: Callable[..., DataSplits] | None = None

    def __init__(self, reward_metric: str, data: dict | None = None) -> None:
        if reward_metric not in self.metric_names:
            raise ValueError(
                f"task.reward_metric={reward_metric!r} is unknown for the {self.name} task; "
                f"allowed: {list(self.metric_names)}"
            )
        self.reward_metric = reward_metric
        self.data_kwargs = dict(data or {})

    @abc.abstractmethod
    def load_data(self, seed: int) -> DataSplits:
        """Loads the splits as CPU tensors (the caller moves them to the device)."""

    @abc.abstractmethod
    def build_head(self, feature_channels: Sequence[int], data: DataSplits) -> nn.Module:
        """The head mapping the backbone's stage feature maps to predictions."""

    @abc.abstractmethod
    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Scalar training loss of a batch."""

    @abc.abstractmethod
    def batch_metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Metrics of one batch as 0-d tensors (no host synchronisation)."""

    def batch_reward_metric(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """The reward metric of one batch; tasks override it when it is cheaper alone."""
        return self.batch_metrics(outputs, targets)[self.reward_metric]

    def augment(self, x: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A randomly augmented training batch, on its device (default: unchanged)."""
        return x, targets

    def train_metric(self, outputs: Tensor, targets: Tensor) -> Tensor | None:
        """A cheap metric logged during supernet training (``None``: none)."""
        return None

    def preview(self, images: Tensor, outputs: Tensor, targets: Tensor) -> Tensor | None:
        """Images (N, 3, H, W) uint8 with predictions drawn, for TensorBoard (``None``: none)."""
        return None

    def metrics(self, outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> dict[str, float]:
        """Metrics over a whole split given its outputs and targets in chunks."""
        return {k: float(v) for k, v in self.batch_metrics(torch.cat(list(outputs)), torch.cat(list(targets))).items()}


class Network(nn.Module):
    """A backbone (supernet or child) followed by a task head.

    ``forward(x)`` for a child, ``forward(x, arch)`` for a supernet.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: Tensor, *arch: Sequence[int]) -> Tensor:
        return self.head(self.backbone(x, *arch))
