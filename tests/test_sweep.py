"""Hydra multirun sweeps: parallel jobs with their own dirs, launcher configs, status files and the sweep summary."""

import csv
import json
import math
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class

from rlnas.sweep import read_sweep, summarize, threads_per_job
from tests.conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def task_sweep(tmp_path_factory):
    """Both tasks as two parallel joblib jobs, the way the README runs sweeps on one machine."""
    sweep_dir = tmp_path_factory.mktemp("task_sweep")
    proc = run_cli(
        "-m",
        "+task=classification,detection",
        "+experiment=smoke",
        # The final phase's re-scoring of shared-weight mAP is most of a detection job's time here.
        "search.top_k=1",
        "search.final_samples=1",
        "search.random_baseline=2",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep_dir


@pytest.fixture(scope="module")
def sweep_with_a_failure(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("failing_sweep")
    proc = run_cli("-m", "+experiment=smoke", "controller=random", "search.epochs=2,0", f"hydra.sweep.dir={sweep_dir}")
    return sweep_dir, proc


def test_multirun_over_both_tasks_in_parallel_jobs(task_sweep):
    results = {json.loads(p.read_text())["task"]: p.parent for p in task_sweep.glob("*/best_arch.json")}
    assert set(results) == {"classification", "detection"}
    assert results["classification"] != results["detection"]
    detection = json.loads((results["detection"] / "best_arch.json").read_text())
    assert {"val_map", "val_map50"} <= set(detection["metrics"])
    assert detection["decoded"]["layer0/op"] in {
        "conv5x5",
        "sepconv5x5",
        "conv3x3",
        "sepconv3x3",
        "maxpool3x3",
        "avgpool3x3",
    }
    for run_dir in results.values():
        status = json.loads((run_dir / "status.json").read_text())
        assert status["status"] == "completed" and status["best_reward"] == pytest.approx(
            json.loads((run_dir / "best_arch.json").read_text())["reward"]
        )
        # Two jobs on this machine's cores: each took its share of threads, not all of them.
        log = (run_dir / "__main__.log").read_text()
        assert f"2 parallel jobs: {threads_per_job(2)} torch threads each" in log


def test_summary_of_a_sweep_has_a_row_per_job_and_both_plots(task_sweep, tmp_path):
    written = summarize(task_sweep, tmp_path)
    assert sorted(p.name for p in written) == [
        "sweep_pareto.png",
        "sweep_rewards.png",
        "sweep_summary.csv",
        "sweep_summary.md",
    ]
    with (tmp_path / "sweep_summary.csv").open() as f:
        rows = {r["task"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"classification", "detection"}
    assert rows["detection"]["overrides"] == "+task=detection"
    assert float(rows["detection"]["val_map"]) >= 0 and float(rows["classification"]["val_accuracy"]) > 0
    assert all(r["status"] == "completed" and int(r["params"].split(".")[0]) > 0 for r in rows.values())
    for png in ("sweep_pareto.png", "sweep_rewards.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    # Written elsewhere, the table still names the sweep it summarises.
    assert (tmp_path / "sweep_summary.md").read_text().startswith(f"# Sweep summary: {task_sweep}\n")


def test_final_metrics_and_swept_keys_reach_the_hparams_tab(task_sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir = next(p.parent for p in task_sweep.glob("*/best_arch.json") if "detection" in p.parent.name)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    hparams, metrics = {}, set()
    for content in events.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            hparams = {k: v.string_value for k, v in data.session_start_info.hparams.items()}
        if data.HasField("experiment"):
            metrics = {m.name.tag for m in data.experiment.metric_infos}
    assert hparams["task"] == "detection" and hparams["controller"] == "enas" and hparams["experiment"] == "smoke"
    assert {"final/reward", "final/val_map", "final/params", "final/latency_ms"} <= metrics


def test_a_failed_job_is_listed_as_failed_and_the_others_finish(sweep_with_a_failure, tmp_path):
    sweep_dir, proc = sweep_with_a_failure
    assert proc.returncode != 0  # the sweep reports the failure ...
    assert "search.epochs must be >= 1, got 0" in proc.stderr
    assert "Traceback" not in proc.stderr  # the failed job named, its error in one line, as for one run
    # The last line names every failed job (Hydra named the first, "Error executing job with overrides", and
    # advised HYDRA_FULL_ERROR=1 for a trace of an error that has none).
    assert "HYDRA_FULL_ERROR" not in proc.stderr and proc.stderr.strip().splitlines()[-1] == (
        "rlnas: 1 sweep job(s) failed, the others finished: #1 controller=random search.epochs=0 "
        "+task=classification +experiment=smoke: search.epochs must be >= 1, got 0"
    )
    jobs = read_sweep(sweep_dir)  # ... after running every job
    assert [(j.status, j.reward is not None) for j in jobs] == [("completed", True), ("failed", False)]
    assert jobs[1].error == "search.epochs must be >= 1, got 0"
    summarize(sweep_dir, tmp_path, plots=False)
    table = (tmp_path / "sweep_summary.md").read_text()
    assert "2 jobs: 1 completed, 1 failed." in table
    assert "| `search.epochs=0` | failed | classification |  | error: search.epochs must be >= 1, got 0 |" in table


def test_summarize_tool_names_a_missing_sweep_dir(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "summarize_sweep.py"), str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"summarize_sweep: error: {tmp_path / 'nope'}: no such sweep directory"


def test_a_single_run_is_not_summarised_as_a_sweep_into_its_own_folder(tmp_path):
    from rlnas.sweep import write_status

    write_status(tmp_path, "completed", 1.0)  # a search's run dir
    with pytest.raises(FileNotFoundError, match="a single run .* not a sweep; pass the sweep's folder"):
        summarize(tmp_path, plots=False)
    assert not (tmp_path / "sweep_summary.md").exists()


def test_a_killed_job_is_not_reported_as_running(tmp_path):
    from rlnas.sweep import write_status

    job = tmp_path / "0_seed=1"
    write_status(job, "running", 0.0)
    payload = json.loads((job / "status.json").read_text())
    payload["pid"] = 2**22 + 12345  # beyond pid_max: no such process
    (job / "status.json").write_text(json.dumps(payload))
    assert [j.status for j in read_sweep(tmp_path)] == ["killed"]


def _laughs(levels: int) -> str:
    """A YAML list whose aliases expand to 9**levels strings (a "billion laughs" file)."""
    text = '- &l0 ["x","x","x","x","x","x","x","x","x"]\n'
    for level in range(1, levels + 1):
        text += f"- &l{level} [" + ",".join([f"*l{level - 1}"] * 9) + "]\n"
    return text


def test_a_job_with_tampered_files_is_listed_as_unreadable_and_the_others_summarised(tmp_path):
    """Each of these was a traceback that summarised no job at all."""
    from rlnas.sweep import summarize, write_status

    good = {"reward": 0.9, "metrics": {"val_accuracy": 0.9}, "costs": {"params": 10}, "description": "a"}
    cases = {
        "0_reward": ({**good, "reward": "high"}, None, "best_arch.json: 'reward' must be a number, got 'high'"),
        "1_metrics": ({**good, "metrics": [1, 2]}, None, "best_arch.json: 'metrics' must map names to numbers"),
        "2_overrides": (good, "- a: [\n", "overrides.yaml: not YAML"),
        "3_wall": (good, None, "status.json: 'wall_s' must be a number of seconds, got 'slow'"),
        "4_fine": (good, None, ""),
        # A "billion laughs" list: its overrides, printed, expand to 9**8 strings (the summary hung);
        # 20,000 nested brackets took PyYAML's parser 30 s, then a RecursionError traceback.
        "5_laughs": (good, _laughs(8), "it holds YAML aliases (*name)"),
        "6_deep": (good, "[" * 20_000 + "]" * 20_000, "overrides.yaml: not YAML"),
        # An edited status.json was listed as "completed" (cut) or under its odd state (5) as if a run wrote it.
        "7_cut": (good, None, "status.json: not the JSON object a run writes"),
        "8_state": (good, None, "status.json: 'status' must be one of ['running', 'completed', 'failed'"),
        # A run writes strict JSON (NaN as null): a bare NaN was shown as "accuracy nan" of a completed job.
        "9_nan": ({**good, "metrics": {"val_accuracy": math.nan}}, None, "holds nan for 'val_accuracy'"),
        # null is what a run writes for a value it could not measure: shown blank, the job still completed.
        "a_null": ({**good, "costs": {"params": None}}, None, ""),
    }
    for name, (best, overrides, _) in cases.items():
        job = tmp_path / "sweep" / name
        write_status(job, "completed", 0.0, **({"wall_s": "slow"} if name == "3_wall" else {}))
        if name == "7_cut":
            (job / "status.json").write_text('{"status": "comp')
        if name == "8_state":
            (job / "status.json").write_text('{"status": 5}')
        (job / "best_arch.json").write_text(json.dumps(best))
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(overrides or f"- seed={name[0]}\n")
    jobs = {j.name: j for j in read_sweep(tmp_path / "sweep")}
    for name, (_, _, message) in cases.items():
        assert jobs[name].status == ("unreadable" if message else "completed")
        assert message in jobs[name].error and (not message or str(tmp_path / "sweep" / name) in jobs[name].error)
    summarize(tmp_path / "sweep", tmp_path / "out", plots=False)
    table = (tmp_path / "out" / "sweep_summary.md").read_text()
    assert "11 jobs: 9 unreadable, 2 completed." in table and "error: " in table
    out_file = tmp_path / "notes.txt"
    out_file.write_text("mine")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "summarize_sweep.py"), str(tmp_path / "sweep"), "--out", str(out_file)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"summarize_sweep: error: --out {out_file} is a file; name a folder for the table and plots"
    )
    assert out_file.read_text() == "mine"


@pytest.mark.parametrize("launcher", ["joblib", "submitit_slurm", "submitit_local"])
def test_launcher_configs_compose(launcher):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config", overrides=[f"hydra/launcher={launcher}", "+task=classification"], return_hydra_config=True
        )
    launcher_cls = get_class(cfg.hydra.launcher._target_)
    assert launcher.split("_")[0] in launcher_cls.__module__
    if launcher == "joblib":
        assert cfg.hydra.launcher.n_jobs == -1
    if launcher == "submitit_slurm":
        assert {"partition", "gpus_per_node", "timeout_min", "cpus_per_task"} <= set(cfg.hydra.launcher)


def test_threads_per_job_shares_the_cores():
    assert threads_per_job(2, cpus=2) == 1
    assert threads_per_job(3, cpus=16) == 5
    assert threads_per_job(8, cpus=2) == 1
    assert threads_per_job(1, cpus=4) == 4


def test_the_summary_never_writes_through_a_symlink_planted_in_its_folder(tmp_path):
    from rlnas.sweep import summarize, write_status

    job = tmp_path / "sweep" / "0_seed=0"
    write_status(job, "completed", 0.0)
    (job / "best_arch.json").write_text(json.dumps({"reward": 0.9, "metrics": {"val_accuracy": 0.9}}))
    out = tmp_path / "out"
    out.mkdir()
    victims = {name: tmp_path / f"victim_{name}" for name in ("sweep_summary.md", "sweep_summary.csv")}
    for name, victim in victims.items():
        victim.write_text("mine")
        (out / name).symlink_to(victim)
    summarize(tmp_path / "sweep", out, plots=False)
    assert all(victim.read_text() == "mine" for victim in victims.values())  # were overwritten through the links
    assert "1 jobs: 1 completed." in (out / "sweep_summary.md").read_text()
    assert not (out / "sweep_summary.md").is_symlink()


def test_benchmark_and_trial_jobs_are_summarised_as_what_they_are(tmp_path):
    """A benchmark sweep was listed under task "classification" with a blank column, and trial searches' reward
    plot was empty: both log other curves than a weight-sharing search's mean reward per epoch."""
    from torch.utils.tensorboard import SummaryWriter

    from rlnas.sweep import summarize, write_status
    from rlnas.sweep.summary import reward_curve

    best = {"reward": 0.8, "metrics": {"match": 0.8}, "costs": {}, "description": "a"}
    for name, extra, tag in [("0_table", {"benchmark": "toy"}, "reward/best_so_far"), ("1_trials", {"trial": 3}, "")]:
        job = tmp_path / "sweep" / name
        write_status(job, "completed", 0.0)
        (job / "best_arch.json").write_text(json.dumps({**best, **extra}))
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(f"- seed={name[0]}\n")
        with SummaryWriter(str(job / "tensorboard")) as writer:
            for step in (10, 20):
                writer.add_scalar(tag or "trials/best_so_far", step / 100, step)
    (tmp_path / "sweep" / "1_trials" / "trials.csv").write_text("trial,reward\n")
    jobs = read_sweep(tmp_path / "sweep")
    assert [(j.task, j.kind) for j in jobs] == [("benchmark toy", "benchmark"), ("classification", "trials")]
    for job in jobs:
        steps, values = reward_curve(job)
        assert steps == [10, 20] and values == pytest.approx([0.1, 0.2])
    summarize(tmp_path / "sweep", tmp_path / "out", plots=True)
    rows = [line for line in (tmp_path / "out" / "sweep_summary.md").read_text().splitlines() if line.startswith("|")]
    assert len({row.count("|") for row in rows}) == 1  # header, rule and rows: one column count


def test_the_sweep_names_job_folders_through_the_resolver():
    """A swept path made nested job folders and many overrides a name past 255 bytes (see below, end to end)."""
    from rlnas.registration import MAX_JOB_DIR_BYTES

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["+task=classification"], return_hydra_config=True)
    cfg.hydra.job.num = 3
    for overrides, expected in [
        ("task.data.root=/data/set", "3_task.data.root=_data_set"),
        ("seed=1,controller=enas", "3_seed=1,controller=enas"),
    ]:
        cfg.hydra.job.override_dirname = overrides
        assert cfg.hydra.sweep.subdir == expected
    cfg.hydra.job.override_dirname = ",".join(f"controller.k{i}=0.{'0' * 40}1" for i in range(12))
    name = cfg.hydra.sweep.subdir
    assert len(name.encode()) == 2 + MAX_JOB_DIR_BYTES and name[-9] == "~"


# The same end to end, two benchmark jobs (6 s): run on purpose (-m slow).
@pytest.mark.slow
def test_job_folders_are_one_level_and_short_whatever_the_overrides(tmp_path):
    """A path in a swept value made nested job folders (the summary listed the job as "b.csv"), and a dozen
    overrides a folder name past the file system's 255 bytes: "OSError: File name too long", no job ran."""
    from rlnas.registration import MAX_JOB_DIR_BYTES, job_dir_name

    table = (ROOT.parent / "shared" / "benchmarks" / "nb201_cifar10_test.csv").resolve()
    many = [f"controller.{k}={v}" for k, v in [("lr", 0.01), ("lstm_size", 64), ("elite_size", 5)]]
    many += [f"controller.{k}=0.{'0' * 60}1" for k in ("entropy_weight", "skip_target", "risk_quantile")]
    sweep = ["-m", "+benchmark=nb201_cifar10", f"benchmark.path={table}", "benchmark.evaluations=10,12"]
    proc = run_cli(*sweep, *many, f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert [p.name[:2] for p in jobs] == ["0_", "1_"] and all(
        len(p.name.encode()) <= 2 + MAX_JOB_DIR_BYTES for p in jobs
    )
    assert all((p / "best_arch.json").is_file() for p in jobs) and jobs[0].name != jobs[1].name
    assert [j.num for j in read_sweep(tmp_path / "sweep")] == [0, 1]
    assert job_dir_name(f"task.data.root={table}") == f"task.data.root={str(table).replace('/', '_')}"
