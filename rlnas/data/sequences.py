"""Sequence classification data: the embedded digits read row by row, or users' CSV / NumPy files.

The digits as sequences (8 steps of 8 features, one image row per step) are
the small-scale analogue of sequential MNIST (Le et al., 2015, read pixel by
pixel; here row by row, as in Cooijmans et al., 2017's row-wise variant).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rlnas.data.base import DataError, DataSplits, check_fits, normalised_splits, npz_header
from rlnas.utils import csv_number, csv_separator, is_numeric_text

SEQUENCE_DATASETS = ("digits", "file", "mnist1d")
#: Most classes a sequence file may label (a larger index is a broken file, and its head would not fit).
MAX_CLASSES = 10_000
#: Largest magnitude a sequence value may have: float32 sums of squares of larger ones overflow.
MAX_ABS_VALUE = 1e15


def digits_sequences() -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled digits as (N, 8 steps, 8 features) in [0, 1], and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return torch.from_numpy(digits.images.astype(np.float32) / 16.0), torch.from_numpy(digits.target.astype(np.int64))


def _read_numpy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable NumPy file ({err})") from None
    if not hasattr(loaded, "files"):
        raise DataError(f"{path}: a .npy holds one array; save sequences and labels with np.savez(path, x=..., y=...)")
    missing = [k for k in ("x", "y") if k not in loaded.files]
    if missing:
        raise DataError(f"{path}: needs arrays 'x' (N, steps, features) and 'y' (N,); missing {missing}")
    for key in ("x", "y"):  # a compressed array's header declares its size: checked before it is inflated
        shape, dtype = npz_header(loaded, key, path)
        check_fits(float(np.prod(shape, dtype=float)) * dtype.itemsize, f"array {key!r} {shape}", str(path))
    return np.asarray(loaded["x"]), np.asarray(loaded["y"])


def _read_csv(path: Path, features: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``label,v1,v2,...``: ``steps * features`` values each, step after step."""
    try:
        return _read_csv_rows(path, features)
    except UnicodeDecodeError as err:  # a legacy encoding (latin-1, cp1252) in a label or value
        raise DataError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#x} at offset {err.start})") from None


