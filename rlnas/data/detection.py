"""Object-detection data: embedded digit canvases and a COCO-format loader.

Targets are padded per-image tensors ``(N, M, 5)`` holding
``[class, x1, y1, x2, y2]`` in pixels (``x2``/``y2`` exclusive), with class -1
for padding, so whole splits stay on the device like classification data.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from rlnas.data.base import DataError, DataSplits, Split, check_fits, split_indices
from rlnas.data.digits import digits_images
from rlnas.data.images import eight_bit, upright
from rlnas.utils import parse_json

log = logging.getLogger(__name__)
#: Boxes one image may hold: COCO's images hold up to 93, dense retail shelves several hundred; the
#: loss's location-to-box comparison grows with it (a batch of 32 at 1,000 boxes takes about 0.5 GiB).
MAX_BOXES = 1000


def _box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0)
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


def make_digit_canvases(
    num_images: int,
    canvas_size: int = 64,
    objects: tuple[int, int] = (1, 5),
    scales: tuple[int, int] = (10, 28),
    max_overlap: float = 0.2,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Pastes scikit-learn digits at random positions and scales on black canvases.

    Args:
        num_images: Number of canvases.
        canvas_size: Side of the square canvases in pixels.
        objects: Inclusive range of digits per canvas.
        scales: Inclusive range of the pasted digit's side in pixels.
        max_overlap: Largest IoU allowed between two digits' placements.
        seed: Seed; the same seed gives the same canvases.

    Returns:
        Images (N, 1, S, S) in [0, 1] and targets (N, objects[1], 5), class -1 = padding.
    """
    digits, labels = digits_images()  # (D, 1, 8, 8)
    rng = np.random.default_rng(seed)
    lo, hi = scales
    check_fits(
        float(num_images) * float(canvas_size) ** 2 * 4 * 2, "the digit canvases", "task.data.num_images, canvas_size"
    )
    if not (1 <= lo <= hi <= canvas_size):
        raise DataError(f"task.data.scales={list(scales)} must satisfy 1 <= min <= max <= canvas_size")
    fits = (canvas_size // lo) ** 2  # digits of the smallest side that tile the canvas
    if not (0 <= objects[0] <= objects[1] and 1 <= objects[1] <= fits):
        raise DataError(
            f"task.data.objects={list(objects)} must satisfy 0 <= min <= max, 1 <= max <= {fits} "
            f"(digits of side {lo} that fit on a {canvas_size}-pixel canvas)"
        )
    placements = []  # (image, digit index, scale, x, y)
    for i in range(num_images):
        placed: list[np.ndarray] = []
        for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
            for _attempt in range(30):
                s = int(rng.integers(lo, hi + 1))
                x, y = (int(v) for v in rng.integers(0, canvas_size - s + 1, size=2))
                box = np.array([x, y, x + s, y + s], dtype=np.float64)
                if not placed or _box_iou(box, np.stack(placed)).max() <= max_overlap:
                    placed.append(box)
                    placements.append((i, int(rng.integers(len(digits))), s, x, y))
                    break
    images = torch.zeros(num_images, 1, canvas_size, canvas_size)
    targets = torch.full((num_images, objects[1], 5), -1.0)
    counts = np.zeros(num_images, dtype=np.int64)
    table = np.array(placements, dtype=np.int64).reshape(-1, 5)
    for s in np.unique(table[:, 2]):
        rows = table[table[:, 2] == s]
        # One batched resize per scale: (n, 1, s, s).
        patches = F.interpolate(digits[rows[:, 1]], size=(int(s), int(s)), mode="bilinear", align_corners=False)
        ink = patches[:, 0] > 0.15  # (n, s, s) pixels that belong to the digit
        cols_any, rows_any = ink.any(dim=1), ink.any(dim=2)
        idx = torch.arange(int(s))
        x_lo = torch.where(cols_any, idx, s).min(dim=1).values
        x_hi = torch.where(cols_any, idx, -1).max(dim=1).values + 1
        y_lo = torch.where(rows_any, idx, s).min(dim=1).values
        y_hi = torch.where(rows_any, idx, -1).max(dim=1).values + 1
        for k, (i, d, _, x, y) in enumerate(rows.tolist()):
            region = images[i, 0, y : y + s, x : x + s]
            torch.maximum(region, patches[k, 0], out=region)
            targets[i, counts[i]] = torch.tensor(
                [float(labels[d]), x + x_lo[k], y + y_lo[k], x + x_hi[k], y + y_hi[k]], dtype=torch.float32
            )
            counts[i] += 1
    return images, targets


def _coco_categories(coco: dict, ann_path: Path) -> tuple[dict[Any, int], list[str]]:
    """Category id -> class index (ids sorted) and the class names; duplicate or missing ids refused."""
    seen: dict[Any, int] = {}
    for n, cat in enumerate(coco["categories"]):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), (int, str)) or isinstance(cat.get("id"), bool):
            raise DataError(f"{ann_path}: categories[{n}] needs an 'id' (a number or a string)")
        if cat["id"] in seen:
            raise DataError(
                f"{ann_path}: categories[{n}] repeats category id {cat['id']!r} (of categories[{seen[cat['id']]}])"
            )
        seen[cat["id"]] = n
    try:
        categories = sorted(coco["categories"], key=lambda c: c["id"])
    except TypeError:
        raise DataError(f"{ann_path}: category ids mix numbers and strings") from None
    return {c["id"]: k for k, c in enumerate(categories)}, [str(c.get("name", c["id"])) for c in categories]


