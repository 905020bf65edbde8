"""Retrain, export, compress and serve a found architecture."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from rlnas.export import Deployable, ExportMismatchError, check_parity, export_onnx, onnx_session, quantize_int8
from rlnas.predict import PredictError, load_model, predict
from rlnas.predict import main as predict_main
from rlnas.retrain import init_from_supernet, retrain
from rlnas.supernet import build_child, build_supernet
from rlnas.tasks.base import Network

ROOT = Path(__file__).resolve().parents[1]


def _search_run(tmp_path: Path, task: str, arch: list[int] | None = None) -> Path:
    """A search run dir as the search leaves it: config.yaml, best_arch.json and supernet.pt."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"+task={task}", "+experiment=smoke"])
    space = instantiate(cfg.space, _convert_="all")
    task_obj = instantiate(cfg.task, _convert_="all")
    data = task_obj.load_data(seed=int(cfg.seed))
    arch = arch or [0] * len(space)
    backbone = build_supernet(space, data.in_channels)
    supernet = Network(backbone, task_obj.build_head(backbone.out_channels, data))
    run = tmp_path / f"search_{task}"
    run.mkdir()
    OmegaConf.save(cfg, run / "config.yaml", resolve=True)
    (run / "best_arch.json").write_text(json.dumps({"arch": arch, "metrics": {}}))
    torch.save(supernet.state_dict(), run / "supernet.pt")
    return run


def _retrain_cfg(arch_path: Path, *overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("retrain", overrides=[f"arch={arch_path}", *overrides])


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    """One retrained classification model with every export and compression."""
    tmp = tmp_path_factory.mktemp("retrain")
    run = _search_run(tmp, "classification")
    out = tmp / "retrained"
    cfg = _retrain_cfg(run / "best_arch.json", "train.epochs=4", "compress=all", "prune.finetune_epochs=1")
    report = retrain(cfg, out)
    return out, report


def test_retrain_writes_checked_exports_and_compressed_variants(classification_run):
    out, report = classification_run
    for name in (
        "model.pt",
        "model.onnx",
        "model.ts",
        "model_int8.ts",
        "model_pruned.pt",
        "model.json",
        "report.json",
        "report.md",
    ):
        assert (out / name).is_file(), name
    rows = {row["variant"]: row for row in report["variants"]}
    fp32 = rows["pytorch fp32"]
    assert fp32["test_accuracy"] > 0.8  # 4 epochs on digits
    assert rows["onnxruntime fp32"]["max_abs_diff"] <= 1e-4
    assert rows["torchscript fp32"]["max_abs_diff"] <= 1e-4
    assert rows["onnxruntime fp32"]["test_accuracy"] == pytest.approx(fp32["test_accuracy"], abs=1 / 359)
    int8 = rows["int8 (static PTQ)"]
    assert int8["size_mb"] < 0.5 * fp32["size_mb"]
    assert int8["test_accuracy"] > fp32["test_accuracy"] - 0.05
    pruned = rows["pruned 0.5 + fine-tune"]
    assert pruned["nonzero_params"] < 0.65 * fp32["params"]
    saved = torch.load(out / "model_pruned.pt", weights_only=False)["state_dict"]
    conv_weights = [v for k, v in saved.items() if k.endswith("weight") and v.dim() == 4]
    zeros = sum(int((w == 0).sum()) for w in conv_weights) / sum(w.numel() for w in conv_weights)
    assert zeros > 0.4  # the masks were folded in, not dropped
    table = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("|")]
    assert any(line.startswith("| int8 (static PTQ) |") for line in table)
    # Every row has the header's columns (a "|" inside a note split the exported rows' notes into two cells).
    assert {line.count("|") for line in table} == {table[0].count("|")}


def test_retrained_checkpoint_reloads_into_the_standalone_child(classification_run):
    out, report = classification_run
    checkpoint = torch.load(out / "model.pt", weights_only=False)
    cfg = OmegaConf.create(checkpoint["search_config"])
    space = instantiate(cfg.space, _convert_="all")
    task = instantiate(cfg.task, _convert_="all")
    data = task.load_data(seed=int(cfg.seed))
    backbone = build_child(space, checkpoint["arch"], data.in_channels)
    network = Network(backbone, task.build_head(backbone.out_channels, data))
    network.load_state_dict(checkpoint["state_dict"])
    network.eval()
    with torch.no_grad():
        accuracy = float((network(data.test.x).argmax(1) == data.test.y).float().mean())
    assert accuracy == pytest.approx(report["test"]["accuracy"], abs=1e-6)


