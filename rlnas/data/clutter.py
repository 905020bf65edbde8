"""Cluttered digits: scikit-learn's digits scaled, rotated and moved on a larger noisy canvas.

The bundled 8x8 digits are saturated: random architectures of the default
space all reach about 0.99 test accuracy. Placing each digit at a random
scale, rotation and position on a larger canvas among fragments of other
digits, with noise, makes the task reward what an architecture adds: a
receptive field that covers the digit wherever it is, pooling that is
invariant to where it is, and enough capacity to tell a digit from clutter.
It follows cluttered MNIST (Mnih et al., "Recurrent models of visual
attention", NeurIPS 2014: a digit placed at random on a larger canvas among
fragments of other digits), with random scale, rotation and noise added, on
data that ships with scikit-learn.

Everything is generated offline and deterministically from ``seed``. Each
source digit belongs to one split only (train, validation or test, by the
same fractions as the samples), so a transformed copy of a test digit is
never trained on.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rlnas.data.base import DataError, split_indices
from rlnas.data.digits import digits_images
from rlnas.utils import is_number

#: Generator settings a config may change, with their defaults.
CLUTTER_DEFAULTS: dict[str, Any] = {
    "scale": [0.35, 0.6],  # digit side as a fraction of the canvas side
    "rotation": 20.0,  # degrees, either way
    "fragments": 4,  # 4x4 crops of other digits strewn on the canvas
    "noise": 0.15,  # standard deviation of the white noise added to [0, 1] pixels
}
#: More samples than this would take minutes to generate and gigabytes to hold.
MAX_SAMPLES = 200_000
MAX_CANVAS = 128


def _settings(generator: dict[str, Any] | None) -> dict[str, Any]:
    settings = dict(CLUTTER_DEFAULTS)
    for key, value in (generator or {}).items():
        if key not in CLUTTER_DEFAULTS:
            raise DataError(f"task.data.generator.{key} is not a setting; allowed: {list(CLUTTER_DEFAULTS)}")
        settings[key] = value
    scale = settings["scale"]
    if not (isinstance(scale, (list, tuple)) and len(scale) == 2 and all(is_number(v) for v in scale)):
        raise DataError(f"task.data.generator.scale={scale!r} must be two numbers [low, high]")
    for key in ("rotation", "noise", "fragments"):
        if not (is_number(settings[key]) and math.isfinite(settings[key])):
            raise DataError(f"task.data.generator.{key}={settings[key]!r} must be a finite number")
    lo, hi = (float(v) for v in scale)
    rotation, noise, fragments = float(settings["rotation"]), float(settings["noise"]), int(settings["fragments"])
    if float(settings["fragments"]) != fragments:  # 2.5 is not 2
        raise DataError(f"task.data.generator.fragments={settings['fragments']!r} must be a whole number")
    if not 0 < lo <= hi <= 1:
        raise DataError(f"task.data.generator.scale={[lo, hi]} must satisfy 0 < low <= high <= 1")
    for key, value, high in (("rotation", rotation, 180), ("noise", noise, 10), ("fragments", fragments, 64)):
        if not 0 <= value <= high:
            raise DataError(f"task.data.generator.{key}={value:g} must be in 0..{high}")
    return {"scale": (lo, hi), "rotation": rotation, "fragments": fragments, "noise": noise}


def _source_per_sample(
    n: int, sources: int, val_fraction: float, test_fraction: float, seed: int, g: torch.Generator
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The source digit of each sample, drawn only from the sources of the sample's own split; the splits."""
    sample_parts = split_indices(n, val_fraction, test_fraction, seed)
    source_parts = split_indices(sources, val_fraction, test_fraction, seed + 1)
    source = torch.empty(n, dtype=torch.int64)
    for samples, pool in zip(sample_parts, source_parts):
        if len(samples) and not len(pool):
            raise DataError(f"{sources} source digits are too few to give every split its own")
        source[samples] = pool[torch.randint(len(pool), (len(samples),), generator=g)]
    return source, sample_parts


