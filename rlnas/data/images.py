"""Image classification datasets as device-ready tensors.

``digits`` is embedded (scikit-learn ships it, no download), and so is
``cluttered_digits``, generated from it (:mod:`rlnas.data.clutter`). ``cifar10``,
``mnist`` and ``imagefolder`` read users' files from ``root`` and never
download anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from rlnas.data.base import DataError, DataSplits, check_fits, normalised_splits
from rlnas.data.digits import digits_images

DATASETS = ("digits", "cluttered_digits", "cifar10", "mnist", "imagefolder")


def _torchvision_images(name: str, root: str | None) -> tuple[Tensor, Tensor, list[str]]:
    import torchvision

    if not root:
        raise DataError(f"task.data.root must point at the {name} files (no download is attempted)")
    cls = {"cifar10": torchvision.datasets.CIFAR10, "mnist": torchvision.datasets.MNIST}[name]
    hint = {
        "cifar10": "the extracted 'cifar-10-batches-py' folder from https://www.cs.toronto.edu/~kriz/cifar.html",
        "mnist": "'MNIST/raw' with the four idx files from http://yann.lecun.com/exdb/mnist/",
    }[name]
    xs, ys = [], []
    for train in (True, False):
        try:
            ds = cls(root=root, train=train, download=False)
        except RuntimeError as err:
            raise DataError(f"{name} not found under {root}: put {hint} there ({err})") from None
        data = ds.data if isinstance(ds.data, np.ndarray) else ds.data.numpy()
        x = torch.from_numpy(np.ascontiguousarray(data)).float() / 255.0
        x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x.unsqueeze(1)  # (N, C, H, W)
        xs.append(x)
        ys.append(torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64))
    return torch.cat(xs), torch.cat(ys), list(getattr(ds, "classes", []))


#: PIL modes of more than 8 bits per sample, and the value that stands for white in each.
_WIDE_MODES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": 1.0}


def upright(img: Any) -> Any:
    """``img`` (a PIL image) turned as its EXIF orientation tag says, as image viewers show it.

    Cameras and phones store pixels as the sensor read them and record the
    rotation in the tag; without it a portrait photo is learnt, or predicted,
    lying on its side. An image without the tag is returned as it is.
    """
    from PIL import ImageOps

    if img.getexif().get(0x0112, 1) == 1:  # the Orientation tag: absent or "as stored" (PIL would copy)
        return img
    return ImageOps.exif_transpose(img)


def eight_bit(img: Any, mode: str) -> Any:
    """``img`` (a PIL image) in ``mode`` ("L" or "RGB"), its full range mapped onto 0..255.

    PIL's own ``convert`` clips 16-bit and 32-bit samples to 255, so a 16-bit
    PNG (scientific and medical images often are) would turn almost white.
    Here 16-bit samples (and ``I``, which PIL opens 16-bit PNGs as) are scaled
    by 65535 and float samples (``F``) are taken as 0..1.
    """
    white = _WIDE_MODES.get(img.mode)
    if white is not None:
        from PIL import Image

        values = np.asarray(img, dtype=np.float64) / white * 255.0
        img = Image.fromarray(np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8), "L")
    return img.convert(mode)


def _imagefolder_images(root: str | None, image_size: int) -> tuple[Tensor, Tensor, list[str]]:
    import torchvision
    from torchvision.transforms import functional as TF

    if not root or not Path(root).is_dir():
        raise DataError(
            f"task.data.root={root!r} is not a directory: ImageFolder expects ROOT/<class_name>/<image files>"
        )
    from PIL import Image

    def loader(path: str) -> Any:  # the file's own mode: torchvision's loader clips 16-bit samples to white
        with Image.open(path) as img:
            img.load()
            return upright(img)

    from torchvision.datasets.folder import IMG_EXTENSIONS

    def visible(path: str) -> bool:
        # Hidden files and folders (macOS's "._x.png" resource forks, ".thumbnails/") are not samples.
        parts = Path(os.path.relpath(path, root)).parts
        return path.lower().endswith(IMG_EXTENSIONS) and not any(p.startswith(".") for p in parts)

    class Folder(torchvision.datasets.ImageFolder):
        def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
            # A hidden folder (".ipynb_checkpoints") is not a class.
            classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
            if not classes:
                raise FileNotFoundError(f"Couldn't find any class folder in {directory}.")
            return classes, {name: i for i, name in enumerate(classes)}

    try:
        ds = Folder(root, loader=loader, is_valid_file=visible)
    except (RuntimeError, OSError) as err:  # FileNotFoundError among them: no class folder
        hint = f"Images: {', '.join(IMG_EXTENSIONS)}" if "no valid file" in str(err) else ""
        raise DataError(f"{root}: {str(err).strip()} {hint}".rstrip()) from None
    # Folders are followed through symlinks: a file reached twice would sit in two splits (or two classes).
    first: dict[str, str] = {}
    for path, _ in ds.samples:
        real = os.path.realpath(path)
        if real in first:
            raise DataError(
                f"{path} and {first[real]} are one file (through a symlink): each image must appear once "
                "under task.data.root"
            )
        first[real] = path
    # Each image is resized as it is read: the stacked float tensor (and its normalised copy) is the cost.
    check_fits(
        len(ds.samples) * 3 * 4 * 2 * float(image_size) ** 2, f"{len(ds.samples):,} images", "task.data.image_size"
    )
    xs = []
    for path, _ in ds.samples:
        try:
            img = ds.loader(path)
        except Exception as err:  # PIL raises many types for broken files
            raise DataError(f"{path}: unreadable image ({type(err).__name__}: {err})") from None
        xs.append(TF.to_tensor(TF.resize(eight_bit(img, "RGB"), [image_size, image_size], antialias=True)))
    return torch.stack(xs), torch.tensor(ds.targets, dtype=torch.int64), list(ds.classes)


def load_image_classification(
    name: str = "digits",
    root: str | None = None,
    image_size: int = 8,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    limit: int | None = None,
    seed: int = 0,
    num_samples: int | None = None,
    generator: dict | None = None,
) -> DataSplits:
    """Loads an image classification dataset as normalised CPU tensors.

    Args:
        name: One of ``digits`` and ``cluttered_digits`` (embedded), ``cifar10``,
            ``mnist``, ``imagefolder``.
        root: Folder with the files for the non-embedded datasets.
        image_size: Side of the square images fed to the network (the
            canvas of ``cluttered_digits``).
        val_fraction: Share of samples in the validation split.
        test_fraction: Share of samples in the held-out test split.
        limit: Keep only the first ``limit`` samples (after shuffling), for quick runs.
        seed: Seed of the fixed split (and of the generated ``cluttered_digits``).
        num_samples: Images of ``cluttered_digits`` to generate (6,000 by default).
        generator: Settings of ``cluttered_digits``
            (:data:`rlnas.data.clutter.CLUTTER_DEFAULTS`).

    Raises:
        DataError: With the path and what to put there, when files are missing.
    """
    if name not in DATASETS:
        raise DataError(f"task.data.name={name!r} is unknown; allowed: {list(DATASETS)}")
    if int(image_size) < 1:
        raise DataError(f"task.data.image_size must be >= 1, got {image_size}")
    if name == "digits":  # 1,797 images, resized before anything else is allocated
        check_fits(1797 * 4 * 2 * float(image_size) ** 2, "the resized digits", "task.data.image_size")
    if root and name in ("digits", "cluttered_digits"):  # the user's files would be ignored, silently
        raise DataError(
            f"task.data.root={root} is read for imagefolder, cifar10 and mnist; task.data.name={name} needs no files "
            "(set task.data.name=imagefolder to search on your images)"
        )
    root = os.path.expanduser(root) if root else root
    if name != "cluttered_digits" and (num_samples is not None or generator):
        raise DataError(f"task.data.num_samples and task.data.generator apply to cluttered_digits, not {name!r}")
    class_names: list[str] = []
    if name == "cluttered_digits":
        from rlnas.data.clutter import cluttered_digits

        # The generator keeps every source digit in one split, so it is split
        # here as it was generated: `limit` generates fewer images instead of
        # subsetting (a subset would be split anew and mix the sources).
        count = 6000 if num_samples is None else int(num_samples)
        if limit is not None and int(limit) >= 1:
            if int(limit) < 10:  # the generator's own floor, named by the setting that asked for it
                raise DataError(f"task.data.limit={limit} is below the 10 images cluttered_digits generates at least")
            count = min(count, int(limit))
        x, y = cluttered_digits(count, image_size, seed, val_fraction, test_fraction, generator)
        return normalised_splits(
            x, y, val_fraction, test_fraction, seed, channel_dim=1, class_names=[str(i) for i in range(10)]
        )
    if name == "digits":
        x, y = digits_images()
        class_names = [str(i) for i in range(10)]
    elif name == "imagefolder":
        x, y, class_names = _imagefolder_images(root, image_size)
    else:
        x, y, class_names = _torchvision_images(name, root)
    if len(x) == 0:
        raise DataError(f"dataset {name!r} at {root} is empty")
    if x.shape[-1] != image_size or x.shape[-2] != image_size:
        # cifar10 at image_size=224 would be 36 GB of floats: the kernel's OOM kill, with no message.
        check_fits(
            len(x) * x.shape[1] * 4 * 2 * float(image_size) ** 2, f"{len(x):,} resized images", "task.data.image_size"
        )
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    return normalised_splits(
        x, y, val_fraction, test_fraction, seed, channel_dim=1, class_names=class_names, limit=limit
    )
