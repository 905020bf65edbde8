import json

import numpy as np
import pytest
import torch
from PIL import Image

from rlnas.data.detection import load_coco, load_detection, make_digit_canvases
from rlnas.tasks.detection import DetectionTask


def test_canvases_are_deterministic_with_tight_boxes_inside():
    x1, y1 = make_digit_canvases(40, seed=3)
    x2, y2 = make_digit_canvases(40, seed=3)
    torch.testing.assert_close(x1, x2)
    torch.testing.assert_close(y1, y2)
    valid = y1[..., 0] >= 0
    counts = valid.sum(1)
    assert counts.min() >= 1 and counts.max() <= 5
    boxes = y1[valid][:, 1:]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 64).all()
    sides = boxes[:, 2:] - boxes[:, :2]
    assert (sides > 0).all() and sides.max() <= 28
    for img, t in zip(x1[:5], y1[:5]):  # every box holds ink; outside all boxes is black
        inside = torch.zeros(64, 64, dtype=torch.bool)
        for _cls, a, b, cc, d in t[t[:, 0] >= 0].long().tolist():
            assert img[0, b:d, a:cc].max() > 0.15
            inside[b:d, a:cc] = True
        assert img[0][~inside].max() < 0.2


def _perfect_outputs(task: DetectionTask, targets: torch.Tensor, size: int = 16) -> torch.Tensor:
    """Dense head outputs that put a confident box exactly on each ground truth."""
    K, stride = 10, task.image_size / size
    out = torch.full((len(targets), K + 5, size, size), -12.0)
    out[:, K : K + 4] = 1.0
    out[:, K + 4] = 12.0
    for b, t in enumerate(targets):
        for c, x1, y1, x2, y2 in t[t[:, 0] >= 0].tolist():
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            i, j = int(cy // stride), int(cx // stride)
            px, py = (j + 0.5) * stride, (i + 0.5) * stride
            out[b, int(c), i, j] = 12.0
            out[b, K : K + 4, i, j] = torch.tensor([px - x1, py - y1, x2 - px, y2 - py]) / stride
    return out


def test_map_is_one_for_perfect_predictions_and_lower_when_shifted():
    task = DetectionTask()
    task.image_size = 64
    _, targets = make_digit_canvases(20, seed=0)
    perfect = task.batch_metrics(_perfect_outputs(task, targets), targets)
    assert perfect["map50"] == pytest.approx(1.0) and perfect["map"] == pytest.approx(1.0)
    shifted = targets.clone()
    shifted[..., 1:] += torch.where(shifted[..., :1] >= 0, 4.0, 0.0)
    worse = task.batch_metrics(_perfect_outputs(task, shifted), targets)
    assert worse["map"] < 0.7 and worse["map"] < perfect["map"]


def test_map_backends_agree_on_noisy_predictions():
    """faster-coco-eval (the default, for speed) reports what pycocotools' COCOeval does."""
    _, targets = make_digit_canvases(24, seed=2)
    g = torch.Generator().manual_seed(0)
    # Perfect outputs plus noise: some boxes off, some classes wrong, low-score clutter.
    outputs = _perfect_outputs(DetectionTask(), targets)
    noise = torch.randn(outputs.shape, generator=g)
    outputs[:, :10] += 6.0 * noise[:, :10]  # class logits: confusions and clutter
    outputs[:, 10:14] = (outputs[:, 10:14] + 0.3 * noise[:, 10:14]).clamp_min(0.05)  # box sides off by ~1 px
    values = {}
    for backend in DetectionTask.map_backends:
        task = DetectionTask(map_backend=backend)
        task.image_size = 64
        values[backend] = task.batch_metrics(outputs, targets)
    fast, reference = values["faster_coco_eval"], values["pycocotools"]
    assert 0.05 < float(reference["map"]) < 0.95  # a case where the matching matters
    for key in ("map", "map50"):
        assert float(fast[key]) == pytest.approx(float(reference[key]), abs=1e-6)


def test_loss_is_finite_and_lower_for_perfect_outputs():
    task = DetectionTask()
    task.image_size = 64
    _, targets = make_digit_canvases(8, seed=1)
    good = task.loss(_perfect_outputs(task, targets), targets)
    bad = task.loss(torch.zeros(8, 15, 16, 16), targets)
    assert torch.isfinite(good) and torch.isfinite(bad) and good < bad


def _write_coco(tmp_path, annotations=None, categories=None, images=None):
    (tmp_path / "img").mkdir(exist_ok=True)
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((40, 80, 3), 128, dtype=np.uint8)).save(tmp_path / "img" / name)
    coco = {
        "images": images
        or [
            {"id": 1, "file_name": "a.png", "width": 80, "height": 40},
            {"id": 2, "file_name": "b.png", "width": 80, "height": 40},
        ],
        "annotations": annotations
        if annotations is not None
        else [
            {"id": 10, "image_id": 1, "bbox": [8, 4, 16, 20], "category_id": 7},
            {"id": 11, "image_id": 1, "bbox": [40, 10, 20, 10], "category_id": 3},
            {"id": 12, "image_id": 2, "bbox": [0, 0, 80, 40], "category_id": 7},
        ],
        "categories": categories or [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco))
    return tmp_path / "img", path


