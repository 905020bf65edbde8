"""Image classification: cross-entropy, accuracy / precision / recall / macro-F1."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlnas.data.base import DataSplits
from rlnas.data.images import load_image_classification
from rlnas.tasks.base import Task


class ClassificationHead(nn.Module):
    """Global average pooling of the last stage, then a linear classifier.

    Takes feature maps (B, C, H, W) or an already pooled summary (B, C), such
    as a sequence backbone's last hidden state.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = features[-1]
        # No branch on the rank: FX (static int8) traces this, and (B, C) becomes (B, C, 1).
        x = x.reshape(x.shape[0], x.shape[1], -1).mean(dim=2)  # (B, C)
        return self.fc(self.dropout(x))  # (B, num_classes)


class ClassificationTask(Task):
    """Image classification on the embedded digits or users' images.

    Args:
        reward_metric: ``accuracy`` (default), ``precision``, ``recall`` or ``f1``
            (macro-averaged).
        data: Arguments of :func:`rlnas.data.load_image_classification`.
        dropout: Dropout before the classifier.
        label_smoothing: Label smoothing of the cross-entropy loss.
    """

    name = "classification"
    data_loader = staticmethod(load_image_classification)
    metric_names = ("accuracy", "precision", "recall", "f1")
    metric_max = 1.0  # fractions

    def __init__(
        self,
        reward_metric: str = "accuracy",
        data: dict | None = None,
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(reward_metric, data)
        # Dropout of 1 zeroes every feature; smoothing of 1 makes every target uniform: nothing is learnt.
        if not 0 <= float(dropout) < 1:
            raise ValueError(f"task.dropout must be in [0, 1), got {dropout}")
        if not 0 <= float(label_smoothing) < 1:
            raise ValueError(f"task.label_smoothing must be in [0, 1), got {label_smoothing}")
        self.dropout = float(dropout)
        self.label_smoothing = float(label_smoothing)
        self.num_classes = 0

    def load_data(self, seed: int) -> DataSplits:
        data = self.data_loader(seed=seed, **self.data_kwargs)
        self.num_classes = data.num_classes
        return data

    def build_head(self, feature_channels: Sequence[int], data: DataSplits) -> nn.Module:
        return ClassificationHead(feature_channels[-1], data.num_classes, self.dropout)

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(outputs, targets, label_smoothing=self.label_smoothing)

    def batch_metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        # Imported here: torchmetrics pulls in torchvision, seconds of start-up a config error or --help need not pay.
        from torchmetrics.functional.classification import (
            multiclass_f1_score,
            multiclass_precision,
            multiclass_recall,
        )

        preds = outputs.argmax(dim=1)
        k = max(self.num_classes, outputs.shape[1])
        # Accuracy is micro-averaged (the fraction correct); the others are macro.
        return {
            "accuracy": (preds == targets).float().mean(),
            "precision": multiclass_precision(preds, targets, k, average="macro"),
            "recall": multiclass_recall(preds, targets, k, average="macro"),
            "f1": multiclass_f1_score(preds, targets, k, average="macro"),
        }

    def augment(self, x: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Random translation by up to 1/8 of the side (pad and crop; 4 px on 32 px CIFAR, He et al. 2016).

        No flips: they change the meaning of digits and characters.
        """
        B, _, H, W = x.shape
        pad = max(1, round(H / 8))
        padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        oy = torch.randint(0, 2 * pad + 1, (B, 1), device=x.device, generator=generator)
        ox = torch.randint(0, 2 * pad + 1, (B, 1), device=x.device, generator=generator)
        rows = (torch.arange(H, device=x.device) + oy)[:, :, None]  # (B, H, 1)
        cols = (torch.arange(W, device=x.device) + ox)[:, None, :]  # (B, 1, W)
        batch = torch.arange(B, device=x.device)[:, None, None]
        return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous(), targets

    def train_metric(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return (outputs.argmax(dim=1) == targets).float().mean()

    def batch_reward_metric(self, outputs: Tensor, targets: Tensor) -> Tensor:
        if self.reward_metric == "accuracy":
            return (outputs.argmax(dim=1) == targets).float().mean()
        return self.batch_metrics(outputs, targets)[self.reward_metric]
