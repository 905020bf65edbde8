"""Signal classification: MNIST-1D read by a 1-D convolutional macro space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rlnas.data.base import DataSplits
from rlnas.data.signals import load_signals
from rlnas.tasks.classification import ClassificationTask


class SignalClassificationTask(ClassificationTask):
    """Classification of 1-D signals (N, 1, 1, L) by a 1-D macro space (``space=conv1d``).

    Same head, loss and metrics as :class:`ClassificationTask` (accuracy by
    default, macro precision/recall/F1). The embedded data is MNIST-1D
    (:mod:`rlnas.data.signals`), generated offline.

    Args:
        reward_metric: ``accuracy`` (default), ``precision``, ``recall`` or ``f1``.
        data: Arguments of :func:`rlnas.data.signals.load_signals` (``layout`` stays ``image``).
        dropout: Dropout before the classifier.
        label_smoothing: Label smoothing of the cross-entropy loss.
    """

    name = "mnist1d"
    spaces = ("MacroSpace",)
    dims = 1
    data_loader = staticmethod(load_signals)

    def load_data(self, seed: int) -> DataSplits:
        layout = self.data_kwargs.get("layout", "image")
        if layout != "image":  # as sequences the signals would reach the conv space with the wrong rank
            raise ValueError(
                f"task.data.layout={layout!r} does not fit the {self.name} task: its 1-D conv space reads each "
                "signal as a (1, 1, L) image (layout: image); the recurrent and attention spaces read the signals "
                "as sequences through +task=sequence task.data.name=mnist1d"
            )
        return super().load_data(seed)

    def augment(self, x: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Random shifts along the signal by up to 1/8 of its length (replicated ends), as images are shifted."""
        B, _, _, L = x.shape
        pad = max(1, round(L / 8))
        padded = F.pad(x, (pad, pad, 0, 0), mode="replicate")  # (B, C, 1, L + 2 pad)
        offset = torch.randint(0, 2 * pad + 1, (B, 1), device=x.device, generator=generator)
        cols = torch.arange(L, device=x.device) + offset  # (B, L)
        index = cols[:, None, None, :].expand(B, x.shape[1], 1, L)
        return padded.gather(3, index), targets