def cluttered_digits(
    num_samples: int = 6000,
    canvas: int = 24,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    generator: dict[str, Any] | None = None,
) -> tuple[Tensor, Tensor]:
    """Cluttered digit images (N, 1, canvas, canvas) in [0, 1] and labels (N,).

    Args:
        num_samples: Images to generate.
        canvas: Side of the square canvas in pixels.
        seed: Seed of everything drawn (the split of source digits included).
        val_fraction: Validation share: samples at the indices
            :func:`rlnas.data.base.split_indices` gives to validation for this
            ``seed`` are drawn from validation source digits only.
        test_fraction: The same for the test split.
        generator: Settings (:data:`CLUTTER_DEFAULTS`), the defaults otherwise.

    Raises:
        DataError: Naming the key, for an unknown setting or a value out of range.
    """
    if not 10 <= int(num_samples) <= MAX_SAMPLES:
        raise DataError(f"task.data.num_samples must be in 10..{MAX_SAMPLES:,}, got {num_samples}")
    if not 8 <= int(canvas) <= MAX_CANVAS:
        raise DataError(f"task.data.image_size (the canvas) must be in 8..{MAX_CANVAS}, got {canvas}")
    n, side, s = int(num_samples), int(canvas), _settings(generator)
    digits, labels = digits_images()  # (1797, 1, 8, 8)
    g = torch.Generator().manual_seed(int(seed))
    source, parts = _source_per_sample(n, len(digits), val_fraction, test_fraction, int(seed), g)

    # One affine map per sample from canvas coordinates to the digit's, in
    # grid_sample's [-1, 1] units: a digit of side `scale` (canvas fractions)
    # rotated by `angle`, centred anywhere it stays on the canvas.
    lo, hi = s["scale"]
    scale = lo + (hi - lo) * torch.rand(n, generator=g)
    angle = math.radians(s["rotation"]) * (2 * torch.rand(n, generator=g) - 1)
    room = 1 - scale  # the centre may move this far from the middle and keep the digit on the canvas
    centre = (2 * torch.rand(n, 2, generator=g) - 1) * room[:, None]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, sin, -(cos * centre[:, 0] + sin * centre[:, 1])], dim=1),
            torch.stack([-sin, cos, -(-sin * centre[:, 0] + cos * centre[:, 1])], dim=1),
        ],
        dim=1,
    )  # (n, 2, 3)
    grid = F.affine_grid(theta, [n, 1, side, side], align_corners=False)
    images = F.grid_sample(digits[source], grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Clutter: crops of other digits from the same split (a test image's
    # clutter never comes from a training digit), pasted at random places.
    crop = 4 * max(1, round(side * (lo + hi) / 2 / 8))  # a quarter of a typical digit's side
    for _ in range(s["fragments"]):
        other = source.clone()
        for part in parts:
            other[part] = source[part[torch.randperm(len(part), generator=g)]]
        oy, ox = torch.randint(0, 5, (2,), generator=g).tolist()
        patch = F.interpolate(
            digits[other][:, :, oy : oy + 4, ox : ox + 4], size=(crop, crop), mode="bilinear", align_corners=False
        )
        py = torch.randint(0, side - crop + 1, (n,), generator=g)
        px = torch.randint(0, side - crop + 1, (n,), generator=g)
        rows = (py[:, None] + torch.arange(crop))[:, :, None]  # (n, crop, 1)
        cols = (px[:, None] + torch.arange(crop))[:, None, :]  # (n, 1, crop)
        batch = torch.arange(n)[:, None, None]
        region = images[batch, 0, rows, cols]
        images[batch, 0, rows, cols] = torch.maximum(region, patch[:, 0])
    images = images + s["noise"] * torch.randn(images.shape, generator=g)
    return images.clamp(0, 1), labels[source]
