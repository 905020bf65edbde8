"""scikit-learn's bundled handwritten digits, the source of every embedded image dataset."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def digits_images() -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled handwritten digits: 1,797 images of 8x8, values 0..1."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8)
    return x, torch.from_numpy(digits.target.astype(np.int64))
