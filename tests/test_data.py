import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from rlnas.data import DataError, load_image_classification


def test_digits_splits_are_fixed_disjoint_and_normalised():
    a = load_image_classification("digits", image_size=12, seed=0)
    b = load_image_classification("digits", image_size=12, seed=0)
    assert (len(a.train), len(a.val), len(a.test)) == (1079, 359, 359)
    assert a.train.x.shape[1:] == (1, 12, 12) and a.num_classes == 10
    torch.testing.assert_close(a.val.x, b.val.x)
    assert abs(float(a.train.x.mean())) < 1e-4
    flat = lambda s: {tuple(r) for r in s.x.flatten(1).numpy().round(4).tolist()}  # noqa: E731
    assert not flat(a.val) & flat(a.test)
    c = load_image_classification("digits", image_size=12, seed=1)
    assert not torch.equal(a.val.y, c.val.y)


def test_batches_are_drawn_on_device_without_repeats():
    data = load_image_classification("digits", limit=200, seed=0)
    x, y = data.train.batch(64, torch.Generator().manual_seed(0))
    assert x.shape[0] == y.shape[0] == 64
    assert len({tuple(r) for r in x.flatten(1).tolist()}) == 64


def test_augmented_batches_of_several_ranks_are_shares_of_one_process_batch():
    from rlnas.tasks.classification import ClassificationTask

    data = load_image_classification("digits", limit=200, seed=0)
    task = ClassificationTask()

    def draw(rank: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(3)
        return data.train.batch(32 // world, gen, rank, world, transform=lambda x, y: task.augment(x, y, gen))

    x, y = draw(0, 1)
    plain, _ = data.train.batch(32, torch.Generator().manual_seed(3))
    assert not torch.equal(x, plain)  # shifted images
    shares = [draw(r, 2) for r in range(2)]
    assert torch.equal(torch.cat([s[0] for s in shares]), x) and torch.equal(torch.cat([s[1] for s in shares]), y)


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_torchvision_dataset_missing_files_says_what_to_put_where(name, tmp_path):
    with pytest.raises(DataError, match=f"{name} not found under {tmp_path}"):
        load_image_classification(name, root=str(tmp_path))
    with pytest.raises(DataError, match="task.data.root"):
        load_image_classification(name, root=None)


def test_imagefolder_missing_path_and_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="ROOT/<class_name>/<image files>"):
        load_image_classification("imagefolder", root=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="task.data.name='svhn'"):
        load_image_classification("svhn")


def test_imagefolder_loads_users_images(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    data = load_image_classification("imagefolder", root=str(tmp_path), image_size=16, seed=0)
    assert data.in_channels == 3 and data.num_classes == 2 and data.class_names == ["cat", "dog"]
    assert len(data.train) + len(data.val) + len(data.test) == 20


def test_sixteen_bit_images_keep_their_range_instead_of_turning_white(tmp_path):
    """PIL's own conversion clips 16-bit samples at 255: a 16-bit PNG would read as a white image."""
    from rlnas.data.images import eight_bit
    from rlnas.predict import load_image

    ramp = np.linspace(0, 255, 16 * 16).reshape(16, 16).round()
    (tmp_path / "dark").mkdir()
    (tmp_path / "light").mkdir()
    for i in range(6):  # the same ramp, 8-bit in one class and 16-bit in the other
        Image.fromarray(ramp.astype(np.uint8)).save(tmp_path / "dark" / f"{i}.png")
        Image.fromarray((ramp * 257).astype(np.uint16)).save(tmp_path / "light" / f"{i}.png")
    with Image.open(tmp_path / "light" / "0.png") as img:
        assert img.mode.startswith("I")
        np.testing.assert_array_equal(np.asarray(eight_bit(img, "L")), ramp)
    data = load_image_classification("imagefolder", root=str(tmp_path), image_size=16, seed=0)
    x = torch.cat([data.train.x, data.val.x, data.test.x]) * torch.tensor(data.std).view(1, -1, 1, 1)
    x = x + torch.tensor(data.mean).view(1, -1, 1, 1)
    y = torch.cat([data.train.y, data.val.y, data.test.y])
    assert torch.allclose(x[y == 0].mean(), x[y == 1].mean(), atol=1e-3)  # both classes read alike
    pixels, _ = load_image(tmp_path / "light" / "0.png", 1, (16, 16))
    np.testing.assert_allclose(pixels[0], ramp / 255, atol=1 / 255)


def test_photos_are_read_upright_as_their_exif_orientation_says(tmp_path):
    """A phone's portrait photo stores its pixels on their side and a rotation tag: it was learnt and
    predicted lying down, and COCO boxes drawn on it as viewers show it were refused as the wrong size."""
    from rlnas.data.detection import load_coco
    from rlnas.predict import load_image

    stored = np.zeros((8, 16), dtype=np.uint8)
    stored[0] = 255  # the stored top row is the right-hand column once turned (orientation 6: 90 degrees)
    tagged = Image.fromarray(stored)
    exif = tagged.getexif()
    exif[0x0112] = 6
    tagged.save(tmp_path / "photo.png", exif=exif)
    pixels, size = load_image(tmp_path / "photo.png", 1, (16, 8))
    assert size == (8, 16) and pixels[0, :, -1].min() > 0.9 and pixels[0, :, 0].max() < 0.1
    for cls in ("a", "b"):
        (tmp_path / "folder" / cls).mkdir(parents=True)
        for i in range(3):
            tagged.save(tmp_path / "folder" / cls / f"{i}.png", exif=exif)
    data = load_image_classification("imagefolder", root=str(tmp_path / "folder"), image_size=8, seed=0)
    x = data.train.x[0, 0]  # normalised: the bright column is the largest
    assert x[:, -1].min() > x[:, 0].max()
    (tmp_path / "coco").mkdir()
    tagged.save(tmp_path / "coco" / "photo.png", exif=exif)
    record = {"id": 1, "file_name": "photo.png", "width": 8, "height": 16}  # as viewers show it
    box = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [6, 0, 2, 16]}
    coco = {"images": [record], "annotations": [box], "categories": [{"id": 1, "name": "bar"}]}
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    x, targets, _ = load_coco(tmp_path / "coco", tmp_path / "ann.json", 16)
    assert x[0, 0, :, -1].min() > 0.9 and x[0, 0, :, 0].max() < 0.1 and targets[0, 0, 0] == 0


@pytest.mark.parametrize("augment", [True, False])
def test_search_augment_trains_the_supernet_on_augmented_batches(tmp_path, augment):
    from hydra import compose, initialize_config_dir

    from rlnas.config import CONF_DIR
    from rlnas.search.builder import build_search

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+task=classification", "+experiment=smoke", f"search.augment={augment}"])
    search = build_search(cfg, tmp_path, progress=False)
    calls = []
    original = search.task.augment
    search.task.augment = lambda x, y, g: calls.append(len(x)) or original(x, y, g)
    search.train_supernet(search.uniform.propose(3))
    assert calls == ([search.settings.batch_size] * 3 if augment else [])


def test_cluttered_digits_are_generated_offline_alike_per_seed_and_harder_than_digits():
    from rlnas.data.clutter import cluttered_digits

    x, y = cluttered_digits(300, canvas=24, seed=3)
    again, labels = cluttered_digits(300, canvas=24, seed=3)
    other, _ = cluttered_digits(300, canvas=24, seed=4)
    assert x.shape == (300, 1, 24, 24) and torch.equal(x, again) and torch.equal(y, labels)
    assert not torch.equal(x, other)
    assert 0 <= float(x.min()) and float(x.max()) <= 1 and set(y.tolist()) == set(range(10))
    # Without noise, clutter and rotation the digit is the only ink, and it moves around the canvas.
    clean, _ = cluttered_digits(300, canvas=24, seed=3, generator={"noise": 0, "fragments": 0, "rotation": 0})
    rows = torch.arange(24, dtype=torch.float32)
    ink = clean[:, 0].sum(dim=2)  # (N, 24) ink per row
    centre = (ink * rows).sum(dim=1) / ink.sum(dim=1)
    assert float(centre.std()) > 2  # pixels, i.e. translation is real


def test_cluttered_digits_never_share_a_source_digit_between_splits():
    from rlnas.data.base import split_indices
    from rlnas.data.clutter import _source_per_sample

    source, parts = _source_per_sample(2000, 1797, 0.15, 0.5, 7, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(parts, split_indices(2000, 0.15, 0.5, 7)))
    train, val, test = ({int(s) for s in source[idx]} for idx in parts)
    assert not train & test and not train & val and not val & test


def test_cluttered_digits_splits_and_bad_settings():
    data = load_image_classification("cluttered_digits", image_size=16, num_samples=400, limit=200, seed=1)
    assert len(data.train) + len(data.val) + len(data.test) == 200  # `limit` generates fewer
    assert data.train.x.shape[1:] == (1, 16, 16) and data.num_classes == 10
    for kwargs, key in (
        ({"generator": {"blur": 1}}, "task.data.generator.blur"),
        ({"generator": {"scale": [0.9, 0.2]}}, "task.data.generator.scale"),
        ({"generator": {"fragments": 2.5}}, r"task.data.generator.fragments=2.5 must be a whole number"),
        # each key named with its value, not the whole generator mapping
        ({"generator": {"noise": ".nan"}}, r"task.data.generator.noise='.nan' must be a finite number"),
        ({"generator": {"fragments": float("inf")}}, r"task.data.generator.fragments=inf must be a finite number"),
        ({"generator": {"scale": 0.5}}, r"task.data.generator.scale=0.5 must be two numbers \[low, high\]"),
        ({"generator": {"scale": [0.3, "big"]}}, r"task.data.generator.scale=\[0.3, 'big'\] must be two numbers"),
        ({"generator": {"rotation": [1, 2]}}, r"task.data.generator.rotation=\[1, 2\] must be a finite number"),
        ({"num_samples": 10**9}, "task.data.num_samples"),
        ({"image_size": 4}, "task.data.image_size"),
    ):
        with pytest.raises(DataError, match=key):
            load_image_classification("cluttered_digits", **kwargs)
    with pytest.raises(DataError, match="apply to cluttered_digits"):
        load_image_classification("digits", num_samples=100)


def test_classes_with_no_training_sample_are_named(caplog):
    """A class left out of the training split is scored but never learnt: the user hears which."""
    from rlnas.data.base import normalised_splits

    x = torch.randn(40, 1, 4, 4)
    y = torch.arange(40) % 20  # 20 classes of 2 samples: some land only in validation or test
    data = normalised_splits(x, y, 0.2, 0.2, seed=0, channel_dim=1, class_names=[f"c{i}" for i in range(20)])
    untrained = sorted(set(range(20)) - set(data.train.y.tolist()))
    assert untrained, "the split leaves a class out of training"
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and f"{len(untrained)} of 20 classes have no sample in the training split" in warned[0]
    assert f"c{untrained[0]}" in warned[0]
    caplog.clear()
    normalised_splits(x, torch.arange(40) % 2, 0.2, 0.2, seed=0, channel_dim=1)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("labels, absent", [([1, 2, 3], "(0)"), ([0, 2, 5], "(1, 3, 4)")])
def test_class_indices_with_gaps_are_named(caplog, labels, absent):
    """Labels numbered from 1, or with gaps: the model gets outputs no sample trains, and the user hears which."""
    from rlnas.data.base import normalised_splits

    y = torch.tensor(labels).repeat(20)
    data = normalised_splits(torch.randn(len(y), 1, 4, 4), y, 0.2, 0.2, seed=0, channel_dim=1)
    assert data.num_classes == max(labels) + 1
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    gaps = max(labels) + 1 - len(labels)
    assert len(warned) == 1 and f"labels run from 0 to {max(labels)} but {gaps} of those classes" in warned[0]
    assert absent in warned[0] and "number the classes 0..K-1 without gaps" in warned[0]


def test_predict_reads_the_images_of_a_folder_but_not_hidden_ones(tmp_path):
    from rlnas.predict import IMAGE_SUFFIXES, input_files

    for rel in ("a.png", "sub/b.jpg", "notes.txt", "._a.png", ".thumbs/t.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    # macOS's "._a.png" resource fork stopped the whole batch as an unreadable image.
    assert input_files(tmp_path, IMAGE_SUFFIXES, "image") == [tmp_path / "a.png", tmp_path / "sub" / "b.jpg"]


def test_a_batch_larger_than_the_training_split_is_named_once(caplog):
    """Such a batch is the whole split: 20 epochs of standalone training would be 20 steps, without a word."""
    from rlnas.data.base import warn_batch_beyond_split

    for _ in range(3):  # a trial search trains many candidates with one recipe: one warning
        warn_batch_beyond_split("search.batch_size", 5000, 1079)
    warn_batch_beyond_split("search.batch_size", 1079, 1079)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        "search.batch_size (5000) is larger than the training split (1079 samples): every step trains on all "
        "of them; choose a batch of at most 1079"
    ]


def test_a_limit_that_leaves_classes_out_says_so_and_keeps_every_output(caplog):
    # The labels of the digits have no gap: the advice to renumber them was wrong here.
    with caplog.at_level("WARNING"):
        data = load_image_classification("digits", limit=5, val_fraction=0.2, test_fraction=0.2, seed=0)
    text = caplog.text
    assert "task.data.limit=5 keeps samples of" in text and "raise task.data.limit" in text
    assert "without gaps" not in text
    assert data.num_classes == len(data.class_names) == 10  # the dataset's classes, as without the limit


def test_an_input_that_is_a_pipe_is_named_as_one(tmp_path):
    from rlnas.predict import IMAGE_SUFFIXES, PredictError, input_files

    os.mkfifo(tmp_path / "stream")  # was "no such file or directory" for a file that is there
    with pytest.raises(PredictError, match="is not a regular file or a directory"):
        input_files(tmp_path / "stream", IMAGE_SUFFIXES, "image")
    with pytest.raises(PredictError, match="no such file or directory"):
        input_files(tmp_path / "missing", IMAGE_SUFFIXES, "image")
