"""MNIST-1D: offline, deterministic signals; the 1-D space and the sequence spaces search them."""

from __future__ import annotations

import json
import random
import re
import socket

import numpy as np
import pytest
import torch

from rlnas.data.base import DataError
from rlnas.data.sequences import load_sequences
from rlnas.data.signals import load_signals, mnist1d_signals
from rlnas.search.builder import build_search
from tests.conftest import ROOT

pytest.importorskip("mnist1d")


def test_signals_are_generated_with_the_network_refused(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network refused in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    x, y = mnist1d_signals(200, seed=0)
    assert x.shape == (200, 40) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert y.dtype == torch.int64 and set(y.tolist()) == set(range(10))
    assert torch.bincount(y).tolist() == [20] * 10  # one share per class


def test_one_data_seed_gives_the_same_signals_and_another_other_ones():
    a, ya = mnist1d_signals(300, seed=3)
    b, yb = mnist1d_signals(300, seed=3)
    c, _ = mnist1d_signals(300, seed=4)
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(a, c)


def test_generating_leaves_the_global_generators_alone():
    np.random.seed(7)
    random.seed(7)
    expected = (np.random.rand(), random.random())
    np.random.seed(7)
    random.seed(7)
    mnist1d_signals(100, seed=0)
    assert (np.random.rand(), random.random()) == expected


def test_layouts_and_splits():
    image = load_signals(num_samples=500, seed=0)
    assert image.train.x.shape[1:] == (1, 1, 40) and image.in_channels == 1 and image.num_classes == 10
    assert len(image.train) + len(image.val) + len(image.test) == 500
    sequence = load_sequences("mnist1d", num_samples=500, seed=0)
    assert sequence.train.x.shape[1:] == (40, 1) and sequence.in_channels == 1
    # The same signals and the same split in both layouts.
    torch.testing.assert_close(sequence.test.x[:, :, 0], image.test.x[:, 0, 0, :])
    assert torch.equal(sequence.test.y, image.test.y)
    assert int(image.train.y.min()) >= 0 and int(image.train.y.max()) <= 9


def test_generator_settings_change_the_signals_and_bad_ones_name_the_key():
    quiet, _ = mnist1d_signals(100, seed=0, generator={"iid_noise_scale": 0.0, "corr_noise_scale": 0.0})
    noisy, _ = mnist1d_signals(100, seed=0)
    assert not torch.equal(quiet, noisy)
    with pytest.raises(DataError, match=r"task.data.generator.noise is not a setting"):
        mnist1d_signals(100, generator={"noise": 1.0})
    with pytest.raises(DataError, match=r"task.data.num_samples must be in 10\.\."):
        mnist1d_signals(10**9)
    with pytest.raises(DataError, match="task.data.layout"):
        load_signals(num_samples=100, layout="grid")


@pytest.mark.parametrize(
    "generator, message",
    [
        # the package would take these silently: a negative scale as a positive one, any truthy flag as true
        ({"iid_noise_scale": -1}, "task.data.generator.iid_noise_scale=-1 must be a finite number >= 0"),
        ({"shear_scale": "big"}, "task.data.generator.shear_scale='big' must be a finite number >= 0"),
        ({"shuffle_seq": "yes"}, "task.data.generator.shuffle_seq='yes' must be true or false"),
        # ... and build signals of no length, or fail deep inside with numpy's words
        ({"final_seq_length": 0}, "task.data.generator.final_seq_length=0 must be a whole number >= 1"),
        ({"template_len": 2.5}, "task.data.generator.template_len=2.5 must be a whole number >= 1"),
        ({"max_translation": 0}, "task.data.generator.max_translation=0 must be a whole number >= 1"),
        ({"padding": [60, 36]}, r"task.data.generator.padding=\[60, 36\] must be two whole numbers"),
        # sizes that would take minutes or gigabytes: refused before anything is generated
        ({"padding": [0, 10**7]}, "template_len \\+ padding\\[1\\] = 10,000,012 points per signal"),
        ({"final_seq_length": 10**7}, "the signals would take 3.7 GiB"),
    ],
)
def test_generator_values_that_mean_nothing_are_refused_by_name(generator, message):
    with pytest.raises(DataError, match=message):
        mnist1d_signals(100, generator=generator)


def _compose(*overrides: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=[*overrides, "+experiment=smoke"])


@pytest.fixture(scope="module")
def conv1d_search(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("conv1d")
    cfg = _compose("+task=mnist1d", "task.data.num_samples=600")
    search = build_search(cfg, run_dir, progress=False)
    return cfg, search, search.run(), run_dir


def test_smoke_search_on_mnist1d_with_the_1d_space(conv1d_search):
    _, search, result, run_dir = conv1d_search
    best = json.loads((run_dir / "best_arch.json").read_text())
    assert 0.0 <= best["metrics"]["val_accuracy"] <= 1.0 and best["arch"] == list(result.best.arch)
    assert search.space.dims == 1 and len(best["arch"]) == len(search.space)


@pytest.mark.parametrize("space", ["rnn_cell", "attention"])
def test_smoke_search_on_mnist1d_with_the_sequence_spaces(tmp_path, space):
    cfg = _compose("+task=sequence", "task.data.name=mnist1d", f"space={space}", "task.data.num_samples=600")
    build_search(cfg, tmp_path, progress=False).run()
    best = json.loads((tmp_path / "best_arch.json").read_text())
    assert 0.0 <= best["metrics"]["val_accuracy"] <= 1.0 and best["arch"]


def test_the_run_ends_comparing_the_pick_with_random_architectures_by_ground_truth(conv1d_search, caplog):
    from omegaconf import OmegaConf

    from rlnas.__main__ import ground_truth_line

    cfg, search, result, run_dir = conv1d_search
    cfg = OmegaConf.merge(cfg, {"ground_truth": {"random": 2, "seeds": 2, "epochs": 1}})
    with caplog.at_level("INFO", logger="rlnas"):
        line = ground_truth_line(cfg, search.uniform, result.best.arch, str(run_dir))
    # Minutes of trainings where stderr is a log file: a line as each finishes, the pick's seeds at once.
    said = [r.getMessage() for r in caplog.records if "trainings done" in r.getMessage()]
    assert [m.split(",")[0] for m in said] == [f"ground truth: {n}/4 trainings done" for n in (2, 3, 4)]
    assert said[-1].endswith("ETA 0:00")
    saved = json.loads((run_dir / "ground_truth.json").read_text())
    assert saved["pick"]["arch"] == list(result.best.arch) and len(saved["random"]) == 2
    assert saved["random_best"] == max(r["value"] for r in saved["random"])
    assert line.startswith("ground truth (standalone, 1 epochs, test split the search never saw): found accuracy ")
    pick = saved["pick"]
    assert f"{pick['mean']:.4f} ± {pick['std']:.4f} vs 2 random architectures {saved['random_mean']:.4f}" in line


def test_a_comparison_that_cannot_run_after_a_complete_search_is_one_line_and_keeps_the_search(tmp_path):
    """A test split too small to hold a signal (test_fraction 0.0001 of 5,000): the search is complete and kept,
    the comparison named in one line, exit code 1; a retrain of that run is refused the same way."""
    import subprocess
    import sys

    run = tmp_path / "run"
    args = ["+experiment=smoke", "+task=mnist1d", "task.data.test_fraction=0.0001", "ground_truth.epochs=1"]
    proc = subprocess.run(
        [sys.executable, "-m", "rlnas", *args, "threads=1", f"hydra.run.dir={run}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert last.startswith("rlnas: error: in the ground-truth comparison: the ground truth is measured on the test")
    assert "task.data.test_fraction=0" in last and f"the search is complete ({run / 'best_arch.json'})" in last
    assert json.loads((run / "status.json").read_text())["status"] == "completed" and (run / "best_arch.json").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "rlnas.retrain", f"arch={run}", "train.epochs=1", f"hydra.run.dir={tmp_path / 'r'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "rlnas.retrain: error: a retrained network is measured on the test split, and the search's data has none"
        )
    )


def test_a_two_dimensional_space_is_refused_for_signals(tmp_path):
    cfg = _compose("+task=mnist1d", "space=macro", "task.data.num_samples=600")
    with pytest.raises(ValueError, match="space.dims=2 does not fit the mnist1d task"):
        build_search(cfg, tmp_path, progress=False)


def test_augmentation_shifts_along_the_signal_only():
    from rlnas.tasks import SignalClassificationTask

    task = SignalClassificationTask()
    x = torch.arange(2 * 40, dtype=torch.float32).reshape(2, 1, 1, 40)
    out, _ = task.augment(x, torch.zeros(2), torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for row, shifted in zip(x[:, 0, 0], out[:, 0, 0]):
        offsets = {int(v) for v in (shifted - row)[5:-5]}  # away from the replicated ends
        assert len(offsets) == 1 and abs(offsets.pop()) <= 5  # one shift of at most 40 / 8


def test_spread_study_reports_percentiles_and_shares_the_rank_study_cache(tmp_path):
    import sys

    sys.path.insert(0, str(ROOT))
    from tools.spread_study import main

    cache = tmp_path / "ranking" / "standalone.json"
    argv = [
        "--archs",
        "3",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--jobs",
        "1",
        "--out",
        str(tmp_path / "spread"),
        "--cache",
        str(cache),
        "+task=mnist1d",
        "task.data.num_samples=600",
    ]
    main(argv)
    result = json.loads((tmp_path / "spread" / "spread.json").read_text())
    means = sorted(r["mean"] for r in result["archs"])
    assert len(means) == 3 and result["summary"]["best"] == means[-1] and result["summary"]["worst"] == means[0]
    assert result["summary"]["median"] == means[1]
    stored = json.loads(cache.read_text())
    recipes = [v for k, v in stored.items() if k.endswith("/recipe")]  # kept beside the tables it trained them
    assert len(recipes) == 1 and recipes[0]["epochs"] == 1 and recipes[0]["lr"] == 0.05
    tables = [v for k, v in stored.items() if not k.endswith("/recipe")]
    assert len(tables) == 3 and all(len(table) == 3 for table in tables)  # test, val, val_loss
    before = cache.read_bytes()
    main(argv)  # everything cached: nothing trained again, the same numbers
    assert cache.read_bytes() == before
    assert json.loads((tmp_path / "spread" / "spread.json").read_text())["archs"] == result["archs"]


def test_a_retrained_signal_model_serves_raw_signals_from_npy_and_csv_files(conv1d_search, tmp_path, capsys):
    import json

    from hydra import compose, initialize_config_dir

    from rlnas.predict import main as predict_main
    from rlnas.retrain import retrain

    _, _, _, run_dir = conv1d_search
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("retrain", overrides=[f"arch={run_dir / 'best_arch.json'}", "train.epochs=15"])
    model = tmp_path / "model"
    retrain(cfg, model)
    assert json.loads((model / "model.json").read_text())["input"] == "raw arrays, (N, 1, 1, 40)"
    # Signals as the generator gives them (not normalised), from a seed the search never used.
    x, y = mnist1d_signals(200, seed=99)
    np.save(tmp_path / "batch.npy", x.numpy())
    np.save(tmp_path / "one.npy", x[7].numpy())
    np.savetxt(tmp_path / "three.csv", x[:3].numpy(), delimiter=",")
    preds = tmp_path / "preds.json"
    assert predict_main([f"model={model}", f"input={tmp_path / 'batch.npy'}", f"output={preds}"]) == 0
    rows = json.loads(preds.read_text())
    assert [r["row"] for r in rows] == list(range(200))
    # Better than chance: the model reads raw signals as it was trained on them.
    accuracy = np.mean([int(r["class"]) == int(label) for r, label in zip(rows, y)])
    assert accuracy > 0.3, accuracy
    capsys.readouterr()
    assert predict_main([f"model={model}", f"input={tmp_path / 'one.npy'}"]) == 0
    assert json.loads(capsys.readouterr().out)["class"] == rows[7]["class"]
    assert predict_main([f"model={model}", f"input={tmp_path / 'three.csv'}"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["class"] for r in lines] == [r["class"] for r in rows[:3]]
    # Inputs no signal model can read: each named, nothing unpickled.
    np.save(tmp_path / "short.npy", x[:, :30].numpy())
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "complex.npy", x.numpy().astype(np.complex64))
    bad = x[:2].numpy().copy()
    bad[1, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    for name, message in [
        ("short.npy", "an array of shape (200, 30); the model takes (40,) per sample"),
        ("objects.npy", "unreadable as an array of numbers"),
        ("nan.npy", "holds NaN, infinite values"),
        ("complex.npy", "holds complex64, not real numbers"),
    ]:
        assert predict_main([f"model={model}", f"input={tmp_path / name}"]) == 2
        assert f"{tmp_path / name}: {message}" in capsys.readouterr().err


def test_text_signal_files_as_spreadsheets_write_them_are_read_and_unusable_ones_named(tmp_path):
    from rlnas.predict import PredictError, load_array

    rows = np.arange(80, dtype=np.float32).reshape(2, 40) / 80
    body = "\n".join(",".join(f"{v:.6f}" for v in row) for row in rows) + "\n"
    header = ",".join(f"x{i}" for i in range(40)) + "\n"
    # A byte-order mark and a header row, as spreadsheets write them.
    (tmp_path / "sheet.csv").write_bytes(b"\xef\xbb\xbf" + (header + body).encode())
    np.testing.assert_allclose(load_array(tmp_path / "sheet.csv", (1, 40))[:, 0], rows, atol=1e-6)
    # Semicolons and tabs (spreadsheets of other locales), or blanks: read as such, not taken for a header.
    for sep in (";", "\t", " "):
        (tmp_path / "sheet.csv").write_text(header.replace(",", sep) + body.replace(",", sep))
        np.testing.assert_allclose(load_array(tmp_path / "sheet.csv", (1, 40))[:, 0], rows, atol=1e-6)
        (tmp_path / "sheet.csv").write_text(body.splitlines()[0].replace(",", sep) + "\n")
        np.testing.assert_allclose(load_array(tmp_path / "sheet.csv", (1, 40))[:, 0], rows[:1], atol=1e-6)
    # Decimal commas where semicolons or tabs separate, quoted fields, a separator ending each row: read.
    for name, line in [
        ("decimal_commas.csv", ";".join(["0,5"] * 40)),
        ("decimal_tabs.csv", "\t".join(["0,5"] * 40)),
        ("quoted.csv", ",".join(['"0.5"'] * 40)),
        ("trailing.csv", ",".join(["0.5"] * 40) + ","),
    ]:
        (tmp_path / name).write_text(f"{line}\n{line}\n")
        np.testing.assert_allclose(load_array(tmp_path / name, (1, 40)), np.full((2, 1, 40), 0.5), err_msg=name)
    # Univariate sequences without their one feature, as the training files hold them, and an .npz's x.
    np.save(tmp_path / "steps.npy", np.full(8, 0.5))
    np.save(tmp_path / "n_steps.npy", np.full((3, 8), 0.5))
    np.savez(tmp_path / "train.npz", x=np.full((3, 8), 0.5), y=np.zeros(3, dtype=np.int64))
    for name, count in [("steps.npy", 1), ("n_steps.npy", 3), ("train.npz", 3)]:
        np.testing.assert_allclose(load_array(tmp_path / name, (8, 1)), np.full((count, 8, 1), 0.5), err_msg=name)
    # Several features per step: a line holds a sample's steps one after another, as a training .csv's rows
    # (task.data.features per step); it was refused as "an array of shape (1, 64)".
    steps = np.arange(2 * 8 * 3, dtype=np.float32).reshape(2, 8, 3)
    (tmp_path / "features.csv").write_text("\n".join(",".join(map(str, row.ravel())) for row in steps) + "\n")
    np.testing.assert_array_equal(load_array(tmp_path / "features.csv", (8, 3)), steps)
    (tmp_path / "short.csv").write_text("1,2,3\n")
    with pytest.raises(
        PredictError, match=re.escape("the model takes (8, 3) per sample (one, or N as (N, 8, 3); a line")
    ):
        load_array(tmp_path / "short.csv", (8, 3))
    np.savez(tmp_path / "other.npz", X=np.zeros(8))
    with pytest.raises(PredictError, match=re.escape("other.npz: no array 'x' (the samples; np.savez(path, x=...))")):
        load_array(tmp_path / "other.npz", (8, 1))
    (tmp_path / "empty.csv").write_text("\n\n")
    (tmp_path / "header_only.csv").write_text(header)
    (tmp_path / "ragged.csv").write_text(body + "0.5,0.5\n")
    np.save(tmp_path / "huge.npy", np.full((2, 40), 1e300))
    for name, message in [
        ("empty.csv", "holds no numbers"),
        ("header_only.csv", "holds no numbers (its one row, 'x0,x1,"),
        ("ragged.csv", "ragged.csv: line 3 has 2 values, line 1 has 40; every sample needs the same number"),
        ("huge.npy", "beyond float32's range"),
    ]:
        with pytest.raises(PredictError, match=re.escape(message)):
            load_array(tmp_path / name, (1, 40))
