"""The analysis tools that read a finished run (tools/score_run.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli


def _tool(script: str, *args: str) -> subprocess.CompletedProcess:
    """Runs ``tools/SCRIPT`` as a user does, from the checkout."""
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / script), *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def _score_run(*args: str) -> subprocess.CompletedProcess:
    return _tool("score_run.py", *args)


def test_score_run_reproduces_the_best_score_and_scores_random_archs(smoke_run, tmp_path):
    run, _ = smoke_run
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    out = tmp_path / "scores.json"
    proc = _score_run("--run-dir", str(run), "--archs", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = json.loads(out.read_text())
    recorded = json.loads((run / "best_arch.json").read_text())
    # The same weights and the same split give the run's own final score back.
    assert scores["best"]["arch"] == recorded["arch"]
    assert scores["best"]["metrics"]["accuracy"] == pytest.approx(recorded["metrics"]["val_accuracy"], abs=1e-6)
    assert len(scores["random"]) == 3
    assert all(0.0 <= r["metrics"]["accuracy"] <= 1.0 for r in scores["random"])
    assert "share of random architectures below the best: accuracy" in proc.stdout
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before  # the run dir is left alone
    # The run's own best_arch.json as --out was replaced by the scores (the next score_run: KeyError 'arch').
    proc = _score_run("--run-dir", str(run), "--archs", "3", "--out", str(run / "best_arch.json"))
    assert proc.returncode == 2
    assert "best_arch.json exists and is not a file this tool wrote" in proc.stderr.strip().splitlines()[-1]
    assert json.loads((run / "best_arch.json").read_text()) == recorded


def test_score_run_names_what_is_missing(tmp_path):
    proc = _score_run("--run-dir", str(tmp_path))
    assert proc.returncode == 2
    assert f"--run-dir {tmp_path}: no best_arch.json there" in proc.stderr


def test_rank_study_statistics():
    import numpy as np

    from tools.rank_study import mean_ceiling, noise_ceiling, top_precision, top_truth

    truth = np.arange(20.0)
    assert top_precision(truth, truth) == 1.0  # top 2 of 20 by the truth itself
    assert top_precision(-truth, truth) == 0.0
    # What retraining the scorer's top 2 gives: the best two, or the worst two.
    assert top_truth(truth, truth) == 18.5 and top_truth(-truth, truth) == 0.5
    # Ties at the boundary count as in the truth's top: every tied arch is as good as the k-th.
    assert top_precision(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0, 1.0]), fraction=0.25) == 0.0
    assert top_precision(np.array([0.0, 3.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0, 1.0]), fraction=0.25) == 1.0
    # Identical seeds: ceiling 1; a mean of more runs is easier to agree with than one run.
    assert noise_ceiling(np.stack([truth, truth, truth], 1)) == pytest.approx(1.0)
    assert mean_ceiling(1.0, 3) == pytest.approx(1.0) and mean_ceiling(0.0, 3) == 0.0
    assert 0.283 < mean_ceiling(0.283, 3) < mean_ceiling(0.283, 5) < 1.0


def test_few_shot_and_fine_tuned_copies_score_their_own_paths_and_leave_the_supernet_alone(tmp_path):
    import math

    import torch
    from hydra import compose, initialize_config_dir

    from rlnas.config import CONF_DIR
    from rlnas.evaluators.supernet import calibration_inputs
    from rlnas.search.builder import build_search
    from tools.rank_study import few_shot_scores, finetuned_scores, validation_loss

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+task=classification", "+experiment=smoke"])
    search = build_search(cfg, tmp_path / "run", progress=False)
    before = {k: v.clone() for k, v in search.model.state_dict().items()}
    archs = [(k, *search.space.sample(__import__("numpy").random.default_rng(k))[1:]) for k in range(4)]
    scores = few_shot_scores(search, archs, decision=0, epochs=1, images=32)
    assert len(scores) == 2  # the split and its one-shot control
    for values in scores.values():
        assert len(values) == len(archs) and all(math.isfinite(v) for v in values)  # every choice got its copy
    assert all(torch.equal(v, search.model.state_dict()[k]) for k, v in before.items())
    assert search.evaluator.model is search.model
    # Fine-tuning 0 steps scores the copy exactly as the supernet scores; 5 steps change the scores, not the supernet.
    evaluator = search.evaluator
    evaluator.set_calibration(calibration_inputs(search.data.train, 32, 0))
    with torch.no_grad():
        plain = [evaluator.evaluate_full(a).metrics["accuracy"] for a in archs]
        plain_loss = [-validation_loss(search, a) for a in archs]
    assert list(finetuned_scores(search, archs, steps=0, images=32, loss=False).values()) == [plain]
    tuned = finetuned_scores(search, archs, steps=5, images=32, loss=True)
    assert len(tuned) == 2 and all(len(v) == len(archs) for v in tuned.values())
    assert all(a != b for a, b in zip(tuned[next(k for k in tuned if k.endswith("-loss"))], plain_loss))
    assert all(torch.equal(v, search.model.state_dict()[k]) for k, v in before.items())
    assert search.evaluator.model is search.model


@pytest.mark.slow
def test_rank_study_runs_on_a_finished_search(tmp_path):
    run = tmp_path / "run"
    proc = run_cli("+experiment=smoke", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "study"
    args = [
        "--run-dir",
        str(run),
        "--label",
        "smoke",
        "--archs",
        "5",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--calibrate",
        "64",
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "rank_study.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = json.loads((out / "study.json").read_text())
    assert len(study["standalone"]) == 5 and all(len(v) == 2 for v in study["standalone"])
    variant = study["variants"]["smoke"]
    assert set(variant["scores"]) == {"batch statistics", "BN calibrated (64 train images)"}
    assert all(len(s) == 5 for s in variant["scores"].values())
    assert "| smoke | 1 | batch statistics |" in (out / "ranking.md").read_text()
    assert (out / "ranking.png").stat().st_size > 0
    # The standalone trainings are cached: a second variant trains nothing again.
    cached = json.loads((out / "standalone.json").read_text())
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "rank_study.py"), *args[:2], "--label", "again", *args[4:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "standalone: 0 trainings to run" in proc.stdout
    assert json.loads((out / "standalone.json").read_text()) == cached
    assert set(json.loads((out / "study.json").read_text())["variants"]) == {"smoke", "again"}
    # More seeds train only the new one per arch and keep the earlier results.
    args[7] = "3"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "rank_study.py"), *args[:2], "--label", "more", *args[4:], "--loss"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    extended = json.loads((out / "standalone.json").read_text())
    assert set(extended) == set(cached) and len(cached) == 3  # test metric; val metric and loss of the same runs
    for key, before in cached.items():
        assert all(len(v) == 3 and v[:2] == before[a] for a, v in extended[key].items())
    study = json.loads((out / "study.json").read_text())
    assert all(len(v) == 3 for v in study["standalone"])
    assert set(study["val_ceiling"]) == {"accuracy", "-loss"}
    # The validation ceiling is Kendall's tau between the standalone runs' validation and test means.
    from scipy.stats import kendalltau

    test_key = next(k for k in extended if not k.endswith(("/val", "/val_loss")))
    val_means = [np.mean(extended[f"{test_key}/val"][str(a)]) for a in study["archs_list"]]
    expected = kendalltau(val_means, np.mean(study["standalone"], axis=1))[0]
    assert study["val_ceiling"]["accuracy"]["kendall_tau"] == pytest.approx(expected)
    assert len(study["synflow"]) == 5
    report = (out / "ranking.md").read_text()
    assert "| more | 1 | batch statistics, -loss + synflow |" in report and "SynFlow alone" in report
    assert "scored there (the mean of their 3 runs)" in report
    assert set(study["variants"]["more"]["scores"]) == {
        "batch statistics",
        "batch statistics, -loss",
        "BN calibrated (64 train images)",
        "BN calibrated (64 train images), -loss",
    }
    # A search run here can also be scored with its weights averaged over its last epochs.
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "rank_study.py"),
            "--label",
            "averaged",
            *args[4:],
            "--average-epochs",
            "2",
            "+experiment=smoke",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    averaged = json.loads((out / "study.json").read_text())["variants"]["averaged"]["scores"]
    assert len(averaged["weights averaged over the last 2 epochs, BN calibrated (64)"]) == 5
    # --report-only re-ranks what is stored without a search, and refuses a study made of other architectures.
    stored = json.loads((out / "study.json").read_text())
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "rank_study.py"), "--report-only", *args[4:], "+experiment=smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "study.json").read_text())["variants"].keys() == stored["variants"].keys()
    before = (out / "study.json").read_text()
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "rank_study.py"),
            "--report-only",
            "--archs",
            "4",
            *args[6:],
            "+experiment=smoke",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "rank_study.py: error: " in proc.stderr
    assert "holds another sample of architectures" in proc.stderr
    assert (out / "study.json").read_text() == before


def nb201_results(seeds: dict[int, float]) -> dict:
    """A small file in NAS-Bench-201's published layout: three architectures, cifar10 + cifar10-valid results."""
    archs = [
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ]
    infos = {}
    for i, _ in enumerate(archs):
        results = {}
        for seed, offset in seeds.items():
            results[("cifar10", seed)] = {
                "params": 0.1 * (i + 1),
                "flop": 10.0 * (i + 1),
                # An earlier epoch is there too: the last one counts.
                "eval_acc1es": {"ori-test@0": 10.0, "ori-test@199": 80.0 + 5 * i + offset},
            }
            results[("cifar10-valid", seed)] = {"eval_acc1es": {"x-valid@199": 70.0 + 5 * i + offset}}
        infos[i] = {"full": {"all_results": results}, "less": {"all_results": {}}}
    return {"meta_archs": archs, "arch2infos": infos, "evaluated_indexes": set(infos), "total_archs": len(archs)}