def _coco_images(coco: dict, ann_path: Path) -> dict[Any, dict]:
    """Image id -> record, each with a positive, finite width and height; duplicate ids refused."""
    images: dict[Any, dict] = {}
    for n, image in enumerate(coco["images"]):
        where = f"{ann_path}: images[{n}]"
        if (
            not isinstance(image, dict)
            or not isinstance(image.get("id"), (int, str))
            or isinstance(image.get("id"), bool)
        ):
            raise DataError(f"{where} needs an 'id' (a number or a string)")
        if image["id"] in images:
            raise DataError(f"{where} repeats image id {image['id']!r}; every image needs its own id")
        for key in ("width", "height"):
            value = image.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise DataError(f"{where} (id {image['id']!r}): {key} must be a positive number, got {value!r}")
        images[image["id"]] = image
    if not images:
        raise DataError(f"{ann_path}: no images")
    return images


def _coco_boxes(
    coco: dict, ann_path: Path, images: dict[Any, dict], cat_index: dict[Any, int], canvas_size: int
) -> dict[Any, list[list[float]]]:
    """Per image id, its boxes ``[class, x1, y1, x2, y2]`` on the canvas; each malformed record named.

    Crowd regions (``iscrowd: 1``) are left out: in COCO they mark a group of objects that no single box
    outlines, which COCO's own evaluation ignores (Lin et al. 2014, sec. 3) and a detector should not learn
    as one object.
    """
    boxes: dict[Any, list[list[float]]] = {i: [] for i in images}
    crowd = 0
    for n, ann in enumerate(coco["annotations"]):
        if not isinstance(ann, dict):
            raise DataError(f"{ann_path}: annotations[{n}] is {type(ann).__name__}, not a record")
        where = f"{ann_path}: annotations[{n}] (id {ann.get('id', '?')})"
        image_id = ann.get("image_id")
        # True == 1 as a dict key: a boolean would silently name record 1.
        if isinstance(image_id, bool) or not isinstance(image_id, (int, str)) or image_id not in images:
            raise DataError(f"{where}: image_id {image_id!r} names no images record")
        cat = ann.get("category_id")
        if isinstance(cat, bool) or not isinstance(cat, (int, str)) or cat not in cat_index:
            raise DataError(f"{where}: unknown category_id {cat!r}; known: {sorted(cat_index, key=str)}")
        if ann.get("iscrowd") not in (None, 0, 1, False, True):
            raise DataError(f"{where}: iscrowd must be 0 or 1, got {ann.get('iscrowd')!r}")
        if ann.get("iscrowd"):
            crowd += 1
            continue
        bbox = ann.get("bbox")
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)
        ):
            raise DataError(f"{where}: bbox must be four finite numbers [x, y, width, height], got {bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        W, H = float(images[image_id]["width"]), float(images[image_id]["height"])
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > W + 1e-6 or y + h > H + 1e-6:
            raise DataError(f"{where}: bbox {[x, y, w, h]} lies outside its {W:g}x{H:g} image")
        sx, sy = canvas_size / W, canvas_size / H
        boxes[image_id].append([cat_index[cat], x * sx, y * sy, (x + w) * sx, (y + h) * sy])
    skipped = f" ({crowd} crowd regions, iscrowd=1, are not objects)" if crowd else ""
    if not any(boxes.values()):  # every score would be mAP 0: nothing to search for
        raise DataError(f"{ann_path}: no annotations{skipped}; detection needs boxes on at least some images")
    if crowd:
        log.info("%s: %d crowd regions (iscrowd=1) left out, as COCO's evaluation ignores them", ann_path, crowd)
    image_id, most = max(((i, len(b)) for i, b in boxes.items()), key=lambda item: item[1])
    if most > MAX_BOXES:  # the loss compares every location with every box of an image
        raise DataError(
            f"{ann_path}: images record {image_id!r} has {most:,} boxes; at most {MAX_BOXES:,} per image "
            "(the loss compares every feature-map location with every box of its image)"
        )
    used = {int(b[0]) for image_boxes in boxes.values() for b in image_boxes}
    unused = [cat for cat, k in cat_index.items() if k not in used]
    if unused:
        log.warning(
            "%s: %d of %d categories have no boxes (ids %s); the model keeps a class for each",
            ann_path,
            len(unused),
            len(cat_index),
            ", ".join(map(repr, unused[:10])) + (", ..." if len(unused) > 10 else ""),
        )
    return boxes


def load_coco(images_dir: str | Path, annotations: str | Path, canvas_size: int) -> tuple[Tensor, Tensor, list[str]]:
    """Reads a COCO-format detection dataset, resizing every image to ``canvas_size``.

    Raises:
        DataError: Naming the file and the record for a missing file, malformed
            JSON, a repeated image or category id, a box that is not four
            finite numbers inside its image, or an unknown image or category id.
    """
    from PIL import Image
    from torchvision.transforms import functional as TF

    ann_path, img_dir = Path(annotations), Path(images_dir)
    if not ann_path.is_file():
        raise DataError(f"{ann_path}: annotations file not found (COCO JSON with images, annotations, categories)")
    try:
        coco = parse_json(ann_path.read_text(encoding="utf-8-sig"))  # annotation tools on Windows write a BOM
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{ann_path}: malformed JSON ({err})") from None
    if not isinstance(coco, dict) or not all(
        isinstance(coco.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise DataError(f"{ann_path}: a COCO file needs the lists 'images', 'annotations' and 'categories'")
    cat_index, names = _coco_categories(coco, ann_path)
    images = _coco_images(coco, ann_path)
    check_fits(len(images) * 3 * 4 * 2 * float(canvas_size) ** 2, f"{len(images)} images", "task.data.canvas_size")
    boxes = _coco_boxes(coco, ann_path, images, cat_index, canvas_size)
    pixels = []
    for image_id, image in images.items():
        path = img_dir / str(image.get("file_name", ""))
        try:
            with Image.open(path) as img:
                declared = (int(image["width"]), int(image["height"]))
                # Boxes drawn on the photo as viewers show it (EXIF-turned) match its turned size; boxes
                # drawn on the stored pixels match the file's own size, which wins when both do.
                img = img if declared == img.size else upright(img)
                if boxes[image_id] and declared != img.size:  # the boxes would be scaled to the wrong size
                    raise DataError(
                        f"{ann_path}: images record {image_id} declares {declared[0]}x{declared[1]} but "
                        f"{path.name} is {img.size[0]}x{img.size[1]}"
                    )
                pixels.append(TF.to_tensor(eight_bit(img, "RGB").resize((canvas_size, canvas_size))))
        except DataError:
            raise
        except (FileNotFoundError, IsADirectoryError):
            raise DataError(f"{path}: image file of images record {image_id} not found") from None
        except Exception as err:  # PIL raises many types for broken files
            raise DataError(f"{path}: unreadable image ({type(err).__name__})") from None
    most = max(1, max(len(b) for b in boxes.values()))
    targets = torch.full((len(images), most, 5), -1.0)
    for k, image_id in enumerate(images):
        if boxes[image_id]:
            targets[k, : len(boxes[image_id])] = torch.tensor(boxes[image_id])
    return torch.stack(pixels), targets, names


def load_detection(
    name: str = "digits",
    images: str | None = None,
    annotations: str | None = None,
    canvas_size: int = 64,
    num_images: int = 3000,
    objects: tuple[int, int] = (1, 5),
    scales: tuple[int, int] = (10, 28),
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DataSplits:
    """Detection splits: embedded digit canvases (``digits``) or users' ``coco`` data."""
    if name == "digits" and int(num_images) < 3:  # one each for train, val and test at least
        raise DataError(f"task.data.num_images must be >= 3, got {num_images}")
    if name == "digits" and (images or annotations):  # the user's files would be ignored, silently
        raise DataError(
            "task.data.images and task.data.annotations are read when task.data.name=coco; task.data.name=digits "
            "needs no files (set task.data.name=coco to search on your images)"
        )
    if name == "digits":
        x, y = make_digit_canvases(num_images, canvas_size, tuple(objects), tuple(scales), seed=seed)
        class_names = [str(i) for i in range(10)]
    elif name == "coco":
        # The generator's settings: a value other than its default (the task config's too) was ignored, silently.
        generated = {
            "num_images": (num_images, 3000),
            "objects": (list(objects), [1, 5]),
            "scales": (list(scales), [10, 28]),
        }
        changed = next((k for k, (value, default) in generated.items() if value != default), None)
        if changed is not None:
            raise DataError(
                f"task.data.{changed}={generated[changed][0]} shapes the generated digit canvases; task.data.name=coco "
                "reads your images (drop it)"
            )
        if not images or not annotations:
            raise DataError("task.data.images and task.data.annotations must point at an image folder and a COCO JSON")
        x, y, class_names = load_coco(images, annotations, canvas_size)
    else:
        raise DataError(f"task.data.name={name!r} is unknown; allowed: ['digits', 'coco']")
    train_idx, val_idx, test_idx = split_indices(len(x), val_fraction, test_fraction, seed)
    if test_fraction > 0 and len(test_idx) == 0:  # the ground truth and the retrain report would test on nothing
        raise DataError(
            f"{len(x)} images leave none for the test split (task.data.test_fraction={test_fraction}); "
            "a detection dataset needs more images"
        )
    mean = x[train_idx].mean(dim=(0, 2, 3), keepdim=True)
    std = x[train_idx].std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    x = (x - mean) / std
    return DataSplits(
        Split(x[train_idx], y[train_idx]),
        Split(x[val_idx], y[val_idx]),
        Split(x[test_idx], y[test_idx]),
        in_channels=x.shape[1],
        num_classes=len(class_names),
        class_names=class_names,
        mean=mean.flatten().tolist(),
        std=std.flatten().tolist(),
    )
