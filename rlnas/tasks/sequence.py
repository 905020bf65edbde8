"""Sequence classification: a searched recurrent or attention backbone reads (B, steps, features)."""

from __future__ import annotations

import torch
from torch import Tensor

from rlnas.data.sequences import load_sequences
from rlnas.tasks.classification import ClassificationTask


class SequenceClassificationTask(ClassificationTask):
    """Sequence classification on the embedded digits read row by row, or users' sequence files.

    Same loss and metrics as :class:`ClassificationTask` (accuracy by default,
    macro precision/recall/F1); the backbone is a searched recurrent cell
    (``space=rnn_cell``) or transformer-style encoder (``space=attention``)
    whose output, a (B, hidden) summary, feeds the same linear head.

    Args:
        reward_metric: ``accuracy`` (default), ``precision``, ``recall`` or ``f1``.
        data: Arguments of :func:`rlnas.data.sequences.load_sequences`.
        dropout: Dropout before the classifier.
        label_smoothing: Label smoothing of the cross-entropy loss.
    """

    name = "sequence"
    spaces = ("RNNCellSpace", "AttentionSpace")
    data_loader = staticmethod(load_sequences)

    def augment(self, x: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Sequences are used as they are (a shift in time changes their meaning)."""
        return x, targets
