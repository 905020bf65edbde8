"""MNIST-1D: 1-D signals generated offline, on which the architecture matters.

MNIST-1D (Greydanus & Steinbach, "Scaling down deep learning with MNIST-1D",
ICML 2024) draws each sample from one of ten 12-point templates, pads it,
shears, scales, translates it and adds correlated and white noise; 40 points
remain. Models differ there as on real data (published test accuracies:
logistic regression 32 %, MLP 68 %, GRU 91 %, CNN 94 %, human 96 %), so a
search has something to find. The PyPI package ``mnist1d`` (Apache-2.0)
generates the data from its bundled templates; nothing is downloaded (its
``get_dataset`` would download; it is never called).

The generator keeps its own settings (``generator:``, the package's argument
names); only the number of samples and the seed are ours, so the same
``data_seed`` always gives the same signals.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rlnas.data.base import DataError, DataSplits, normalised_splits
from rlnas.utils import is_whole

SIGNAL_DATASETS = ("mnist1d",)
#: Generator settings a config may change (the package's own names); the rest are fixed.
GENERATOR_KEYS = (
    "template_len",
    "padding",
    "scale_coeff",
    "max_translation",
    "corr_noise_scale",
    "iid_noise_scale",
    "shear_scale",
    "shuffle_seq",
    "final_seq_length",
)
#: More samples than this would take minutes to generate and gigabytes to hold.
MAX_SAMPLES = 1_000_000


#: A template stretched longer than this costs seconds per signal to generate (the package interpolates each).
MAX_TEMPLATE_LENGTH = 10_000
#: Bytes the generated signals (float32) may take.
MAX_SIGNAL_BYTES = 2 << 30


def _check_generator(generator: dict[str, Any], num_samples: int) -> None:
    """Refuses generator settings the package would accept but that mean nothing, or exhaust memory.

    The package takes a negative noise scale as a positive one, any truthy ``shuffle_seq`` as
    true, and builds a signal of length 0 without complaint; each is refused here by name.

    Raises:
        DataError: ``task.data.generator.KEY=VALUE`` and what it must be.
    """

    def refuse(key: str, what: str) -> DataError:
        return DataError(f"task.data.generator.{key}={generator[key]!r} must be {what}")

    for key in ("scale_coeff", "corr_noise_scale", "iid_noise_scale", "shear_scale"):
        value = generator.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise refuse(key, "a finite number >= 0")
    if not isinstance(generator.get("shuffle_seq", False), bool):
        raise refuse("shuffle_seq", "true or false")
    for key, least in (("template_len", 1), ("max_translation", 1), ("final_seq_length", 1)):
        if key in generator and not (is_whole(generator[key]) and generator[key] >= least):
            raise refuse(key, f"a whole number >= {least}")
    if "padding" in generator:
        padding = generator["padding"]
        if not (
            isinstance(padding, (list, tuple))
            and len(padding) == 2
            and all(is_whole(p) for p in padding)
            and 0 <= padding[0] <= padding[1]
        ):
            raise refuse("padding", "two whole numbers [low, high] with 0 <= low <= high")
    from mnist1d.data import get_dataset_args

    args = {**get_dataset_args(as_dict=True), **generator}
    stretched = int(args["template_len"]) + int(args["padding"][1])
    if stretched > MAX_TEMPLATE_LENGTH:
        raise DataError(
            f"task.data.generator: template_len + padding[1] = {stretched:,} points per signal before "
            f"subsampling; at most {MAX_TEMPLATE_LENGTH:,}"
        )
    if num_samples * int(args["final_seq_length"]) * 4 > MAX_SIGNAL_BYTES:
        raise DataError(
            f"task.data.generator.final_seq_length={args['final_seq_length']} and task.data.num_samples="
            f"{num_samples}: the signals would take {num_samples * int(args['final_seq_length']) * 4 / 2**30:.1f} "
            f"GiB; at most {MAX_SIGNAL_BYTES / 2**30:.0f}"
        )


def mnist1d_signals(
    num_samples: int = 10_000, seed: int = 0, generator: dict[str, Any] | None = None
) -> tuple[Tensor, Tensor]:
    """MNIST-1D signals (N, L) and labels (N,), generated offline, identical for one ``seed``.

    Args:
        num_samples: Signals to generate (rounded down to a multiple of 10, one share per class).
        seed: Seed of the generator.
        generator: Settings of the package's generator (:data:`GENERATOR_KEYS`); its defaults otherwise.

    Raises:
        DataError: Naming the key, for an unknown setting or a count out of range.
    """
    if not 10 <= int(num_samples) <= MAX_SAMPLES:
        raise DataError(f"task.data.num_samples must be in 10..{MAX_SAMPLES:,}, got {num_samples}")
    unknown = sorted(set(generator or {}) - set(GENERATOR_KEYS))
    if unknown:
        raise DataError(f"task.data.generator.{unknown[0]} is not a setting; allowed: {list(GENERATOR_KEYS)}")
    try:
        from mnist1d.data import get_dataset_args, get_templates
        from mnist1d.transform import transform
    except ImportError:
        raise DataError("task.data.name=mnist1d needs the mnist1d package: pip install mnist1d") from None
    _check_generator(dict(generator or {}), int(num_samples))
    args = get_dataset_args()
    for key, value in (generator or {}).items():
        setattr(args, key, list(value) if isinstance(value, (list, tuple)) else value)
    templates = get_templates()
    # The package draws from the global NumPy and Python generators; they are set for the
    # draw and given back afterwards, so generating data changes no other randomness.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        np.random.seed(int(seed))
        random.seed(int(seed))
        per_class = int(num_samples) // len(templates["y"])
        xs, ys = [], []
        for label in range(len(templates["y"])):
            for _ in range(per_class):
                x, _ = transform(templates["x"][label], templates["t"], args)
                xs.append(x)
                ys.append(label)
        order = np.random.permutation(len(ys))
        x = np.stack(xs)[order].astype(np.float32)
        if args.shuffle_seq:  # the package's control: the same permutation of the positions for every signal
            x = x[:, np.random.permutation(x.shape[1])]
    except (TypeError, ValueError) as err:
        raise DataError(f"task.data.generator: the MNIST-1D generator refused these settings ({err})") from None
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    if not np.isfinite(x).all():
        raise DataError("task.data.generator: the settings produced NaN or inf signals")
    return torch.from_numpy(x), torch.as_tensor(np.asarray(ys)[order], dtype=torch.int64)


def load_signals(
    name: str = "mnist1d",
    num_samples: int = 10_000,
    generator: dict[str, Any] | None = None,
    layout: str = "image",
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    limit: int | None = None,
    seed: int = 0,
) -> DataSplits:
    """MNIST-1D as normalised CPU tensors, for a 1-D convolutional space or a sequence space.

    Args:
        name: ``mnist1d``.
        num_samples: Signals generated in all (before the splits).
        generator: Settings of the MNIST-1D generator (see :func:`mnist1d_signals`).
        layout: ``image``: (N, 1, 1, L), for the 1-D macro space (``space=conv1d``);
            ``sequence``: (N, L, 1), one value per step, for the recurrent and attention spaces.
        val_fraction: Share of samples in the validation split.
        test_fraction: Share of samples in the held-out test split.
        limit: Keep only the first ``limit`` samples (after shuffling), for quick runs.
        seed: Seed of the signals and of the fixed split.

    Raises:
        DataError: Naming the key.
    """
    if name not in SIGNAL_DATASETS:
        raise DataError(f"task.data.name={name!r} is unknown; allowed: {list(SIGNAL_DATASETS)}")
    if layout not in ("image", "sequence"):
        raise DataError(f"task.data.layout={layout!r} is unknown; allowed: ['image', 'sequence']")
    x, y = mnist1d_signals(num_samples, seed, generator)
    if layout == "image":
        return normalised_splits(x[:, None, None, :], y, val_fraction, test_fraction, seed, channel_dim=1, limit=limit)
    return normalised_splits(x[:, :, None], y, val_fraction, test_fraction, seed, channel_dim=2, limit=limit)