def test_predict_reads_pngs_like_the_training_data(classification_run, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    out, _ = classification_run
    digits = load_digits()
    for i in range(12):
        pixels = (digits.images[i] / 16 * 255).round().astype(np.uint8)
        # Larger than the model's input: predict must resize like the loaders do.
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(tmp_path / f"{i:02d}.png")
    rows = list(predict(load_model(out), sorted(tmp_path.glob("*.png")), batch_size=5, progress=False))
    assert len(rows) == 12 and rows[0]["file"].endswith("00.png")
    correct = sum(row["class"] == str(digits.target[i]) for i, row in enumerate(rows))
    assert correct >= 10
    assert all(0 < row["probability"] <= 1 and len(row["top_k"]) == 3 for row in rows)
    assert rows[0]["top_k"][0]["probability"] >= rows[0]["top_k"][1]["probability"]


def test_a_broken_image_in_a_folder_gets_an_error_row_and_the_others_are_predicted(
    classification_run, tmp_path, capsys
):
    """One truncated download among a folder's images stopped the whole run, with no prediction written."""
    from PIL import Image

    out, _ = classification_run
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(5):
        Image.new("L", (8, 8), color=40 * i).save(photos / f"{i}.png")
    (photos / "2.png").write_bytes(b"\x89PNG truncated")
    preds = tmp_path / "preds.json"
    assert predict_main([f"model={out}", f"input={photos}", f"output={preds}", "batch_size=2"]) == 1
    err = capsys.readouterr().err
    assert "1 of 5 files could not be read" in err and "2.png: unreadable image" in err
    rows = json.loads(preds.read_text())
    assert [Path(r["file"]).name for r in rows] == [f"{i}.png" for i in range(5)]
    assert rows[2] == {"file": str(photos / "2.png"), "error": "unreadable image (UnidentifiedImageError)"}
    assert all("class" in r for i, r in enumerate(rows) if i != 2)
    # A folder holding that one image alone: its row and status 1 too; the file named on its own: status 2.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(photos / "2.png", alone / "2.png")
    assert predict_main([f"model={out}", f"input={alone}"]) == 1
    assert "1 of 1 files could not be read" in capsys.readouterr().err
    assert predict_main([f"model={out}", f"input={alone / '2.png'}"]) == 2
    assert "2.png: unreadable image" in capsys.readouterr().err
    # From Python the default still raises, naming the file.
    with pytest.raises(PredictError, match="2.png: unreadable image"):
        list(predict(load_model(out), sorted(photos.glob("*.png")), progress=False))


def test_predict_cli_errors_name_the_file(classification_run, tmp_path, capsys):
    out, _ = classification_run
    assert predict_main([f"model={tmp_path}", f"input={tmp_path}"]) == 2
    assert str(tmp_path) in capsys.readouterr().err
    assert predict_main([f"model={out}", f"input={tmp_path}/missing.png"]) == 2
    assert "missing.png" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert predict_main([f"model={out}", f"input={broken}"]) == 2
    assert "broken.png: unreadable image" in capsys.readouterr().err
    assert predict_main([f"model={out}", "input=x", "top_k=many"]) == 2
    assert "top_k" in capsys.readouterr().err
    search = out.parent / "search_classification"  # a search's run dir given for a model: what to do instead
    assert predict_main([f"model={search}", f"input={broken}"]) == 2
    assert f"train its pick first: python -m rlnas.retrain arch={search}" in capsys.readouterr().err
    png = tmp_path / "one.png"
    Image.new("L", (8, 8)).save(png)
    # settings that ran as something else: 0 as 1, a threshold a classifier never reads, model.pt as ONNX
    for args, message in [
        (["batch_size=0"], "batch_size must be a whole number >= 1, got 0"),
        (["top_k=0"], "top_k must be a whole number >= 1, got 0"),
        (["score_threshold=0.5"], f"score_threshold is a detection model's setting; {out} is a classification"),
        (["score_threshold=5"], "score_threshold must be in [0, 1] or null, got 5.0"),
        ([f"model={out / 'model.pt'}"], "rlnas.predict serves the ONNX export; pass the retrain run dir"),
        (["input="], "input= is empty; name a file or folder"),
    ]:
        given = {"model": f"model={out}", "input": f"input={png}"}
        given.update({a.partition("=")[0]: a for a in args})  # a key given twice is refused on its own
        assert predict_main(list(given.values())) == 2, args
        assert message in capsys.readouterr().err, args
    # from Python alike: batch_size=0 ran with one, top_k=2.5 was rounded down, a negative top_k dropped classes
    model = load_model(out)
    for kwargs, message in [
        ({"batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
        ({"top_k": 2.5}, "top_k must be a whole number >= 1, got 2.5"),
        ({"top_k": -1}, "top_k must be a whole number >= 1, got -1"),
        ({"score_threshold": "high"}, "score_threshold must be a number in [0, 1] or null, got 'high'"),
    ]:
        with pytest.raises(PredictError, match=re.escape(message)):
            list(predict(model, [png], progress=False, **kwargs))


def test_retrain_never_overwrites_an_earlier_model(classification_run):
    out, _ = classification_run
    before = (out / "model.pt").read_bytes()
    cfg = _retrain_cfg(out.parent / "search_classification" / "best_arch.json", "train.epochs=1")
    with pytest.raises(ValueError, match="already holds a retrained model"):
        retrain(cfg, out)
    assert (out / "model.pt").read_bytes() == before


def test_supernet_init_reproduces_the_shared_weights(tmp_path):
    run = _search_run(tmp_path, "classification", arch=None)
    cfg = OmegaConf.load(run / "config.yaml")
    space = instantiate(cfg.space, _convert_="all")
    task = instantiate(cfg.task, _convert_="all")
    data = task.load_data(seed=int(cfg.seed))
    arch = space.sample(np.random.default_rng(3))
    backbone = build_supernet(space, data.in_channels)
    supernet = Network(backbone, task.build_head(backbone.out_channels, data))
    supernet.load_state_dict(torch.load(run / "supernet.pt", weights_only=True))
    child_backbone = build_child(space, arch, data.in_channels)
    child = Network(child_backbone, task.build_head(child_backbone.out_channels, data))
    copied = init_from_supernet(child, run / "supernet.pt")
    assert copied == len([k for k in child.state_dict() if "running" not in k and "num_batches" not in k])
    x = data.val.x[:16]
    supernet.train(), child.train()  # the supernet normalises with batch statistics
    with torch.no_grad():
        torch.testing.assert_close(child(x), supernet(x, arch), atol=1e-5, rtol=1e-5)
    # Another search's supernet.pt (a sequence search's) gave none of the weights, and init=supernet
    # trained from scratch, silently.
    other = _search_run(tmp_path, "sequence")
    with pytest.raises(ValueError, match=r"supernet.pt: holds \d+ of the \d+ weight tensors of this architecture's"):
        init_from_supernet(child, other / "supernet.pt")


def test_parity_check_fails_loudly():
    expected = torch.zeros(4, 10)
    assert check_parity("ok", expected, expected.numpy() + 5e-5) == pytest.approx(5e-5)
    with pytest.raises(ExportMismatchError, match=r"model.onnx: max \|diff\|"):
        check_parity("model.onnx", expected, expected.numpy() + 1e-3)
    with pytest.raises(ExportMismatchError, match="shape"):
        check_parity("model.onnx", expected, np.zeros((4, 9), dtype=np.float32))


def test_onnx_and_int8_of_a_plain_convnet(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1),
        torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 5),
    ).eval()
    model = Deployable(net, [0.5, 0.4, 0.3], [0.2, 0.2, 0.2]).eval()
    x = torch.rand(8, 3, 16, 16)
    export_onnx(model, x[:1], tmp_path / "m.onnx")
    got = onnx_session(tmp_path / "m.onnx").run(None, {"images": x.numpy()})[0]  # dynamic batch
    with torch.no_grad():
        assert check_parity("m.onnx", model(x), got) <= 1e-4
        quantized = quantize_int8(model, torch.rand(64, 3, 16, 16), x[:1])
        assert (quantized(x) - model(x)).abs().max() < 0.1 * model(x).abs().max()


def test_detection_retrains_exports_and_predicts_boxes_in_image_pixels(tmp_path):
    from PIL import Image

    run = _search_run(tmp_path, "detection")
    out = tmp_path / "retrained"
    cfg = _retrain_cfg(run / "best_arch.json", "train.epochs=1", "compress=int8", "quantize.calibration_samples=32")
    report = retrain(cfg, out)
    rows = {row["variant"]: row for row in report["variants"]}
    assert {"test_map", "test_map50"} <= set(rows["pytorch fp32"])
    assert rows["onnxruntime fp32"]["max_abs_diff"] <= 1e-4
    assert rows["int8 (static PTQ)"]["size_mb"] < rows["pytorch fp32"]["size_mb"]
    meta = json.loads((out / "model.json").read_text())
    size = meta["image_size"][0]
    canvas = (np.random.default_rng(0).random((size, size)) * 255).astype(np.uint8)
    Image.fromarray(canvas).resize((2 * size, 3 * size)).save(tmp_path / "scene.png")
    # top_k ranks a classifier's classes: given for a detection model, it was ignored.
    assert predict_main([f"model={out}", f"input={tmp_path / 'scene.png'}", "top_k=2"]) == 2
    # A tampered setting of the model's task (model.json is data): named, not Hydra's traceback.
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    bad = {**meta, "task_config": {**meta["task_config"], "nms_iou": "x"}}
    (tampered / "model.json").write_text(json.dumps(bad))
    with pytest.raises(PredictError, match=re.escape(f"{tampered / 'model.json'}: task_config cannot be used")):
        list(predict(load_model(tampered), [tmp_path / "scene.png"], progress=False))
    [row] = predict(load_model(out), [tmp_path / "scene.png"], score_threshold=0.0, progress=False)
    assert row["detections"], "a zero threshold keeps the top detections"
    for det in row["detections"]:
        x1, y1, x2, y2 = det["box"]
        assert 0 <= x1 <= x2 <= 2 * size and 0 <= y1 <= y2 <= 3 * size
        assert det["label"] in meta["class_names"]


def _retrain_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m rlnas.retrain ARGS`` as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "rlnas.retrain", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_retrain_names_a_run_dir_name_too_long_for_the_system(tmp_path):
    proc = _retrain_cli(f"arch={tmp_path}/best_arch.json", f"hydra.run.dir={tmp_path / ('a' * 300)}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("cannot write the retrain's files there (File name too long)")


def test_a_second_retrain_into_a_folder_another_is_writing_is_refused(tmp_path):
    """Two retrains into one folder both passed the "already holds a retrained model" check before either wrote,
    and each wrote over the other's files (one's model.pt beside the other's model.onnx), both exit 0."""
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from rlnas.sweep.jobs import lock_run_dir; lock_run_dir({str(out)!r}); print('held')"
         "; import sys; sys.stdout.flush(); sys.stdin.read()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"  # a retrain still writing there
        proc = _retrain_cli(f"arch={tmp_path}/nope.json", f"hydra.run.dir={out}")
    finally:
        holder.communicate("", timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f"rlnas.retrain: error: {out} is in use by another rlnas run (pid {holder.pid}); wait for it to end or "
        "choose another directory"
    )
    assert sorted(p.name for p in out.iterdir()) == [".rlnas.lock"]  # nothing of the second start landed


def test_retrain_cli_reports_a_missing_arch_in_one_line(tmp_path):
    proc = _retrain_cli(f"arch={tmp_path}/nope.json", f"hydra.run.dir={tmp_path}/out")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"rlnas.retrain: error: arch={tmp_path}/nope.json: no such file (pass a search run's dir or its best_arch.json)"
    )


def test_retrain_takes_a_sweep_jobs_pick_whose_path_holds_equals_signs_and_commas(tmp_path):
    # Hydra's grammar read the job dir's '=' and ',': "mismatched input '=' expecting <EOF>".
    job = tmp_path / "0_+task=mnist1d,seed=0"
    proc = _retrain_cli(f"arch={job}/nope.json", f"hydra.run.dir={tmp_path}/out,a=b")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"rlnas.retrain: error: arch={job}/nope.json: no such file (pass a search run's dir or its best_arch.json)"
    )