def _read_csv_rows(path: Path, features: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_read_csv`'s work, each malformed row named."""
    rows, labels, width = [], [], None
    # utf-8-sig: a byte-order mark (spreadsheets' "CSV UTF-8") would hide the first label; the separator
    # may be a semicolon or a tab (locales with a decimal comma).
    with path.open(newline="", encoding="utf-8-sig") as f:
        first = next((line for line in f if line.strip()), "")
        f.seek(0)
        separator = csv_separator(first) or ","
        for line_no, row in enumerate(csv.reader(f, delimiter=separator), start=1):
            if not row or (line_no == 1 and not is_numeric_text(row[0])):
                continue  # blank line or header
            try:
                label, values = _label(row[0]), [csv_number(v, separator) for v in row[1:]]
            except ValueError:
                raise DataError(
                    f"{path}: line {line_no}: expected an integer label then numbers, got {row[:4]}..."
                ) from None
            if width is None:
                width = len(values)
                if width == 0 or width % features:
                    raise DataError(
                        f"{path}: line {line_no}: {width} values is not a multiple of task.data.features={features}"
                    )
            elif len(values) != width:
                raise DataError(
                    f"{path}: line {line_no}: {len(values)} values, the first row has {width} "
                    "(all sequences need the same length)"
                )
            rows.append(values)
            labels.append(label)
    if not rows:
        raise DataError(f"{path}: no sequences (rows of label,v1,v2,...)")
    x = np.asarray(rows, dtype=np.float32)
    return x.reshape(len(rows), -1, features), np.asarray(labels)


def _label(text: str) -> int:
    """A class index: ``3``, or ``3.0`` as tables with a float label column write it."""
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


def read_sequence_file(path: str | Path, features: int = 1) -> tuple[Tensor, Tensor]:
    """Sequences (N, steps, features) and labels (N,) from a ``.npz`` or ``.csv`` file.

    Raises:
        DataError: Naming the file (and line) when it is missing, unreadable,
            ragged, empty or its labels are not class indices.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: sequence file not found (task.data.path: a .npz with x, y or a .csv of label,values)")
    if path.suffix.lower() == ".npz":
        x, y = _read_numpy(path)
    elif path.suffix.lower() == ".csv":
        x, y = _read_csv(path, int(features))
    else:
        raise DataError(f"{path}: unknown sequence file type {path.suffix!r}; allowed: .npz, .csv")
    if x.ndim == 2:
        x = x[:, :, None]  # univariate
    if x.ndim != 3 or len(x) == 0:
        raise DataError(f"{path}: x must be (N, steps, features) with N > 0, got shape {tuple(x.shape)}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: {len(x)} sequences but labels of shape {tuple(y.shape)}")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(f"{path}: x has {x.shape[1]} steps of {x.shape[2]} features; a sequence needs at least one")
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):  # class names: min() has no meaning
        example = y.flat[0].item()
        raise DataError(f"{path}: labels must be class indices 0..K-1, got {y.dtype} values such as {example!r}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise DataError(f"{path}: labels must be class indices 0..K-1, got dtype {y.dtype}, min {y.min()}")
    if y.max() >= MAX_CLASSES:  # a head of that many outputs would not fit in memory
        raise DataError(
            f"{path}: label {y.max()} is out of range; labels are class indices 0..K-1, K <= {MAX_CLASSES:,}"
        )
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{path}: x must hold real numbers, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise DataError(f"{path}: sequences hold NaN or inf values")
    if np.abs(x).max() > MAX_ABS_VALUE:  # float32 statistics of such values overflow: no step could train
        raise DataError(
            f"{path}: values up to {np.abs(x).max():.3g}; scale the sequences to |x| <= {MAX_ABS_VALUE:.0e} "
            "(they are normalised per feature after loading)"
        )
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def load_sequences(
    name: str = "digits",
    path: str | None = None,
    features: int = 1,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    limit: int | None = None,
    seed: int = 0,
    num_samples: int | None = None,
    generator: dict | None = None,
) -> DataSplits:
    """Loads a sequence classification dataset as normalised CPU tensors (N, steps, features).

    Args:
        name: ``digits`` (embedded, 8 steps x 8 features), ``mnist1d`` (embedded,
            40 steps x 1 feature; :mod:`rlnas.data.signals`) or ``file`` (``path``).
        path: A ``.npz`` with ``x`` (N, steps, features) and ``y`` (N,), or a
            ``.csv`` whose rows are ``label,v1,v2,...`` (steps x features values).
        features: Features per step of a CSV file's rows.
        val_fraction: Share of samples in the validation split.
        test_fraction: Share of samples in the held-out test split.
        limit: Keep only the first ``limit`` samples (after shuffling), for quick runs.
        seed: Seed of the fixed split (and of the MNIST-1D signals).
        num_samples: MNIST-1D signals generated in all (``None``: 4,000); only ``mnist1d`` reads it.
        generator: Settings of the MNIST-1D generator (:func:`rlnas.data.signals.mnist1d_signals`).

    Raises:
        DataError: Naming the key or the file.
    """
    if name not in SEQUENCE_DATASETS:
        raise DataError(f"task.data.name={name!r} is unknown; allowed: {list(SEQUENCE_DATASETS)}")
    if isinstance(features, bool) or not isinstance(features, int) or features < 1:
        raise DataError(f"task.data.features must be a whole number >= 1 (values per step), got {features!r}")
    if path and name != "file":  # the user's file would be ignored, silently
        raise DataError(
            f"task.data.path={path} is read when task.data.name=file; task.data.name={name} needs no files "
            "(set task.data.name=file to search on your sequences)"
        )
    csv_file = name == "file" and bool(path) and Path(str(path)).suffix.lower() == ".csv"
    if features != 1 and not csv_file:  # the digits and .npz files carry their own shape: it was ignored, silently
        given = f"the {name} sequences" if name != "file" else f"{path} (an .npz: x gives the shape)"
        raise DataError(f"task.data.features={features} splits a .csv file's rows into steps; {given} have their own")
    if generator and name != "mnist1d":
        raise DataError(f"task.data.generator applies to task.data.name=mnist1d, not {name!r}")
    # The digits and files hold their own samples: a count was ignored, silently. 4000 stays accepted:
    # the config's former default, in every earlier +task=sequence run's config.yaml (resume, retrain).
    if num_samples not in (None, 4_000) and name != "mnist1d":
        raise DataError(
            f"task.data.num_samples applies to task.data.name=mnist1d (signals generated), not {name!r}; "
            "task.data.limit keeps fewer samples"
        )
    if name == "mnist1d":
        from rlnas.data.signals import load_signals

        count = 4_000 if num_samples is None else num_samples
        return load_signals(name, count, generator, "sequence", val_fraction, test_fraction, limit, seed)
    if name == "digits":
        x, y = digits_sequences()
    elif not path:
        raise DataError("task.data.path must name a .npz or .csv file of sequences when task.data.name=file")
    else:
        x, y = read_sequence_file(path, features)
    return normalised_splits(x, y, val_fraction, test_fraction, seed, channel_dim=2, limit=limit)