def test_nb201_converter_writes_the_table_the_benchmark_reads(tmp_path):
    import torch
    from hydra import compose, initialize_config_dir

    from rlnas.config import CONF_DIR

    torch.save(nb201_results({777: 1.0, 888: -0.5}), tmp_path / "NAS-Bench-201-v1_1-small.pth")
    out = tmp_path / "nb201.csv"
    proc = subprocess.run(
        [sys.executable, "tools/convert_nb201.py", str(tmp_path / "NAS-Bench-201-v1_1-small.pth"), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    rows = out.read_text().splitlines()
    assert rows[0] == "index,arch,cifar10_test_acc,cifar10_valid_acc,params_m,flops_m"
    assert len(rows) == 4
    # Read through the shipped benchmark config: the key template finds each converted row.
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+benchmark=nb201_cifar10", f"benchmark.path={out}"])
    from omegaconf import OmegaConf

    from rlnas.benchmarks.parts import benchmark_parts

    space, bench = benchmark_parts(OmegaConf.to_container(cfg.benchmark, resolve=True))
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    all_conv = tuple([ops.index("nor_conv_3x3")] * 6)
    mixed = tuple(
        ops.index(o)
        for o in ["nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect"]
    )
    # Mean over the two seeds of the last epoch, as a fraction: (90 + 1 + 90 - 0.5) / 2 / 100.
    assert bench.evaluate(all_conv).metrics["cifar10_test_acc"] == pytest.approx(0.9025)
    assert bench.evaluate(mixed).metrics["cifar10_test_acc"] == pytest.approx(0.8525)


def test_nb201_converter_names_what_the_file_lacks(tmp_path):
    import torch

    torch.save({"archs": []}, tmp_path / "other.pth")
    proc = subprocess.run(
        [sys.executable, "tools/convert_nb201.py", str(tmp_path / "other.pth"), "--out", str(tmp_path / "x.csv")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2  # a refusal, as a bad argument (it was 1)
    assert "convert_nb201.py: error: " in proc.stderr
    assert "not a NAS-Bench-201 results file (needs meta_archs and arch2infos)" in proc.stderr
    assert not (tmp_path / "x.csv").exists()


NB201_TABLE = ROOT.parent / "shared" / "benchmarks" / "nb201_cifar10_test.csv"


@pytest.mark.skipif(not NB201_TABLE.is_file(), reason="NAS-Bench-201 table not beside the checkout")
def test_proxy_check_ranks_published_cells_with_synflow(monkeypatch, capsys):
    from tools import proxy_check

    monkeypatch.setattr(sys, "argv", ["proxy_check.py", "--archs", "30", "--cells", "1"])
    proxy_check.main()
    rows = {
        line.split("|")[1].strip(): float(line.split("|")[2])
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| SynFlow") or line.startswith("| parameter")
    }
    # Untrained and without data, SynFlow still orders published accuracies well above chance.
    # ... and so does the parameter count (larger NAS-Bench-201 cells are more accurate on the whole).
    assert rows["SynFlow (untrained, no data)"] > 0.3 and rows["parameter count"] > 0.1
    monkeypatch.setattr(sys, "argv", ["proxy_check.py", "--archs", "8", "benchmark.path=/nonexistent/nb201.csv"])
    with pytest.raises(SystemExit, match="/nonexistent/nb201.csv"):
        proxy_check.main()


def test_show_samples_draws_one_row_per_class(tmp_path):
    from PIL import Image

    from tools.show_samples import main

    out = tmp_path / "grid.png"
    main(["--per-class", "3", "--scale", "2", "--out", str(out), "+task=cluttered_digits", "task.data.num_samples=600"])
    width, height = Image.open(out).size
    side = 24 * 2 + 2  # an image and its padding
    assert (width, height) == (3 * side + 2, 10 * side + 2)


def test_show_samples_draws_signals_as_lines_and_keeps_rows_to_one_class(tmp_path, capsys):
    from PIL import Image

    from tools.show_samples import main

    out = tmp_path / "signals.png"
    main(["--per-class", "3", "--out", str(out), "+task=mnist1d", "task.data.num_samples=2000"])
    assert "30 training signals of 10 classes, one panel per class" in capsys.readouterr().out
    width, height = Image.open(out).size
    assert width > 4 * height / 2 > 100  # 2 rows of 5 panels, not a strip one pixel high per signal
    # More per class than the rarest class has: every row still holds one class.
    grid = tmp_path / "grid.png"
    main(["--per-class", "1000", "--scale", "1", "--out", str(grid), "+task=classification"])
    width, height = Image.open(grid).size
    per = (width - 2) // (8 + 2)
    assert height == 10 * (8 + 2) + 2 and per < 1000
    with pytest.raises(SystemExit, match="name a .png or .jpg file"):
        main(["--out", str(tmp_path / "grid.npy"), "+task=classification"])


def test_show_samples_replaces_its_own_grid_and_nothing_else(tmp_path):
    from PIL import Image

    from tools.show_samples import main

    photo = tmp_path / "photo.png"
    Image.new("RGB", (4, 4), "red").save(photo)
    for out in (photo, tmp_path / "photo.jpg"):
        if out.suffix == ".jpg":
            Image.new("RGB", (4, 4), "red").save(out)
        before = out.read_bytes()
        with pytest.raises(SystemExit, match=f"--out {out} exists and is not a grid this tool drew"):
            main(["--out", str(out), "+task=classification"])
        assert out.read_bytes() == before
    for name in ("grid.png", "grid.jpg"):  # a rerun replaces the tool's own image, PNG or JPEG
        main(["--scale", "1", "--out", str(tmp_path / name), "+task=classification"])
        main(["--scale", "1", "--out", str(tmp_path / name), "+task=classification"])
    # --scale 100000 asked the allocator for 200 TB: refused with the pixel count before drawing
    with pytest.raises(SystemExit, match="--scale 100000 would draw"):
        main(["--scale", "100000", "--out", str(tmp_path / "big.png"), "+task=classification"])


def test_fault_drill_deletes_run_dirs_only_in_a_folder_of_its_own(tmp_path):
    mine = tmp_path / "mine"
    (mine / "reference").mkdir(parents=True)
    (mine / "reference" / "notes.txt").write_text("precious")
    for args, message in [
        (["--out", str(mine)], f"--out {mine} is not empty and no earlier drill made it"),
        (["--n", "0"], "--n must be >= 1, got 0"),
    ]:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "fault_drill.py"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert (mine / "reference" / "notes.txt").read_text() == "precious"


def test_a_failed_search_ends_the_fault_drill_in_its_own_line():
    from tools.fault_drill import finish

    # A bad override ended the drill in a RuntimeError traceback.
    failed = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sys.stderr.write(\"rlnas: error: search.epochs='abc' must be int\\n\"); sys.exit(2)",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    with pytest.raises(
        SystemExit, match=r"^the reference run exited with 2: rlnas: error: search.epochs='abc' must be int$"
    ):
        finish(failed, "the reference run")


def test_score_run_says_a_trial_search_has_no_supernet_to_score_on(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    (tmp_path / "trials.jsonl").write_text("")
    (tmp_path / "best_arch.json").write_text('{"arch": [0]}')
    proc = _score_run("--run-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"score_run.py: error: --run-dir {tmp_path}: a trial search's run dir; its candidates were trained on "
        "their own, with no supernet to score them on (their scores are in trials.csv)"
    )


def test_ctrl_c_stops_a_parallel_comparison_with_one_line_and_no_worker_left(tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "cmp"
    tool = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "compare_controllers.py"), "--benchmark", "nb201_cifar10"]
        + ["--controllers", "enas", "--seeds", "200", "--jobs", "2", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches the tool and its workers
    )
    assert tool.stdout is not None
    while " seed " not in (line := tool.stdout.readline()):  # a run done, more queued and in flight
        assert line, "the comparison ended before any run"
    time.sleep(1)
    os.killpg(tool.pid, signal.SIGINT)
    # Pipes close only once every worker is gone: a worker left behind would hang this call.
    _, stderr = tool.communicate(timeout=60)
    assert tool.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "compare_controllers.py: interrupted; the runs it finished are kept" in stderr


def test_study_tools_name_an_output_that_is_a_file_and_a_cache_that_is_not_json(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("someone's notes")
    for option, message in [
        (["--out", str(taken)], f"spread_study.py: error: {taken}: exists and is not a folder"),
        (
            ["--out", str(tmp_path / "out"), "--cache", str(taken)],
            f"spread_study.py: error: {taken}: not a JSON file this tool wrote",
        ),
    ]:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "spread_study.py"), "--archs", "2", *option, "+task=mnist1d"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1].startswith(message)
    assert taken.read_text() == "someone's notes"


@pytest.mark.parametrize(
    "tool, overrides, message",
    [
        ("spread_study", ["+task=mnist1d", "space.num_layers=abc"], "space.num_layers='abc' must be int"),
        (
            "show_samples",
            ["+task.data.nonesuch=1"],
            "task.data.nonesuch is not a setting of load_image_classification; allowed: ",
        ),
    ],
)
def test_tools_that_compose_a_config_check_it_as_the_commands_do(tmp_path, tool, overrides, message):
    """A bad override is named in one line before anything is built (it was "invalid literal for int()", or
    a TypeError's traceback for an unknown data key)."""
    import importlib

    main = importlib.import_module(f"tools.{tool}").main
    out = ["--out", str(tmp_path / ("grid.png" if tool == "show_samples" else "study"))]
    with pytest.raises(SystemExit) as stop:
        main([*out, *overrides])
    assert str(stop.value.code).split(": error: ", 1)[1].startswith(message)


@pytest.mark.parametrize(
    "tool, args, message",
    [  # each ran: every seed the same search (std 0), a "budget 50" row of 20 evaluations, a budget ignored
        (
            "compare_controllers",
            ["--benchmark", "toy", "--seeds", "2", "--", "seed=5"],
            "seed=5: seed is set by --seeds",
        ),
        (
            "compare_controllers",
            ["--benchmark", "toy", "--budgets", "50", "--", "benchmark.evaluations=20"],
            "benchmark.evaluations=20: benchmark.evaluations is set by --budgets",
        ),
        (
            "compare_controllers",
            ["--task", "mnist1d", "--", "++ground_truth.epochs=3"],
            "++ground_truth.epochs=3: ground_truth.epochs is set by --truth-epochs",
        ),
        (
            "trial_study",
            ["--budget", "2", "--", "trials.budget=3"],
            "trials.budget=3: trials.budget is set by --budget",
        ),
    ],
)
def test_study_tools_refuse_an_override_of_what_their_options_set(tmp_path, tool, args, message):
    import importlib

    main = importlib.import_module(f"tools.{tool}").main
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "study"), *args])
    assert str(stop.value.code).split(": error: ", 1)[1] == f"{message} for each run; use that"
    assert not (tmp_path / "study").exists()  # refused before any run


def test_bench_distributed_refuses_an_output_in_the_way_before_its_runs(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("someone's notes")
    proc = _tool("bench_distributed.py", "--out", str(taken))  # its runs take minutes; the refusal comes first
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == (
        f"bench_distributed.py: error: --out {taken}: cannot write bench.json and bench.md there (File exists)"
    )
    assert taken.read_text() == "someone's notes"


def test_a_whole_search_comparison_stopped_half_way_keeps_the_runs_it_finished(tmp_path, monkeypatch):
    """compare_controllers.py --task: a finished run is reused when the same study starts again, never another's."""
    import rlnas.search.builder as builder
    import tools.compare_controllers as tool

    built = []  # the searches run
    real = builder.build_search

    def counting(cfg, *args, **kwargs):
        built.append(cfg)
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(builder, "build_search", counting)
    small = ["+experiment=smoke", "task.data.limit=300"]
    first = tool.run_task("classification", "random", 0, tmp_path, small, truth_seeds=1, truth_epochs=1)
    again = tool.run_task("classification", "random", 0, tmp_path, small, truth_seeds=1, truth_epochs=1)
    assert len(built) == 1 and again == json.loads(json.dumps(first))
    with pytest.raises(ValueError, match="holds a run of another study"):  # never read as this study's
        tool.run_task(
            "classification", "random", 0, tmp_path, [*small, "search.lr=0.01"], truth_seeds=1, truth_epochs=1
        )
    (tmp_path / "runs" / "random_seed0" / "result.json").unlink()  # as if stopped before its end
    tool.run_task("classification", "random", 0, tmp_path, small, truth_seeds=1, truth_epochs=1)
    assert len(built) == 2  # searched again from the start
    # A default changed since the run was made (not in the study's overrides): the run is not this study's any more.
    config = tmp_path / "runs" / "random_seed0" / "config.yaml"
    made = config.read_text()
    config.write_text(made.replace("supernet_steps:", "supernet_steps: 999 #", 1))
    with pytest.raises(ValueError, match=r"random_seed0 was made with search.supernet_steps=999, this study now"):
        tool.run_task("classification", "random", 0, tmp_path, small, truth_seeds=1, truth_epochs=1)
    # A setting added since (absent from the run's config) keeps the run.
    config.write_text(made.replace("  supernet_steps:", "  dropped_setting: 1\n  supernet_steps:", 1))
    with pytest.raises(ValueError, match=r"search.dropped_setting=1"):  # one the study no longer has is a change
        tool.run_task("classification", "random", 0, tmp_path, small, truth_seeds=1, truth_epochs=1)
    config.write_text("\n".join(line for line in made.splitlines() if "supernet_steps" not in line) + "\n")
    tool.run_task("classification", "random", 0, tmp_path, small, truth_seeds=1, truth_epochs=1)
    assert len(built) == 2  # reused, not searched again


def test_a_stored_whole_search_is_read_with_its_curves_and_a_tampered_one_is_named(tmp_path):
    """result.json is committed with the runs under docs/: read back as data, a file this tool did not write refused."""
    import tools.compare_controllers as tool

    run = tmp_path / "run"
    run.mkdir()
    key = tool.run_key("mnist1d", "enas", 0, ["data_seed=0"], 3, 20)
    good = {"truth": 0.9, "truth_seeds": [0.9, 0.91], "final": 0.8, "final_reward": 0.8, "metric": "accuracy"}
    good = {**good, "last_epoch": 0.7, "seconds": 12.0, "scale": 1.0, "optimum": float("nan")}
    (run / "history.csv").write_text("epoch,arch,reward,accuracy\n1,0 1,0.5,0.5\n1,1 0,0.4,0.4\n2,1 1,0.7,0.6\n")
    (run / "result.json").write_text(json.dumps({"key": key, "result": good}))
    found = tool.stored_run(run, key)
    assert found["truth"] == 0.9 and found["rewards"] == [0.5, 0.4, 0.7]
    assert found["best_so_far"] == [0.5, 0.5, 0.7] and found["best_metric"] == [0.5, 0.5, 0.6]
    for bad in ([1, 2], {"key": key}, {"key": key, "result": {**good, "truth": "high"}}, {"key": [], "result": good}):
        (run / "result.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=r"result.json: not a result this tool wrote"):
            tool.stored_run(run, key)
    (run / "result.json").write_text(json.dumps({"key": key, "result": good}))
    (run / "history.csv").write_text("epoch,arch,reward\n1,0 1,0.5\n")  # no accuracy column
    with pytest.raises(ValueError, match=r"history.csv: not the history of this run \(KeyError"):
        tool.stored_run(run, key)


def test_a_standalone_cache_that_is_not_one_is_named_not_read(tmp_path):
    """The cache of rank_study and spread_study (committed under docs/) is data read back: it must be one."""
    from tools.rank_study import standalone_tables

    cache = tmp_path / "standalone.json"
    cache.write_text(json.dumps({"k": {"[0, 1]": [0.9, 0.91]}, "k/val": {}, "k/val_loss": {}}))
    stored, tables = standalone_tables(cache, "k")
    assert tables["test"] == {"[0, 1]": [0.9, 0.91]} and tables["val"] == {} and stored["k"] is tables["test"]
    for bad in ([1, 2], {"k": [0.9]}, {"k": {"[0, 1]": ["0.9"]}}, {"k": {"[0, 1]": 0.9}}):
        cache.write_text(json.dumps(bad))  # each was an AttributeError or numpy's error after setup
        with pytest.raises(SystemExit, match=r"standalone.json: not a standalone cache of these tools"):
            standalone_tables(cache, "k")
    assert json.loads(cache.read_text()) == {"k": {"[0, 1]": 0.9}}  # left as it is


def test_a_standalone_cache_trained_with_another_recipe_is_refused_not_mixed(tmp_path):
    """The recipe's nulls come from search:, which the cache key leaves out: a changed default is named."""
    from tools._common import load_config, standalone_recipe_of
    from tools.rank_study import standalone_tables

    cache = tmp_path / "standalone.json"
    cache.write_text(json.dumps({"k": {"[0, 1]": [0.9]}, "k/val": {}, "k/val_loss": {}}))  # kept no recipe yet
    recipe = standalone_recipe_of(load_config(["+task=mnist1d"]), 20)
    assert recipe["epochs"] == 20 and recipe["lr"] == 0.05  # train.lr is null: the search's
    stored, tables = standalone_tables(cache, "k", recipe)
    assert stored["k/recipe"] == recipe and tables["test"] == {"[0, 1]": [0.9]}  # adopted, kept when written
    cache.write_text(json.dumps(stored))
    assert standalone_tables(cache, "k", recipe)[1]["test"] == {"[0, 1]": [0.9]}
    faster = standalone_recipe_of(load_config(["+task=mnist1d", "search.lr=0.1"]), 20)
    with pytest.raises(SystemExit, match=r"standalone.json: its standalone runs of this study were trained with "
                       r"train.lr=0.05, the recipe is now 0.1"):  # fmt: skip
        standalone_tables(cache, "k", faster)
    assert json.loads(cache.read_text()) == stored  # left as it is


def test_a_tool_output_file_never_replaces_an_input_a_folder_or_a_foreign_file(tmp_path):
    from tools._common import check_out_file

    keys = ("device", "rows")
    own = tmp_path / "own.json"
    own.write_text(json.dumps({"device": "cpu", "rows": []}))
    check_out_file(own, "--out", keys)  # its own earlier output: rewritten
    check_out_file(tmp_path / "new" / "deeper.json", "--out", keys)  # folders are made
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    cases = [
        (notes, (), "exists and is not a file this tool wrote"),
        (tmp_path, (), "is a directory; name a file"),
        (notes / "x.json", (), f"{notes} is a file, not a folder"),
        (own, (own,), "is one of this tool's inputs"),
    ]
    for path, inputs, message in cases:
        with pytest.raises(SystemExit, match=message):
            check_out_file(path, "--out", keys, inputs)
    assert notes.read_text() == "mine"


@pytest.mark.parametrize(
    "tool, args, message",
    [
        ("profile_latency", ["--repeats", "0"], "--repeats must be >= 1, got 0"),  # was "no median for empty data"
        ("profile_latency", ["--archs", "1"], "--archs must be >= 2, got 1"),
        ("bench_supernet", ["--steps", "0"], "--steps must be >= 1, got 0"),
        ("bench_tabular", ["--archs", "0"], "--archs must be >= 1, got 0"),
        ("proxy_check", ["--cells", "0"], "--cells must be >= 1, got 0"),  # was the space's traceback
        # 120 GiB of weights: it ran until the kernel's memory limit
        ("proxy_check", ["--cells", "100000"], "--cells 100000: space.cells_per_stage=100000 and space.channels"),
    ],
)
def test_measuring_tools_refuse_counts_they_cannot_measure_with(tool, args, message, monkeypatch, capsys):
    import importlib

    main = importlib.import_module(f"tools.{tool}").main
    monkeypatch.setattr(sys, "argv", [f"{tool}.py", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    said = stop.value.code if isinstance(stop.value.code, str) else capsys.readouterr().err.strip().splitlines()[-1]
    assert message in said


@pytest.mark.parametrize("tool", ["bench_supernet", "rank_study", "profile_latency", "spread_study"])
@pytest.mark.parametrize(
    "override, message",
    [
        ("space.num_layers=0", "space.num_layers must be >= 1, got 0"),  # was Hydra's InstantiationException traceback
        ("space.foo=1", "Could not override 'space.foo'"),  # was Hydra's ConfigCompositionException traceback
    ],
)
def test_tools_that_build_a_search_name_a_bad_override_in_one_line(
    tool, override, message, tmp_path, monkeypatch, capsys
):
    import importlib

    from tools._common import run_tool

    main = importlib.import_module(f"tools.{tool}").main
    monkeypatch.setattr(sys, "argv", [f"{tool}.py", "--out", str(tmp_path / "out"), "+task=mnist1d", override])
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as stop:
        run_tool(main)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith(f"{tool}.py: error: ") and message in err[-1]


@pytest.mark.parametrize(
    "args, message",
    [
        # each of these ran the standalone trainings (hours) before it failed, or failed with a traceback
        (["--epochs", "0"], "--epochs 0: expected a number of epochs >= 1"),
        (["--calibrate", "-1"], "--calibrate '-1': image counts must be >= 1"),
        (["--few-shot", "99"], "--few-shot 99: the space has decisions 0..20"),
        (["--report-only"], "--report-only: no study in"),
        (["--run-dir", "NOWHERE"], "--run-dir NOWHERE: no config.yaml there"),
        (["--run-dir", "NOWHERE/supernetless"], "no supernet.pt there"),
        (["--run-dir", "TRIALS"], "a trial search's run dir; its candidates were trained on their own"),
    ],
)
def test_rank_study_refuses_settings_before_any_training(tmp_path, args, message, monkeypatch):
    from tools.rank_study import main

    for name, files in (("TRIALS", ["config.yaml", "trials.jsonl"]), ("NOWHERE/supernetless", ["config.yaml"])):
        if name in args:
            (tmp_path / name).mkdir(parents=True)
            for file in files:
                (tmp_path / name / file).write_text("")
            args = [str(tmp_path / a) if a == name else a for a in args]
    out = tmp_path / "study"
    monkeypatch.setattr(sys, "argv", ["rank_study.py", "--archs", "4", "--seeds", "2", *args, "--out", str(out)])
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit, match=re.escape(message)):
        main()
    assert not (out / "standalone.json").exists()


@pytest.mark.parametrize("option", ["--repeats", "--threads", "--batch"])
def test_bench_distributed_refuses_counts_below_one(option):
    """--repeats 0 printed a table of NaN ratios and exited 0; --threads 0 ran on torch's default; --batch 0
    was named as search.batch_size."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_distributed.py"), option, "0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and f"bench_distributed.py: error: {option} must be >= 1, got 0" in proc.stderr


@pytest.mark.parametrize("tool, args", [("score_run.py", ["--run-dir", "RUN"]), ("profile_latency.py", [])])
def test_the_tools_name_a_seed_numpy_cannot_take(tool, args, tmp_path):
    """--seed -1 was NumPy's "expected non-negative integer", naming no option."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "best_arch.json").write_text("{}")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool), *[str(run) if a == "RUN" else a for a in args], "--seed", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "argument --seed: must be a whole number in 0..4294967295" in proc.stderr


class _Planted:
    """What a crafted results file holds: unpickling it would create a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_nb201_converter_runs_no_code_from_the_results_file_unless_trusted(tmp_path):
    import numpy as np
    import torch

    marker = tmp_path / "ran"
    crafted = nb201_results({777: 0.0})
    crafted["arch2infos"][0] = _Planted(str(marker))
    torch.save(crafted, tmp_path / "crafted.pth")
    args = [sys.executable, "tools/convert_nb201.py", str(tmp_path / "crafted.pth"), "--out", str(tmp_path / "x.csv")]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ", which is not data; read it with --trust only if you trust the file" in proc.stderr
    assert not marker.exists() and not (tmp_path / "x.csv").exists()
    # NumPy numbers (as the published file may hold them) are data: read without --trust.
    results = nb201_results({777: 0.0})
    for entry in results["arch2infos"].values():
        for result in entry["full"]["all_results"].values():
            result["eval_acc1es"] = {k: np.float64(v) for k, v in result["eval_acc1es"].items()}
    torch.save(results, tmp_path / "numpy.pth")
    out = tmp_path / "numpy.csv"
    args = [sys.executable, "tools/convert_nb201.py", str(tmp_path / "numpy.pth"), "--out", str(out)]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().splitlines()[1].startswith("0,|none~0|")


def test_nk_landscapes_couple_decisions_only_with_k_above_zero():
    sys.path.insert(0, str(ROOT))
    from tools.nk_tables import nk_landscape

    rng = np.random.default_rng(0)
    for k, additive in ((0, True), (2, False)):
        archs, values = nk_landscape(6, 3, k, seed=4)
        assert archs.shape == (3**6, 6) and values.min() == pytest.approx(60) and values.max() == pytest.approx(95)
        index = {tuple(a): v for a, v in zip(archs.tolist(), values, strict=True)}
        # What setting decision 0 from choice 0 to 1 is worth, beside random choices of the others.
        gains = set()
        for _ in range(20):
            rest = tuple(int(c) for c in rng.integers(3, size=5))
            gains.add(round(index[(1, *rest)] - index[(0, *rest)], 9))
        assert (len(gains) == 1) is additive
    again = nk_landscape(6, 3, 2, seed=4)[1]
    assert np.array_equal(again, values) and not np.array_equal(nk_landscape(6, 3, 2, seed=5)[1], values)


# Two table writes and two benchmark runs (9 s), the pipeline `make study-nk` runs at scale: run on purpose (-m slow).
@pytest.mark.slow
def test_nk_tables_run_as_benchmarks_noisy_and_not(tmp_path):
    def write(out):
        return subprocess.run(
            [sys.executable, "tools/nk_tables.py", "--out", str(out), "--decisions", "4", "--choices", "3", "--k", "1"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )

    assert write(tmp_path / "a").returncode == 0 and write(tmp_path / "b").returncode == 0
    table = (tmp_path / "a" / "nk4x3k1s0.csv").read_bytes()
    assert table == (tmp_path / "b" / "nk4x3k1s0.csv").read_bytes()  # the same arguments, the same table
    rows = {
        r[0]: [float(v) / 100 for v in r[1:]] for r in (line.split(",") for line in table.decode().splitlines()[1:])
    }
    optimum = max(v[0] for v in rows.values())
    assert len(rows) == 81 and any(v[1] != v[0] for v in rows.values())  # seed columns are noisy
    # Another table under the same name (another --noise) was written over the first without a word.
    from tools.nk_tables import main as nk_main

    same = ["--out", str(tmp_path / "a"), "--decisions", "4", "--choices", "3", "--k", "1"]
    nk_main(same)  # the same arguments rewrite the same files
    with pytest.raises(SystemExit, match="nk4x3k1s0.csv: exists and differs from this table's"):
        nk_main([*same, "--noise", "0.5"])
    assert (tmp_path / "a" / "nk4x3k1s0.csv").read_bytes() == table
    for name in ("nk4x3k1s0", "nk4x3k1s0_noisy"):
        proc = run_cli(
            "--config-dir", str(tmp_path / "a"), f"+benchmark={name}", "controller=local_search",
            "benchmark.evaluations=81", f"hydra.run.dir={tmp_path / name}",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        found = re.search(r"best: ((?:d\d=c\d ?)+) \| acc=([\d.]+)(?:, acc_noisy=([\d.]+))?", proc.stdout)
        key = "-".join(choice.split("=")[1] for choice in found.group(1).split())
        if name.endswith("noisy"):
            # The pick is the best reward drawn, one seed's column; it is reported by its noise-free value.
            assert float(found.group(2)) == pytest.approx(rows[key][0], abs=1e-4)
            assert min(abs(float(found.group(3)) - v) for v in rows[key][1:]) < 1e-4
        else:  # the whole space evaluated: the pick is the optimum
            assert float(found.group(2)) == pytest.approx(optimum, abs=1e-4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--decisions", "12", "--choices", "4"], "16,777,216 architectures; at most 2,000,000"),
        (["--decisions", "100000"], "about 10**60206 architectures"),
        (["--decisions", "4", "--k", "4"], "--k must be in 0..3"),
        (["--noise", "nan"], "--noise must be a finite number >= 0"),
        (["--name", "../x"], "letters, digits and _ only"),
    ],
)
def test_nk_tables_refuse_what_they_cannot_write(tmp_path, args, message):
    proc = subprocess.run(
        [sys.executable, "tools/nk_tables.py", "--out", str(tmp_path), *args], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2 and message in proc.stderr and not list(tmp_path.iterdir())


def test_a_readme_that_is_not_text_is_named_and_jobs_beyond_the_cores_are_capped(tmp_path, monkeypatch, capsys):
    """--readme photo.png ended in "'utf-8' codec can't decode byte ..." without the file; --jobs 1000 forked
    1000 workers for two runs."""
    import tools._common as common
    from tools.compare_controllers import check_readme

    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\xc4\xff")
    with pytest.raises(SystemExit, match=re.escape(f"--readme {image}: not UTF-8 text (name a Markdown file)")):
        check_readme(image, "block")
    monkeypatch.setattr(common.os, "cpu_count", lambda: 1)
    with common.job_map(1000) as run_all:
        assert run_all is map  # one core: in this process, no worker forked
    assert "--jobs 1000: this machine has 1 CPU(s); running 1 at once" in capsys.readouterr().err


def test_bench_supernet_measures_the_batch_it_draws(capsys):
    """A --batch beyond the training split drew the whole split and counted the asked size: 99,625,624 img/s."""
    from tools.bench_supernet import measured_batch

    assert measured_batch(128, 1079) == 128
    assert measured_batch(100_000_000, 1079) == 1079
    assert "--batch 100000000 is more than the training split's 1079 samples; measured with 1079" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("tool", ["bench_supernet", "rank_study", "profile_latency", "spread_study", "show_samples"])
def test_tools_that_train_on_a_task_name_a_benchmark_given_instead(tool, tmp_path, monkeypatch, capsys):
    """+benchmark=toy (no task beside it) was OmegaConf's "Key 'task' is not in struct"."""
    import importlib

    from tools._common import run_tool

    main = importlib.import_module(f"tools.{tool}").main
    out = tmp_path / ("out.png" if tool == "show_samples" else "out")
    monkeypatch.setattr(sys, "argv", [f"{tool}.py", "--out", str(out), "+benchmark=toy"])
    with pytest.raises(SystemExit) as stop:
        run_tool(main)
    said = stop.value.code if isinstance(stop.value.code, str) else capsys.readouterr().err.strip().splitlines()[-1]
    assert said == f"{tool}.py: error: +benchmark looks architectures up in a table and has no task data; " + (
        "name a task instead (+task=NAME)"
    )