def test_retrain_takes_a_search_run_dir_for_its_pick(tmp_path):
    from rlnas.retrain import load_run

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="a directory without best_arch.json"):
        load_run(str(run), None)
    (run / "best_arch.json").write_text(json.dumps({"arch": [0, 1], "task": "classification"}))
    (run / "config.yaml").write_text("seed: 3\ntask: {name: classification}\nspace: {num_layers: 2}\n")
    arch, payload, cfg, run_dir = load_run(str(run), None)
    assert arch == [0, 1] and run_dir == run and cfg.seed == 3
    # A table run's pick: "not a search config (needs 'space' and 'task')" said nothing of why.
    (run / "config.yaml").write_text("seed: 3\nbenchmark: {name: toy}\n")
    with pytest.raises(ValueError, match="a \\+benchmark run looks architectures up in a table"):
        load_run(str(run), None)


def test_retrain_names_a_run_dir_it_cannot_write_before_hydra(tmp_path):
    # Hydra made the folder itself and failed with an OSError traceback (a read-only disk, a file on the way).
    (tmp_path / "a_file").write_text("mine")
    proc = _retrain_cli(f"arch={tmp_path}/nope.json", f"hydra.run.dir={tmp_path}/a_file/out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"rlnas.retrain: error: hydra.run.dir={tmp_path}/a_file/out: cannot write the retrain's files there "
        "(Not a directory)"
    )