def test_coco_round_trip_scales_boxes_to_the_canvas(tmp_path):
    images, ann = _write_coco(tmp_path)
    x, y, names = load_coco(images, ann, canvas_size=32)
    assert x.shape == (2, 3, 32, 32) and names == ["cat", "dog"]
    torch.testing.assert_close(y[0, 0], torch.tensor([1.0, 8 * 0.4, 4 * 0.8, 24 * 0.4, 24 * 0.8]))
    torch.testing.assert_close(y[0, 1], torch.tensor([0.0, 16.0, 8.0, 24.0, 16.0]))
    torch.testing.assert_close(y[1, 0], torch.tensor([1.0, 0.0, 0.0, 32.0, 32.0]))
    assert y[1, 1, 0] == -1


def test_detection_splits_from_coco(tmp_path):
    images, ann = _write_coco(tmp_path)
    data = load_detection(
        "coco", images=str(images), annotations=str(ann), canvas_size=32, val_fraction=0.5, test_fraction=0.0
    )
    assert data.num_classes == 2 and len(data.train) == len(data.val) == 1
    # The same file as annotation tools on Windows save it, behind a UTF-8 byte-order mark.
    ann.write_bytes(ann.read_text().encode("utf-8-sig"))
    again = load_detection(
        "coco", images=str(images), annotations=str(ann), canvas_size=32, val_fraction=0.5, test_fraction=0.0
    )
    assert again.num_classes == 2 and [len(again.train), len(again.val)] == [1, 1]


def test_coco_crowd_regions_are_left_out_and_unused_categories_named(tmp_path, caplog):
    """COCO's iscrowd=1 regions outline groups, not objects (its evaluation ignores them); a category without
    boxes still costs the model a class, which the log says."""
    from PIL import Image

    Image.fromarray(np.zeros((20, 40, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 20}],
        "annotations": [
            {"id": 1, "image_id": 1, "bbox": [2, 2, 10, 10], "category_id": 5, "iscrowd": 0},
            {"id": 2, "image_id": 1, "bbox": [0, 0, 40, 20], "category_id": 5, "iscrowd": 1},
        ],
        "categories": [{"id": 5, "name": "person"}, {"id": 9, "name": "kite"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    with caplog.at_level("INFO", logger="rlnas.data.detection"):
        _, targets, names = load_coco(tmp_path, tmp_path / "ann.json", canvas_size=40)
    boxes = targets[0][targets[0][:, 0] >= 0]
    assert boxes.tolist() == [[0.0, 2.0, 4.0, 12.0, 24.0]] and names == ["person", "kite"]
    assert "1 crowd regions (iscrowd=1) left out" in caplog.text
    assert "1 of 2 categories have no boxes (ids 9)" in caplog.text
