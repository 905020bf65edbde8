"""Device-resident datasets: whole splits live as tensors on the accelerator.

Batches are drawn by random index on the device (no DataLoader workers, no
host round trip), which is what makes thousands of tiny supernet steps cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rlnas.utils import memory_budget, memory_bytes

log = logging.getLogger(__name__)


class DataError(ValueError):
    """A dataset could not be loaded; the message names the file or path."""


@dataclass
class Split:
    """Inputs and targets of one split, both on the same device.

    Attributes:
        x: Inputs, (N, C, H, W) for images.
        y: Targets, (N,) class indices for classification, or a padded
            per-sample tensor for tasks with structured targets.
    """

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise DataError(f"split has {len(self.x)} inputs but {len(self.y)} targets")

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))

    def batch(
        self,
        batch_size: int,
        generator: torch.Generator,
        rank: int = 0,
        world: int = 1,
        transform: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """A random batch without repeated samples, indexed on the split's device.

        With ``world`` ranks, one global batch of ``world * batch_size`` samples
        is drawn (every rank's ``generator`` is seeded alike) and rank ``rank``
        takes its equal share of it. ``transform`` (a random augmentation)
        applies to the global batch before it is shared out, so every rank
        draws the same random numbers and the shares are those of one process.
        """
        idx = torch.randperm(len(self), device=self.x.device, generator=generator)[: batch_size * world]
        per = len(idx) // world
        if transform is None:
            if world > 1:
                idx = idx[rank * per : (rank + 1) * per]
            return self.x[idx], self.y[idx]
        x, y = transform(self.x[idx], self.y[idx])
        if world > 1:
            x, y = x[rank * per : (rank + 1) * per], y[rank * per : (rank + 1) * per]
        return x, y

    def shard(self, rank: int, world: int) -> Split:
        """Rank ``rank``'s contiguous share of the split (sizes differ by at most one)."""
        if world == 1:
            return self
        n = len(self)
        start, end = rank * n // world, (rank + 1) * n // world
        return Split(self.x[start:end], self.y[start:end])

    def chunks(self, batch_size: int):
        """Iterates over the split in order, ``batch_size`` samples at a time."""
        for start in range(0, len(self), batch_size):
            yield self.x[start : start + batch_size], self.y[start : start + batch_size]


@dataclass
class DataSplits:
    """Train/validation/test splits plus what a head needs to know."""

    train: Split
    val: Split
    test: Split
    in_channels: int
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    #: Per-channel statistics the raw [0, 1] inputs were normalised with (the
    #: training split's); exported models apply them so they take raw images.
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    def to(self, device: torch.device | str) -> DataSplits:
        return DataSplits(
            self.train.to(device),
            self.val.to(device),
            self.test.to(device),
            self.in_channels,
            self.num_classes,
            self.class_names,
            self.mean,
            self.std,
        )


def npz_header(loaded: np.lib.npyio.NpzFile, key: str, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npz`` member declares, read from its header without reading its data."""
    try:
        with loaded.zip.open(f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(member)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path}: array {key!r} is not a readable NumPy array ({err})") from None
    return tuple(shape), np.dtype(dtype)


def check_fits(nbytes: float, what: str, keys: str) -> None:
    """Refuses to allocate ``nbytes`` when it would take more than a quarter of the machine's memory.

    Raises:
        DataError: Naming ``keys`` (the settings that set the size) and both sizes.
    """
    if nbytes > memory_budget():
        raise DataError(
            f"{keys}: {what} would take {nbytes / 2**30:,.1f} GiB, more than a quarter of this machine's "
            f"{memory_bytes() / 2**30:,.0f} GiB; choose smaller values"
        )


#: Fewest training / validation samples a search can rank architectures with.
MIN_TRAIN, MIN_VAL = 2, 1


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Fixed random train/val/test index split derived from ``seed``.

    Raises:
        DataError: If the fractions leave no training samples.
    """
    if not (0 < val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"task.data.val_fraction={val_fraction} and task.data.test_fraction={test_fraction} "
            "must be in (0, 1) and leave room for training data"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = max(1, round(n * val_fraction)), round(n * test_fraction)
    if n - n_val - n_test < 1:
        raise DataError(
            f"dataset of {n} samples is too small to split (task.data.val_fraction={val_fraction}, "
            f"task.data.test_fraction={test_fraction} leave no training sample)"
        )
    return perm[n_val + n_test :], perm[:n_val], perm[n_val : n_val + n_test]


def require_test_split(data: DataSplits, what: str) -> None:
    """Refuses ``what`` (a standalone test of a network) when the data holds no test split.

    Raises:
        DataError: Naming ``task.data.test_fraction``, the setting that leaves it empty.
    """
    if len(data.test) == 0:
        raise DataError(
            f"{what} is measured on the test split, and the search's data has none (task.data.test_fraction=0, "
            "or too few samples); search with a test_fraction > 0"
        )


_warned_batches: set[tuple[str, int, int]] = set()


def warn_batch_beyond_split(setting: str, batch_size: int, split_size: int) -> None:
    """Warns (once per setting and sizes) when a training batch asks for more samples than the split holds.

    Such a batch is the whole split: an epoch of standalone training is then one step, and a short
    training learns next to nothing (20 epochs, 20 steps), which a result alone does not tell.

    Args:
        setting: What sets the batch, as the message names it (``search.batch_size``).
        batch_size: Samples per step asked for.
        split_size: Samples in the training split.
    """
    key = (setting, int(batch_size), int(split_size))
    if batch_size > split_size and key not in _warned_batches:
        _warned_batches.add(key)
        log.warning(
            "%s (%d) is larger than the training split (%d samples): every step trains on all of them; "
            "choose a batch of at most %d",
            setting,
            batch_size,
            split_size,
            split_size,
        )


def normalised_splits(
    x: Tensor,
    y: Tensor,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    channel_dim: int,
    class_names: list[str] | None = None,
    limit: int | None = None,
) -> DataSplits:
    """Fixed splits of class-labelled samples, each channel normalised with training statistics only.

    Args:
        x: Inputs, (N, C, H, W) images or (N, steps, features) sequences.
        y: Class indices (N,).
        val_fraction: Share of samples in the validation split.
        test_fraction: Share of samples in the held-out test split.
        seed: Seed of the fixed split (and of the ``limit`` subset).
        channel_dim: The dim of ``x`` that holds channels (1 for images, 2 for sequences).
        class_names: Names of the classes; their indices by default.
        limit: Keep only the first ``limit`` samples (after shuffling).
    """
    if limit is not None and int(limit) < 1:  # a negative slice would silently drop samples instead
        raise DataError(f"task.data.limit must be >= 1 or null, got {limit}")
    # The classes are the dataset's: a limit that leaves some out still gives the model an output for each.
    num_classes = int(y.max()) + 1 if len(y) else 0
    labelled = set(y.tolist())
    limited = bool(limit) and int(limit) < len(x)
    if limited:
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[: int(limit)]
        x, y = x[keep], y[keep]
    classes = int(torch.unique(y).numel())
    if classes < 2:
        cause = f"task.data.limit={limit} keeps" if limited else "the dataset has"
        raise DataError(f"{cause} {classes} class; classification needs at least 2 (check task.data.*)")
    try:
        train_idx, val_idx, test_idx = split_indices(len(x), val_fraction, test_fraction, seed)
    except DataError as err:
        if not limited:
            raise
        raise DataError(f"task.data.limit={limit}: {err}; raise the limit") from None
    if len(train_idx) < MIN_TRAIN or len(val_idx) < MIN_VAL:
        raise DataError(
            f"{len(x)} samples leave {len(train_idx)} for training and {len(val_idx)} for validation; a search "
            f"needs at least {MIN_TRAIN} and {MIN_VAL} (more data, or a larger task.data.limit)"
        )
    names = class_names or [str(i) for i in range(num_classes)]
    absent = sorted(set(range(num_classes)) - labelled)
    if absent:  # labels numbered from 1, or with gaps: outputs no sample ever trains
        shown = ", ".join(names[c] for c in absent[:5]) + (", ..." if len(absent) > 5 else "")
        log.warning(
            "labels run from 0 to %d but %d of those classes have no sample (%s): the model gets %d outputs, "
            "%d never used; number the classes 0..K-1 without gaps",
            num_classes - 1,
            len(absent),
            shown,
            num_classes,
            len(absent),
        )
    kept = set(y.tolist())
    left_out = sorted(labelled - kept)
    if left_out:  # the limit's cause, not the labels': the advice is the limit's
        shown = ", ".join(names[c] for c in left_out[:5]) + (", ..." if len(left_out) > 5 else "")
        log.warning(
            "task.data.limit=%s keeps samples of %d of the dataset's %d classes (left out: %s): the model "
            "never sees the others; raise task.data.limit",
            limit,
            classes,
            len(labelled),
            shown,
        )
    untrained = sorted(kept - set(y[train_idx].tolist()))
    if untrained:  # scored, never learnt: every model misses them, whatever its architecture
        shown = ", ".join(names[c] for c in untrained[:5]) + (", ..." if len(untrained) > 5 else "")
        log.warning(
            "%d of %d classes have no sample in the training split (%s): they are scored but never learnt; "
            "give each class more samples" + (" (a larger task.data.limit)" if limited else ""),
            len(untrained),
            classes,
            shown,
        )
    dims = tuple(d for d in range(x.dim()) if d != channel_dim)
    mean = x[train_idx].mean(dim=dims, keepdim=True)
    std = x[train_idx].std(dim=dims, keepdim=True).clamp_min(1e-6)
    x = (x - mean) / std
    return DataSplits(
        train=Split(x[train_idx], y[train_idx]),
        val=Split(x[val_idx], y[val_idx]),
        test=Split(x[test_idx], y[test_idx]),
        in_channels=x.shape[channel_dim],
        num_classes=num_classes,
        class_names=names,
        mean=mean.flatten().tolist(),
        std=std.flatten().tolist(),
    )