def test_retrain_cli_reports_an_unknown_key_in_one_line(tmp_path):
    # Hydra said "Could not override 'int8.calibration': Key 'int8' is not in struct": the settings there are listed
    proc = _retrain_cli(f"arch={tmp_path}/nope.json", "int8.calibration=5")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rlnas.retrain: error: int8.calibration is not a setting; allowed: arch, compress, device, export, init, "
        "prune, quantize, run_config, seed, threads, train"
    ]


def test_an_unknown_retrain_setting_lists_the_settings_of_its_section(tmp_path):
    from rlnas.retrain import conf_dir
    from rlnas.utils.errors import composition_error, unknown_key_message

    argv = [f"arch={tmp_path}/nope.json", "train.epoch=5"]
    message = composition_error(conf_dir(), "retrain", argv)
    assert unknown_key_message(conf_dir(), "retrain", argv, message).startswith(
        "train.epoch is not a setting; allowed: augment, batch_size, epochs,"
    )
    assert unknown_key_message(conf_dir(), "retrain", argv, "another error") == "another error"


@pytest.mark.parametrize(
    "override, message",
    [
        ("seed=-1", "seed must be a whole number in 0..4294967295 (2**32 - 1), got -1"),
        # beyond 64 bits torch said "Overflow when unpacking long long", naming nothing
        (
            "seed=99999999999999999999",
            "seed must be a whole number in 0..4294967295 (2**32 - 1), got 99999999999999999999",
        ),
        # checked whether or not this run compresses: a value no run can use is a typo to report
        ("prune.amount=1", "prune.amount must be in (0, 1), got 1"),
        ("prune.finetune_epochs=-1", "prune.finetune_epochs must be a whole number >= 0, got -1"),
        ("quantize.calibration_samples=0", "quantize.calibration_samples must be a whole number >= 1, got 0"),
        ("+calibration=64", "calibration is not a retrain setting; allowed: ['arch', 'compress'"),
        # "maybe" exported by truthiness; threads=-1 was torch's traceback, 0 and 1.5 silently torch's default
        ("export.onnx=maybe", "export.onnx must be true or false, got 'maybe'"),
        ("export.torchscript=0", "export.torchscript must be true or false, got 0"),
        ("threads=-1", "threads must be a whole number >= 1 or null, got -1"),
        ("threads=0", "threads must be a whole number >= 1 or null, got 0"),
        ("threads=1.5", "threads must be a whole number >= 1 or null, got 1.5"),
    ],
)
def test_retrain_settings_no_run_can_use_are_refused_before_training(classification_run, tmp_path, override, message):
    _, report = classification_run
    with pytest.raises(ValueError, match=re.escape(message)):
        retrain(_retrain_cfg(Path(report["source"]), override), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_retrain_names_the_config_whose_space_the_arch_does_not_fit(tmp_path):
    """run_config= of another search's space said "architecture has 21 decisions, the space RNNCellSpace
    expects 11", naming neither the arch nor the config."""
    run = _search_run(tmp_path, "classification")
    other = _search_run(tmp_path, "sequence")
    cfg = _retrain_cfg(run / "best_arch.json", "train.epochs=1", f"run_config={other / 'config.yaml'}")
    with pytest.raises(ValueError, match=re.escape(f"(the space of run_config={other / 'config.yaml'})")) as err:
        retrain(cfg, tmp_path / "out")
    assert str(err.value).startswith(f"arch={run / 'best_arch.json'}: architecture has 21 decisions")


def test_retrain_names_a_description_that_is_not_text(tmp_path):
    """'description': 5 in best_arch.json was an AttributeError traceback ('int' has no 'startswith')."""
    run = _search_run(tmp_path, "classification")
    payload = json.loads((run / "best_arch.json").read_text())
    (run / "best_arch.json").write_text(json.dumps({**payload, "description": 5}))
    with pytest.raises(ValueError, match=re.escape(f"{run / 'best_arch.json'}: 'description' must be text, got 5")):
        retrain(_retrain_cfg(run / "best_arch.json", "train.epochs=1"), tmp_path / "out")


def test_retrain_refuses_a_best_arch_whose_decoded_choices_were_edited_apart_from_its_arch(tmp_path):
    """'decoded' is what a reader sees and edits; the retrain trained 'arch' and said nothing of the edit."""
    run = _search_run(tmp_path, "classification")
    payload = json.loads((run / "best_arch.json").read_text())
    decoded = instantiate(OmegaConf.load(run / "config.yaml").space, _convert_="all").decode(payload["arch"])
    assert decoded["layer0/op"] == "conv3x3"  # a search writes it so, and its file retrains (test_sequence.py)
    payload["decoded"] = {**decoded, "layer0/op": "avgpool3x3"}
    (run / "best_arch.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="its 'decoded' says layer0/op='avgpool3x3' but its 'arch' encodes") as err:
        retrain(_retrain_cfg(run / "best_arch.json", "train.epochs=1"), tmp_path / "out")
    assert "(1 decisions differ)" in str(err.value) and not (tmp_path / "out" / "model.pt").exists()
    (run / "best_arch.json").write_text(json.dumps({**payload, "decoded": "conv3x3"}))
    with pytest.raises(ValueError, match="'decoded' must map each decision to its choice, got 'conv3x3'"):
        retrain(_retrain_cfg(run / "best_arch.json", "train.epochs=1"), tmp_path / "out")


def test_retrain_refuses_an_arch_found_in_another_space(tmp_path):
    run = _search_run(tmp_path, "classification")
    payload = json.loads((run / "best_arch.json").read_text())
    # Same number of decisions, described in another space's ops: it would retrain a different network.
    payload["description"] = "zeroconv | zeroconv | zeroconv | zeroconv | zeroconv | zeroconv"
    (run / "best_arch.json").write_text(json.dumps(payload))
    with pytest.raises(
        ValueError,
        match=r"was found in another space \(zeroconv \| .*\) than the one its "
        r"config.yaml describes \(conv3x3",
    ):
        retrain(_retrain_cfg(run / "best_arch.json", "train.epochs=1"), tmp_path / "out")
    assert not (tmp_path / "out" / "model.pt").exists()


def test_predict_names_an_output_it_cannot_write_in_one_line(classification_run, tmp_path, capsys, monkeypatch):
    import errno

    from PIL import Image

    import rlnas.predict
    import rlnas.utils
    import rlnas.utils.rundir

    out, _ = classification_run
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "a.png")
    args = [f"model={out}", f"input={tmp_path / 'a.png'}", f"output={tmp_path / 'p.json'}"]

    # A disk that fills up while the predictions run: OSError's traceback after the printed rows.
    def full(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(rlnas.utils, "write_json_atomic", full)
    assert predict_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"rlnas.predict: error: {tmp_path / 'p.json'}: No space left on device; nothing written before it is lost"
    ]
    # A folder that cannot be written (a read-only disk): named before any work.
    monkeypatch.setattr(rlnas.utils.rundir.os, "access", lambda path, mode: False)
    assert predict_main(args) == 2
    assert "p.json: cannot write the predictions there (not writable)" in capsys.readouterr().err
    # Names the system cannot take (longer than 255 bytes), as input or output: one line each.
    long = tmp_path / ("a" * 300)
    for bad in ([*args[:2], f"output={long}.json"], [args[0], f"input={long}.png"]):
        assert predict_main(bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rlnas.predict: error:") and "too long" in err[0], err


def test_a_trained_model_given_as_arch_is_named_as_such(classification_run):
    """Its model.json holds an arch too, but no search's config beside it: "config.yaml is missing" misled."""
    from rlnas.retrain import load_run

    out, _ = classification_run
    for arch in (out, out / "model.json"):
        with pytest.raises((ValueError, FileNotFoundError), match="a trained model, not a search's pick"):
            load_run(str(arch), None)


def test_predict_with_stdout_closed_needs_an_output_file(classification_run, tmp_path, capsys, monkeypatch):
    """``python -m rlnas.predict ... >&-``: the rows printed would vanish, and the exit code would say success."""
    from PIL import Image

    out, _ = classification_run
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "a.png")
    # A key given twice: the last one silently won (input=a.png input=b.png predicted b.png alone).
    twice = [f"model={out}", f"input={tmp_path / 'a.png'}", f"input={tmp_path / 'a.png'}"]
    assert predict_main(twice) == 2
    assert "input= is given 2 times; give it once (input= takes a folder of files)" in capsys.readouterr().err
    # The folder hint is for input= alone: model= given twice said "(input= takes a folder)" too.
    assert predict_main([f"model={out}", f"model={out}", f"input={tmp_path / 'a.png'}"]) == 2
    assert capsys.readouterr().err.strip().endswith("model= is given 2 times; give it once")
    monkeypatch.setattr(sys, "stdout", None)  # what Python makes of a closed standard output
    assert predict_main([f"model={out}", f"input={tmp_path / 'a.png'}"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rlnas.predict: error: standard output is closed; pass output=FILE for the predictions"
    )
    assert predict_main([f"model={out}", f"input={tmp_path / 'a.png'}", f"output={tmp_path / 'p.json'}"]) == 0
    assert len(json.loads((tmp_path / "p.json").read_text())) == 1


def test_predict_makes_the_output_folder_and_refuses_other_models(classification_run, tmp_path, capsys):
    from PIL import Image

    out, _ = classification_run
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "a.png")
    target = tmp_path / "new" / "deeper" / "preds.json"
    assert predict_main([f"model={out}", f"input={tmp_path / 'a.png'}", f"output={target}"]) == 0
    assert len(json.loads(target.read_text())) == 1
    assert predict_main([f"model={out}", f"input={tmp_path / 'a.png'}", f"output={tmp_path}"]) == 2
    assert f"output={tmp_path} is a directory" in capsys.readouterr().err
    # A model of a task this entry point does not serve.
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.onnx").write_bytes((out / "model.onnx").read_bytes())
    (other / "model.json").write_text(json.dumps({"task": "segmentation", "in_channels": 8, "class_names": ["0"]}))
    assert predict_main([f"model={other}", f"input={tmp_path / 'a.png'}"]) == 2
    assert "model.json: task='segmentation' is not a task rlnas.predict serves (classification, detection, mnist1d" in (
        capsys.readouterr().err
    )


def test_predict_stops_quietly_when_its_reader_stops(classification_run, tmp_path):
    """``rlnas.predict ... | head -1`` ended in a BrokenPipeError traceback at the second row."""
    out, _ = classification_run
    image = tmp_path / "000.png"
    Image.new("L", (8, 8), color=40).save(image)
    for i in range(1, 1000):  # rows beyond what a pipe buffers (64 KiB), so that a write meets the closed end
        os.link(image, tmp_path / f"{i:03d}.png")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    command = [sys.executable, "-m", "rlnas.predict", f"model={out}", f"input={tmp_path}"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader stops, as head -1 does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and json.loads(first)["file"].endswith("000.png")
    assert err == "", err


def test_predict_never_writes_over_its_inputs_or_foreign_files(classification_run, tmp_path, capsys):
    from PIL import Image

    out, _ = classification_run
    image = tmp_path / "digit.png"
    Image.new("L", (8, 8)).save(image)
    onnx_bytes, image_bytes = (out / "model.onnx").read_bytes(), image.read_bytes()
    for target in (image, out / "model.onnx", out / "model.json"):
        assert predict_main([f"model={out}", f"input={image}", f"output={target}"]) == 2
        assert "is one of this run's inputs" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    assert predict_main([f"model={out}", f"input={image}", f"output={notes}"]) == 2
    assert "not a predictions file" in capsys.readouterr().err and notes.read_text() == "my notes"
    assert (out / "model.onnx").read_bytes() == onnx_bytes and image.read_bytes() == image_bytes
    preds = tmp_path / "preds.json"
    assert predict_main([f"model={out}", f"input={image}", f"output={preds}"]) == 0
    assert predict_main([f"model={out}", f"input={image}", f"output={preds}"]) == 0  # its own file: rewritten
    assert json.loads(preds.read_text())[0]["file"].endswith("digit.png")


def test_a_joint_search_pick_is_retrained_with_the_settings_it_was_searched_with(tmp_path):
    """A trial search's pick carries its train/* decisions; the trials' recipe and they reach the retraining."""
    from rlnas.retrain import given_train_keys

    run = _search_run(tmp_path, "classification")
    cfg = OmegaConf.load(run / "config.yaml")
    cfg.trials = {"train": {"weight_decay": 0.002, "nesterov": False, "epochs": 7}}
    OmegaConf.save(cfg, run / "config.yaml")
    payload = json.loads((run / "best_arch.json").read_text())
    description = " | ".join(["conv3x3"] * 6) + " train/lr=0.02 train/batch_size=16 train/dropout=0.2"
    payload.update(description=description, train={"lr": 0.02, "batch_size": 16, "dropout": 0.2})
    (run / "best_arch.json").write_text(json.dumps(payload))
    quick = ("train.epochs=1", "export.onnx=false", "export.torchscript=false")

    report = retrain(_retrain_cfg(run / "best_arch.json", *quick), tmp_path / "a")
    assert {k: report["recipe"][k] for k in ("epochs", "lr", "batch_size", "weight_decay")} == {
        "epochs": 1,  # the retrain recipe's length, not the trials'
        "lr": 0.02,
        "batch_size": 16,
        "weight_decay": 0.002,
    }
    assert report["recipe"]["nesterov"] is False
    assert report["searched_settings"] == {
        "weight_decay": 0.002,
        "nesterov": False,
        "lr": 0.02,
        "batch_size": 16,
        "dropout": 0.2,
    }
    text = (tmp_path / "a" / "report.md").read_text()
    assert "- Training settings from the search: weight_decay 0.002, nesterov False, lr 0.02, batch_size 16" in text
    assert "- Validation during the search (trained on its own):" in text
    # A value given on the command line wins over the searched one.
    given = given_train_keys(["train.lr=0.1", "++train.batch_size=8", "compress=none"])
    assert given == {"lr", "batch_size"}
    cfg_given = _retrain_cfg(run / "best_arch.json", *quick, "train.lr=0.1", "train.batch_size=8")
    report = retrain(cfg_given, tmp_path / "b", given=given)
    assert (report["recipe"]["lr"], report["recipe"]["batch_size"]) == (0.1, 8)
    # Settings that are not training settings: the file is named.
    payload["train"] = {"lr": 0.02, "rm -rf": 1}
    (run / "best_arch.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=r"best_arch.json: 'train' must map training settings"):
        retrain(_retrain_cfg(run / "best_arch.json", *quick), tmp_path / "c")
    # Settings edited after the search (the description still names the searched ones): refused, said so.
    payload["train"] = {"lr": 0.5, "batch_size": 16, "dropout": 0.2}
    (run / "best_arch.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=r"its 'train' settings \(train/lr=0.5 .*the file was edited after the search"):
        retrain(_retrain_cfg(run / "best_arch.json", *quick), tmp_path / "d")


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.batch_size=2.5", "train.batch_size must be a whole number >= 1, got 2.5"),
        ("train.lr=inf", "train.lr=inf and train.lr_min=0.0005 need"),
        ("train.weight_decay=-1", "train.weight_decay must be a finite number >= 0, got -1"),
        ("train.momentum=1.0", "train.momentum must be in [0, 1), got 1.0"),
        # each step would scale the weights by 1 - lr * weight_decay < 0: NaN, blamed on the learning rate
        ("train.weight_decay=1e30", "train.weight_decay=1e+30 times train.lr="),
        ("train.momentum=0", "train.nesterov=true needs train.momentum > 0"),
        ("train.grad_clip=-3", "train.grad_clip must be a finite number >= 0 (0: no clipping), got -3"),
        ("train.augment=yes", "train.augment must be true or false, got 'yes'"),
        # finite, but the optimiser's step in float32 overflowed ("cannot be converted to type float")
        ("train.lr=1e300", "train.lr=1e+300 is past float32's range (3.4e38)"),
    ],
)
def test_a_recipe_that_would_train_wrongly_or_fail_midway_is_refused_up_front(override, message):
    """Each of these trained a flipped gradient, crashed in torch after the data was loaded, or read 'yes' as true."""
    from rlnas.tasks.training import make_recipe

    cfg = _retrain_cfg("x.json", override)
    search = OmegaConf.create({"batch_size": 32, "optimizer": "sgd", "lr": 0.05, "lr_min": 0.0005})
    search.update({"momentum": 0.9, "nesterov": True, "grad_clip": 5.0, "augment": False})
    with pytest.raises(ValueError) as info:
        make_recipe(cfg.train, search)
    assert message in str(info.value)


def test_predict_refuses_nan_scores_instead_of_reporting_a_class(classification_run, tmp_path, capsys):
    import onnx
    from onnx import numpy_helper
    from PIL import Image

    out, _ = classification_run
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "model.json").write_text((out / "model.json").read_text())
    graph = onnx.load(out / "model.onnx")
    for init in graph.graph.initializer:  # a model folder whose weights went NaN (a diverged or damaged file)
        values = numpy_helper.to_array(init)
        if values.dtype.kind == "f" and values.size > 1:
            init.CopyFrom(numpy_helper.from_array(np.full_like(values, np.nan), init.name))
    onnx.save(graph, damaged / "model.onnx")
    images = [tmp_path / f"{i}.png" for i in range(3)]
    for image in images:
        Image.new("L", (8, 8), color=40).save(image)
    preds = tmp_path / "preds.json"
    # It answered class "8" with probability NaN and wrote bare NaN into the JSON file.
    assert predict_main([f"model={damaged}", f"input={tmp_path}", f"output={preds}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"rlnas.predict: error: {damaged / 'model.onnx'}: gives NaN or inf scores for {images[0]}; "
        "its weights or this input are not usable"
    )
    assert not preds.exists()
    assert predict_main([f"model={out}", f"input={tmp_path}", f"output={preds}"]) == 0  # the sound model still serves


def _hydra_record(folder, *files: str):
    """A folder as an earlier Hydra job left it: its ``.hydra/`` record beside ``files``."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("- seed=3\n")
    for name in files:
        (folder / name).write_text("{}")
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_retrain_and_search_leave_each_others_folders_untouched(tmp_path):
    """Neither command starts in a folder holding another job's results: Hydra would rewrite its record."""
    search = tmp_path / "search"
    search_files = _hydra_record(search, "best_arch.json", "history.csv")
    model = tmp_path / "model"
    model_files = _hydra_record(model, "model.json", "report.md")
    victim = tmp_path / "victim.log"
    victim.write_text("precious")
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "retrain.log").symlink_to(victim)
    proc = _retrain_cli(f"arch={search}", f"hydra.run.dir={search}", "train.epochs=1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"hydra.run.dir={search} already holds an earlier run (best_arch.json" in proc.stderr
    from rlnas.retrain import _used_run_dir  # the same check, without starting Python again for each folder

    assert "already holds an earlier run (model.json" in _used_run_dir(str(model))
    assert "retrain.log is a symlink" in _used_run_dir(str(planted))
    # A retrain sweep names its jobs 0, 1, ...: a second sweep into the folder of a first rewrote job 0's
    # record with its own settings, beside the first sweep's model, before job 0 refused the folder.
    sweep = tmp_path / "sweep"
    sweep_files = _hydra_record(sweep / "0", "model.json", "model.pt")
    from rlnas.retrain import _used_sweep_dir  # what retrain's entry point runs on -m, before Hydra

    assert f"hydra.sweep.dir={sweep} already holds an earlier sweep (0/model.json" in _used_sweep_dir(str(sweep))
    assert _used_sweep_dir(str(tmp_path / "new_sweep")) is None
    assert {p: p.read_bytes() for p in sorted(sweep.rglob("*")) if p.is_file()} == sweep_files
    from rlnas.cli import refuse_earlier_run  # what the search runs before Hydra, on a model folder

    with pytest.raises(ValueError, match=re.escape(f"hydra.run.dir={model} already holds an earlier run (model.json")):
        refuse_earlier_run(str(model))
    assert {p: p.read_bytes() for p in sorted(search.rglob("*")) if p.is_file()} == search_files
    assert {p: p.read_bytes() for p in sorted(model.rglob("*")) if p.is_file()} == model_files
    assert victim.read_text() == "precious"


def test_the_torchscript_export_prints_no_deprecation_warning(tmp_path):
    """torch marks torch.jit.save deprecated: every retrain printed a FutureWarning that asks nothing of a user."""
    import warnings

    from rlnas.export.formats import export_torchscript, load_torchscript

    model, example = torch.nn.Linear(4, 2), torch.zeros(1, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the export here
        export_torchscript(model, example, tmp_path / "model.ts")
    assert torch.allclose(load_torchscript(tmp_path / "model.ts")(example), model(example))


def test_a_retrain_under_torchrun_is_refused_before_any_process_writes(tmp_path, monkeypatch, capsys):
    from rlnas.retrain import main as retrain_main

    # Each of torchrun's processes retrained alone into one run dir: "model.ts: File exists" on one of them.
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["rlnas.retrain", "arch=x.json", f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as info:
        retrain_main()
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "rlnas.retrain: error: a retrain trains one network in one process; start it without torchrun"
    )
    assert not (tmp_path / "run").exists()


def test_default_run_and_sweep_dirs_are_claimed_under_outputs_and_a_file_there_is_named(tmp_path, monkeypatch):
    from rlnas.utils.rundir import new_run_dir

    conf = ROOT / "conf"
    with initialize_config_dir(str(conf), version_base="1.3"):
        cfg = compose("retrain", overrides=["arch=x"], return_hydra_config=True)
    # a retrain sweep went to Hydra's multirun/ in the working directory, beside the project
    assert OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["dir"].startswith("outputs/retrain_sweeps/")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").write_text("a file")
    # NotADirectoryError traceback from the retrain; "outputs/runs/DATE: Not a directory" from the search
    for config, overrides in (("retrain", ["arch=x"]), ("config", ["+task=classification"])):
        with pytest.raises(ValueError, match=r"\(outputs is a file, where that folder goes\); move it away or set"):
            new_run_dir(conf, config, overrides)
    assert (tmp_path / "outputs").read_text() == "a file"


def test_predict_takes_paths_as_typed_and_never_reads_a_pipe_to_judge_its_output(tmp_path):
    from rlnas.predict import _check_output, parse_args

    # YAML read input=- as a list ("Cannot convert 'ListConfig' to string") and output=1e3 as 1000.0
    parsed = parse_args(["model=m", "input=-", "output=1e3"])
    assert (parsed.input, parsed.output) == ("-", "1e3")
    assert parse_args(["model=m", "input=x", "output=null"]).output is None
    # device=cuda was "device: Key 'device' not in 'PredictConfig'": no word of the settings there are
    with pytest.raises(PredictError, match="device is not a setting of rlnas.predict; allowed: model, input, output"):
        parse_args(["model=m", "input=x", "device=cuda"])
    # output=/dev/stdout on a pipe: reading it to tell whose file it was blocked forever
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(PredictError, match="is not a regular file \\(a link, device or pipe\\)"):
        _check_output(fifo, str(fifo), [])


def test_retrain_refuses_training_settings_added_to_a_pick_and_metrics_that_are_not_numbers(tmp_path):
    """'train' added to a weight-sharing search's pick was named "found in another space" (the same
    architecture twice); a 'metrics' value of null failed the report after training (TypeError)."""
    run = _search_run(tmp_path, "classification")
    payload = json.loads((run / "best_arch.json").read_text())
    payload["description"] = " | ".join(["conv3x3"] * 6)  # as the search wrote it: no training settings
    (run / "best_arch.json").write_text(json.dumps({**payload, "train": {"lr": 0.5}}))
    with pytest.raises(
        ValueError,
        match=r"its 'train' settings \(train/lr=0.5\) differ from those its description "
        r"names \(none\); the file was edited after the search",
    ):
        retrain(_retrain_cfg(run / "best_arch.json", "train.epochs=1"), tmp_path / "out")
    (run / "best_arch.json").write_text(json.dumps({**payload, "metrics": {"val_accuracy": None}}))
    with pytest.raises(ValueError, match=r"best_arch.json: 'metrics' must map metric names to numbers"):
        retrain(_retrain_cfg(run / "best_arch.json", "train.epochs=1"), tmp_path / "out")
    # A key written twice (an edit below the original) is malformed, not the last one silently.
    text = json.dumps(payload)
    (run / "best_arch.json").write_text(text[:-1] + ', "arch": [0]}')
    with pytest.raises(ValueError, match=r"key 'arch' appears twice in one object"):
        retrain(_retrain_cfg(run / "best_arch.json", "train.epochs=1"), tmp_path / "out")
    assert not any((tmp_path / "out").glob("*"))  # nothing written before the refusals


def test_compression_settings_without_their_step_are_refused():
    """prune.amount=0.3 without compress=prune retrained and pruned nothing, without a word."""
    from rlnas.retrain import check_compression_overrides

    with pytest.raises(ValueError, match=re.escape("prune.amount=0.3: read with compress=prune or compress=all only")):
        check_compression_overrides("none", ["arch=x", "prune.amount=0.3"])
    with pytest.raises(ValueError, match=re.escape("quantize.calibration_samples=9: read with compress=int8 or")):
        check_compression_overrides("prune", ["quantize.calibration_samples=9"])
    check_compression_overrides("all", ["prune.amount=0.3", "quantize.calibration_samples=9"])
    check_compression_overrides("int8", ["quantize.calibration_samples=9", "train.epochs=1"])
    # compress=quantize (a step's name, not a compress value) is the mistake to name, not the setting beside it.
    with pytest.raises(ValueError, match=re.escape("compress='quantize' is unknown; allowed: ['none', 'int8'")):
        check_compression_overrides("quantize", ["quantize.calibration_samples=9"])


def test_a_training_where_stderr_is_no_terminal_logs_its_progress(monkeypatch, caplog):
    """Its bar is off there (a log file, nohup, a cluster job): 60 epochs of retraining said nothing until the end."""
    from rlnas.tasks.training import Recipe, train
    from rlnas.utils import timing
    from tools._common import load_config

    cfg = load_config(["+task=classification", "task.data.limit=200"])
    task = instantiate(cfg.task, _convert_="all")
    data = task.load_data(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    recipe = Recipe(3, 32, "sgd", 0.05, 0.0005, 0.9, True, 0.0, 5.0, False)
    monkeypatch.setattr(timing, "PROGRESS_LINE_S", 0.0)  # a line after every epoch
    with caplog.at_level("INFO", logger="rlnas.tasks.training"):
        train(network, task, data, recipe, seed=0, desc="retrain")
    lines = [r.getMessage() for r in caplog.records if r.name == "rlnas.tasks.training"]
    assert [line.split(", loss")[0] for line in lines] == [
        "retrain: epoch 1/3",
        "retrain: epoch 2/3",
        "retrain: epoch 3/3",
    ]
    assert re.fullmatch(
        r"retrain: epoch 3/3, loss \d+\.\d{3}, val_accuracy [01]\.\d{3}, 0:\d\d elapsed, ETA 0:00", lines[2]
    )
    caplog.clear()
    monkeypatch.setattr(timing, "PROGRESS_LINE_S", 30.0)  # a training of seconds prints none
    with caplog.at_level("INFO", logger="rlnas.tasks.training"):
        train(network, task, data, recipe, seed=0, desc="retrain")
    assert not [r for r in caplog.records if r.name == "rlnas.tasks.training"]


@pytest.mark.parametrize(
    "sweep, message",
    [
        # seed 0 was retrained in full, then the sweep stopped on "abc"
        (
            ["seed=0,abc"],
            "seed must be a whole number in 0..4294967295 (2**32 - 1), got 'abc' (in the sweep's job with",
        ),
        (["prune.amount=0.5,2"], "prune.amount must be in (0, 1), got 2 (in the sweep's job with prune.amount=2)"),
        # Hydra's traceback ("BasicSweeper does not support sweep type : INTERVAL_SWEEP")
        (["train.lr=interval(0.01,0.1)"], "train.lr=interval(0.01,0.1): the sweeper sweeps lists, range()"),
        # "Launching 0 jobs", exit 0: the retrain has no config groups to glob
        (["compress=glob(*)"], "compress=glob(*): glob() picks options of a config group, and there are none here"),
        (["seed=range(0,3)", "train.lr=0.1,0.2"], None),
    ],
)
def test_each_value_of_a_retrain_sweep_is_checked_before_its_first_job(sweep, message):
    from rlnas.retrain import _sweep_error

    found = _sweep_error(["-m", "arch=run/best_arch.json", *sweep])
    assert found == message if message is None else found.startswith(message), found
