"""End-to-end runs of ``python -m rlnas`` as a user types them."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlnas.__main__ import with_default_task
from tests.conftest import ROOT, run_cli


def test_smoke_search_writes_outputs(smoke_run):
    run_dir, proc = smoke_run
    best = json.loads((run_dir / "best_arch.json").read_text())
    assert set(best) >= {"arch", "decoded", "metrics", "costs"}
    assert len(best["arch"]) == len(best["decoded"]) == 21  # 6 layers: 6 ops + 15 skips
    assert 0.0 <= best["metrics"]["val_accuracy"] <= 1.0
    assert {"val_precision", "val_recall", "val_f1"} <= set(best["metrics"])
    assert best["costs"]["params"] > 1000
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert len(rows) == 1 * 2 * 4  # 1 controller epoch x 2 steps x 4 archs
    assert {"epoch", "arch", "reward", "accuracy", "params"} <= set(rows[0])
    assert {"size_mb", "latency_ms", "mflops"} <= set(best["costs"])
    assert (run_dir / "latency_lut.json").is_file() and (run_dir / "pareto.png").stat().st_size > 1000
    front = list(csv.DictReader((run_dir / "pareto.csv").open()))
    params = [float(r["params"]) for r in front]
    accuracy = [float(r["accuracy"]) for r in front]
    assert params == sorted(params) and accuracy == sorted(accuracy)  # cheaper is worse along the front
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    assert "best:" in proc.stdout and f"run dir: {run_dir}" in proc.stdout


def test_tensorboard_tags(smoke_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = smoke_run
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    expected = {
        "reward/mean",
        "reward/max",
        "controller/baseline",
        "controller/entropy",
        "controller/loss",
        "supernet/loss",
        "supernet/train_accuracy",
        "supernet/val_accuracy",
        "cost/params",
        "cost/latency_ms",
        "reward/penalty",
    }
    assert expected <= scalars
    texts = set(acc.Tags()["tensors"])
    assert {"best_arch/text_summary", "hparams/text_summary"} <= texts


# test_checkpoint.py's stop-and-resume from the command line reproduces, byte for byte, a reference run
# made in another process: the same determinism, in the default suite. This whole second run: -m slow.
@pytest.mark.slow
def test_same_seed_gives_same_best_arch(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    # Latency is measured, hence noisy: bit-identical reruns reuse the first run's table.
    lut = run_dir / "latency_lut.json"
    proc = run_cli("+experiment=smoke", f"hydra.run.dir={tmp_path}", f"costs.latency_table={lut}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "latency table reused" in proc.stdout + proc.stderr
    assert (tmp_path / "best_arch.json").read_text() == (run_dir / "best_arch.json").read_text()
    assert (tmp_path / "history.csv").read_text() == (run_dir / "history.csv").read_text()


def test_existing_run_is_never_overwritten(smoke_run):
    run_dir, _ = smoke_run
    # Hydra's record of the run's settings (.hydra/, read by the sweep summary) included: the refusal
    # comes before Hydra rewrites it with the refused start's settings.
    kept = ["best_arch.json", ".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml"]
    before = {name: (run_dir / name).read_text() for name in kept}
    proc = run_cli("+experiment=smoke", "seed=7", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2 and "already holds an earlier run (best_arch.json" in proc.stderr
    assert "resume=" not in proc.stderr  # a finished run cannot be continued
    assert {name: (run_dir / name).read_text() for name in kept} == before


def test_a_users_own_files_in_a_new_run_dir_are_never_replaced(tmp_path):
    """A search into a folder holding files of the names it writes refuses before writing any of them."""
    from rlnas.search.builder import taken_files

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "pareto.csv").write_text("my,table\n")
    (mine / "config.yaml").write_text("my: settings\n")
    proc = run_cli("+experiment=smoke", f"hydra.run.dir={mine}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "holds a run or a file a search writes (pareto.csv); choose another directory\n" in proc.stderr
    assert (mine / "pareto.csv").read_text() == "my,table\n" and (mine / "config.yaml").read_text() == "my: settings\n"
    assert not (mine / "status.json").exists()
    # Only a run's own status.json makes its config.yaml a run's (a search that failed early starts again there).
    (mine / "pareto.csv").unlink()
    assert taken_files(mine) == ["config.yaml"]
    (mine / "status.json").write_text(json.dumps({"status": "failed", "host": "h", "pid": 1}))
    assert taken_files(mine) == []
    outputs = ("controller.pt", "trials.csv", "trials_state.pt", "ground_truth.json", "pareto.png")
    for name in (*outputs, "tensorboard", "ray"):
        (mine / name).write_text("mine")  # a file where the search writes into a folder: a traceback before
        assert taken_files(mine) == [name]
        (mine / name).unlink()
    (mine / "tensorboard").mkdir()  # a folder of event files: a run's, new files go beside them
    assert taken_files(mine) == []


@pytest.mark.slow  # every controller (random included) runs a whole search in test_every_controller_runs_a_whole_search
def test_explicit_task_and_random_controller(tmp_path):
    proc = run_cli("+task=classification", "controller=random", "+experiment=smoke", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "best_arch.json").read_text())["task"] == "classification"


@pytest.mark.parametrize(
    "override, message",
    [
        ("search.epochs=0", "search.epochs must be >= 1"),  # a value check
        ("controller=foo", "controller=foo is not a controller config"),  # checked before Hydra composes
        ("seed=abc", "seed='abc' must be int"),  # a type check
        ("device=cuda:7", "device="),
    ],
)
def test_bad_config_is_one_line_and_exit_code_2(tmp_path, override, message):
    if override.startswith("device") and __import__("torch").cuda.is_available():
        pytest.skip("CUDA present")
    proc = run_cli("+experiment=smoke", override, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("rlnas: error:") and message in lines[-1]
    assert "Traceback" not in proc.stderr


def test_full_error_shows_the_traceback(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "rlnas", "+experiment=smoke", "search.epochs=0", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "search.epochs must be >= 1" in proc.stderr


def test_default_task_is_added_only_when_none_is_given():
    assert with_default_task([]) == ["+task=classification"]
    assert with_default_task(["seed=1"]) == ["seed=1", "+task=classification"]
    assert with_default_task(["+task=detection"]) == ["+task=detection"]
    assert with_default_task(["task=detection"]) == ["+task=detection"]  # as every other group is chosen
    assert with_default_task(["-m", "+task=classification,detection"]) == ["-m", "+task=classification,detection"]
    assert with_default_task(["+experiment=smoke", "+task=detection"]) == ["+task=detection", "+experiment=smoke"]
    # Hydra's --info takes an optional value: the added task went into it ("invalid choice").
    assert with_default_task(["--info"]) == ["+task=classification", "--info"]
    assert with_default_task(["+experiment=smoke", "-i"]) == ["+task=classification", "+experiment=smoke", "-i"]
    # every group spelled either way, as Hydra takes it: "No match in the defaults list" for experiment=smoke,
    # "Multiple values for controller. To override a value use 'override controller: random'" for +controller=
    assert with_default_task(["experiment=smoke"]) == ["+task=classification", "+experiment=smoke"]
    assert with_default_task(["benchmark=toy"]) == ["+benchmark=toy"]
    assert with_default_task(["+controller=random", "++space=nb201"]) == [
        "controller=random",
        "++space=nb201",
        "+task=classification",
    ]


@pytest.mark.parametrize(
    "override, message",
    [
        ("space=conv1d", "a +benchmark run's architectures are its table's"),
        ("space.num_layers=3", "a +benchmark run's architectures are its table's"),
        ("search.epochs=99", "a +benchmark run looks each architecture up in its table and reads no search.*"),
        ("costs.latency_table=x.json", "reads no costs.* settings; drop it (its costs are the table's columns"),
        ("selection.rule=knee", "reads no selection.* settings"),
        ("checkpoint.stop_after=2", "reads no checkpoint.* settings"),
        ("data_seed=5", "reads no data_seed (it has no data to split)"),
        ("device=cuda", "reads no device (it trains nothing"),
    ],
)
def test_settings_a_table_run_does_not_read_are_refused_not_ignored(override, message):
    from rlnas.config import ConfigError, check_overrides

    # The run went ahead on the table's own decisions and columns, the setting ignored.
    with pytest.raises(ConfigError, match=re.escape(f"{override}: ") + ".*" + re.escape(message)):
        check_overrides(["+benchmark=toy", override])
    check_overrides(["+benchmark=toy", "controller=evolution"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("search.epochs=3", "reads of search.* only batch_size, optimizer, lr, lr_min, momentum, nesterov"),
        ("search.weight_decay=0.1", "set the trials' training with trials.epochs or trials.train.weight_decay="),
        ("checkpoint.every=2", "reads no checkpoint.* settings"),
        ("selection.rule=top_k", "picks the best reward among its fully trained trials"),
        ("selection.k=5", "picks the best reward among its fully trained trials"),
    ],
)
def test_settings_a_trial_search_does_not_read_are_refused_not_ignored(override, message):
    from rlnas.config import ConfigError, check_overrides

    # The trial search went ahead without them (selection.rule=top_k, search.epochs=3: the same run).
    with pytest.raises(ConfigError, match=re.escape(f"{override}: ") + ".*" + re.escape(message)):
        check_overrides(["+task=mnist1d", "+trials=default", override])
    check_overrides(["+task=mnist1d", "+trials=default", "search.lr=0.1", "selection.cost=mflops"])


def test_a_group_chosen_twice_is_named():
    from rlnas.config import ConfigError, check_overrides

    with pytest.raises(ConfigError, match=re.escape("task is chosen twice (+task=mnist1d, +task=detection)")):
        check_overrides(["+task=mnist1d", "+task=detection"])
    with pytest.raises(ConfigError, match=re.escape("~task: a search needs a task")):  # "Key 'task' is not in struct"
        check_overrides(["~task", "+task=classification"])
    # "Key 'trials' is not in struct": its section comes with the group
    with pytest.raises(ConfigError, match=re.escape("trials.budget=5: trials.* settings come with +trials=NAME")):
        check_overrides(["+task=mnist1d", "trials.budget=5"])
    check_overrides(["+task=mnist1d", "+trials=default", "trials.budget=5"])


def test_config_dir_given_twice_is_named_before_hydra_reads_only_the_last(tmp_path):
    from rlnas.config import ConfigError, check_overrides

    a, b = tmp_path / "a", tmp_path / "b"
    (a / "space").mkdir(parents=True)
    b.mkdir()
    # Hydra's many-line "Could not find 'space/tiny'": it read the second folder only
    with pytest.raises(ConfigError, match=r"--config-dir is given 2 times .*hydra.searchpath=\[DIR1,DIR2\]"):
        check_overrides(["--config-dir", str(a), f"--config-dir={b}", "+experiment=smoke"])


@pytest.mark.parametrize(
    "hydra_yaml, expected",
    [
        ("hydra:\n  job:\n    name: first\n", "hydra.job.name=first"),
        # the file is data: a name that would move the log out of the run dir is not taken
        ("hydra:\n  job:\n    name: ../../elsewhere\n", None),
        ("a: &a [1, 2]\nb: [*a, *a]\n", None),
        ("hydra: [unclosed\n", None),
        (None, None),
    ],
)
def test_a_resume_logs_under_the_job_name_of_the_first_start(tmp_path, hydra_yaml, expected):
    if hydra_yaml is not None:
        (tmp_path / ".hydra").mkdir()
        (tmp_path / ".hydra" / "hydra.yaml").write_text(hydra_yaml)
    names = [a for a in with_default_task([f"resume={tmp_path}"]) if a.startswith("hydra.job.name=")]
    assert names == ([expected] if expected else [])
    given = with_default_task([f"resume={tmp_path}", "hydra.job.name=mine"])
    assert [a for a in given if a.startswith("hydra.job.name=")] == ["hydra.job.name=mine"]


def test_a_resume_given_empty_or_twice_is_named_as_such():
    from rlnas.cli import resume_error

    # was "hydra.run.dir is empty", and "resume=B continues in its own directory; drop hydra.run.dir=A"
    assert resume_error(["resume="]) == "resume= is empty; name the run dir of the search to continue"
    assert resume_error(["resume=a", "seed=1", "resume=b"]).startswith("resume is given 2 times (a, b)")
    assert resume_error(["resume=runs/x", "threads=2"]) is None and resume_error(["seed=1"]) is None
    # A sweep over run dirs failed in Hydra ("Sweeping over Hydra's configuration is not supported", a traceback).
    for typed in ("runs/a,runs/b", "glob(runs/*)"):
        assert resume_error(["-m", f"resume={typed}"]) == (
            f"resume={typed} sweeps over run dirs; a sweep cannot resume several runs: resume each with its own "
            "command (python -m rlnas resume=RUN_DIR)"
        )
    assert resume_error(["-m", "resume=runs/a"]) is None and resume_error(["-m", "resume='runs/a,b'"]) is None


def test_a_sweep_whose_jobs_cannot_compose_is_named_in_one_line():
    from rlnas.config import ConfigError, check_overrides

    # Hydra stopped such a sweep with its multi-line "Could not override ..." report and exit 1
    with pytest.raises(ConfigError, match=re.escape("add it with +space.stem_stride=1,2 (in the sweep's first job)")):
        check_overrides(["-m", "space.stem_stride=1,2", "+task=classification"])
    with pytest.raises(ConfigError, match="search.epoch is not a setting; allowed: archs_per_step"):
        check_overrides(["-m", "search.epoch=1,2", "+task=classification"])
    check_overrides(["-m", "seed=range(2)", "controller=enas,tpe", "+task=classification"])  # composes: no error
    # A value swept twice runs the same job twice, as typed: it was "list index out of range (in the sweep's
    # first job)".
    check_overrides(["-m", "seed=0,0", "+task=classification"])


@pytest.mark.parametrize(
    "sweep, message",
    [
        # Hydra ran seed=0's whole search, then stopped with "Error executing job with overrides", exit 1
        (["seed=0,abc"], "seed='abc' must be int (in the sweep's job with seed=abc)"),
        (["seed=abc,1"], "seed='abc' must be int (in the sweep's first job)"),
        (
            ["seed=0,1", "search.lr=0.1,nan"],
            "search.lr=nan must be a finite number (in the sweep's job with search.lr=nan)",
        ),
        (["seed=range(100),-1"], None),  # Hydra's grammar: not one sweep; Hydra reports it
        (["controller=enas,tpe", "controller.lr=0.1"], "controller.lr is not a setting of TPEController"),
        # Hydra's traceback: "BasicSweeper does not support sweep type : INTERVAL_SWEEP"
        (["search.lr=interval(0.01,0.1)"], "search.lr=interval(0.01,0.1): the sweeper sweeps lists, range()"),
    ],
)
def test_each_value_of_a_sweep_is_checked_before_its_first_job(sweep, message):
    from rlnas.config import ConfigError, check_overrides

    argv = ["-m", *sweep, "+task=classification"]
    if message is None:
        check_overrides(argv)
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_overrides(argv)


def test_a_sweeps_bad_value_in_a_long_range_is_checked_first():
    from rlnas.config import ConfigError, check_overrides
    from rlnas.utils.sweeps import MAX_CHECKED_JOBS, sweep_jobs

    values = ",".join([*map(str, range(3 * MAX_CHECKED_JOBS)), "x"])
    jobs = sweep_jobs([f"seed={values}", "+task=classification"])
    assert len(jobs) == MAX_CHECKED_JOBS and jobs[1][0][0] == "seed=x"  # the odd type first, within the cap
    with pytest.raises(ConfigError, match=re.escape("seed='x' must be int")):
        check_overrides(["-m", f"seed={values}", "+task=classification"])
    # every value once, not every combination: a,b x c,d x e,f is 4 jobs, not 8
    assert len(sweep_jobs(["seed=0,1", "controller=enas,tpe", "search.lr=0.1,0.2"])) == 4


def test_a_large_sweep_says_why_its_first_job_waits(capsys):
    """Hydra composes every job's config before the first starts: 100,000 jobs were hours without a word."""
    from rlnas.__main__ import SAY_SWEEP_JOBS, say_sweep_start
    from rlnas.utils.sweeps import sweep_size

    assert sweep_size(["seed=range(0,5)", "controller=enas,tpe", "search.lr=0.1"]) == 10
    assert sweep_size(["controller=glob(*ppo*)"]) is None  # the names only Hydra's config loader knows
    say_sweep_start(["-m", f"seed=range(0,{SAY_SWEEP_JOBS - 1})"])
    assert capsys.readouterr().err == ""
    say_sweep_start(["-m", "seed=range(0,1000)", "search.lr=0.1,0.2"])
    assert capsys.readouterr().err == (
        "rlnas: a sweep of 2,000 jobs: Hydra composes each job's config before the first starts (about 0.1 s "
        "each); hydra.sweeper.max_batch_size=N launches them N at a time instead\n"
    )
    say_sweep_start(["-m", "seed=range(0,1000)", "hydra.sweeper.max_batch_size=8"])  # the user's choice made
    assert capsys.readouterr().err == ""


def test_a_generator_mapping_is_set_as_typed():
    # task.data.generator={iid_noise_scale: 0.05}: Hydra's "Key 'iid_noise_scale' is not in struct"
    # (the default is {}), though the same names work one by one with +.
    argv = with_default_task(["+task=mnist1d", "task.data.generator={iid_noise_scale: 0.05}"])
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=argv)
    assert dict(cfg.task.data.generator) == {"iid_noise_scale": 0.05}


@pytest.mark.parametrize(
    "sweep, message",
    [
        # Hydra launched 0 jobs and exited 0: a glob over values, or one that matches no option
        ("seed=glob(*)", "seed=glob(*): glob() picks options of a config group"),
        ("controller=glob(zz*)", "controller=glob(zz*) matches no controller config; options: darts"),
        # Hydra's many-line report with exit 1
        ("hydra/launcher=ray", "Could not find 'hydra/launcher/ray'"),
    ],
)
def test_sweeps_that_would_launch_nothing_or_fail_in_hydra_are_named_first(sweep, message, tmp_path):
    from rlnas.config import ConfigError, check_overrides

    with pytest.raises(ConfigError, match=re.escape(message)):
        check_overrides(["-m", "+experiment=smoke", "seed=0,1", sweep])
    check_overrides(["-m", "+experiment=smoke", "controller=glob([e*,r*],exclude=rand*)"])  # matches enas
    # A launcher of the user's own config dir is found there.
    (tmp_path / "hydra" / "launcher").mkdir(parents=True)
    (tmp_path / "hydra" / "launcher" / "mine.yaml").write_text(
        "# @package hydra.launcher\n_target_: hydra._internal.core_plugins.basic_launcher.BasicLauncher\n"
    )
    check_overrides(["--config-dir", str(tmp_path), "-m", "+experiment=smoke", "seed=0,1", "hydra/launcher=mine"])


@pytest.mark.parametrize("group", ["space", "controller", "reward"])
def test_every_config_in_group_composes_and_instantiates(group):
    from hydra.utils import instantiate

    from rlnas.spaces import MacroSpace, SearchSpace

    options = sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))
    assert options
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        for option in options:
            cfg = compose("config", overrides=[f"{group}={option}", "+task=classification", "+experiment=smoke"])
            if group == "space":
                space = instantiate(cfg.space)
                assert isinstance(space, SearchSpace) and space.size > 1
            elif group == "controller":
                from rlnas.search.builder import build_controller

                ctrl = build_controller(cfg.controller, MacroSpace(), seed=0)
                assert len(ctrl.propose(2)) == 2
            else:
                from rlnas.search.builder import build_reward

                reward, _ = build_reward(cfg.reward, "accuracy")
                assert callable(reward) and reward.metric == "accuracy"


@pytest.mark.gpu
def test_smoke_search_on_cuda(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    proc = run_cli("+experiment=smoke", "device=cuda", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "best_arch.json").read_text())["metrics"]["val_accuracy"] > 0


@pytest.mark.parametrize("task", ["classification", "detection"])
def test_task_configs_compose_with_their_space(task):
    from hydra.utils import instantiate

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"+task={task}", "+experiment=smoke"])
        assert cfg.search.epochs == 2  # the preset wins over the task's budgets
        space = instantiate(cfg.space)
        assert instantiate(cfg.task).name == task
        if task == "detection":
            assert space.stem_stride == 4 and space.activation == "leaky_relu" and "conv5x5" in space.ops
        override = compose("config", overrides=[f"+task={task}", "space=macro", "reward=mnas"])
        assert instantiate(override.space).ops == ("conv3x3", "sepconv3x3", "maxpool3x3", "avgpool3x3")
        assert override.reward._target_.endswith("MnasReward")  # the command line beats the task's default


def test_hard_limit_with_masks_keeps_every_sample_feasible(tmp_path):
    proc = run_cli(
        "+experiment=smoke",
        "reward=hard",
        "reward.targets.size_mb=null",
        "reward.targets.params=30000",
        "reward.mask_infeasible=true",
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert rows and all(float(r["params"]) <= 30000 for r in rows)
    assert json.loads((tmp_path / "best_arch.json").read_text())["costs"]["params"] <= 30000


ALL_CONTROLLERS = ["enas", "random", "grid", "tpe", "evolution", "ppo", "maskable_ppo", "recurrent_ppo"]


# Whole searches from the command line, one per controller (11 s for the PPO family alone): run on purpose
# (-m slow). The default suite runs each controller's whole search from its config in-process
# (test_checkpoint.py, recurrent_ppo on the tables in test_fair_budgets.py), SB3's own train() in
# test_sb3_controllers.py, and enas from the command line in every smoke run.
@pytest.mark.slow
@pytest.mark.parametrize("family", ["ppo", "others"])
def test_every_controller_runs_a_whole_search(family, tmp_path):
    ppo = [c for c in ALL_CONTROLLERS if c.endswith("ppo")]
    chosen = ppo if family == "ppo" else [c for c in ALL_CONTROLLERS if c not in ppo]
    # The smoke search observes 8 architectures: rollouts of 4 make the PPO family train twice.
    extra = ["++controller.rollout_archs=4"] if family == "ppo" else []
    proc = run_cli("-m", f"controller={','.join(chosen)}", *extra, "+experiment=smoke", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ran = {}
    for config in tmp_path.glob("*/config.yaml"):
        target = yaml.safe_load(config.read_text())["controller"]["_target_"]
        ran[target.rsplit(".", 1)[1]] = config.parent
    assert len(ran) == len(chosen)
    for run_dir in ran.values():
        assert json.loads((run_dir / "best_arch.json").read_text())["metrics"]["val_accuracy"] > 0
    for name in ("PPOController", "MaskablePPOController", "RecurrentPPOController") if family == "ppo" else ():
        assert (ran[name] / "controller_sb3.zip").is_file()
        state = torch.load(ran[name] / "controller.pt", weights_only=False)
        assert state["updates"] >= 1, (name, state["updates"])  # SB3's own train() ran


@pytest.mark.parametrize(
    "typed, parsed",
    [
        (["+benchmark=toy", "-m", "seed=0,1"], ["-m", "+benchmark=toy", "seed=0,1"]),
        (["seed=1", "--cfg", "job", "search.epochs=2"], ["--cfg", "job", "seed=1", "search.epochs=2"]),
        (["seed=1", "--config-dir", "my conf", "-m", "x=1"], ["--config-dir", "my conf", "-m", "seed=1", "x=1"]),
        (["seed=1", "--info", "x=2"], ["seed=1", "x=2", "--info"]),  # bare: no override is read as its value
        (["seed=1", "--info", "defaults", "x=2"], ["--info", "defaults", "seed=1", "x=2"]),
        (["--cfg=job", "seed=1", "-r"], ["--cfg=job", "-r", "seed=1"]),
        (["+benchmark=toy", "hydra.mode=MULTIRUN", "seed=0,1"], ["-m", "+benchmark=toy", "seed=0,1"]),
    ],
)
def test_flags_typed_between_overrides_reach_hydra_before_them(typed, parsed):
    """Hydra's parser takes overrides as one list: a flag in the middle would end it ("unrecognized arguments")."""
    from rlnas.utils.rundir import flags_first

    assert flags_first(typed) == parsed


@pytest.mark.parametrize("name", ["1e3", "true", "null", "inf", "007"])
def test_a_run_dir_named_like_a_number_or_a_boolean_stays_that_name(name):
    from rlnas.cli import PATH_KEYS, quote_paths
    from rlnas.config import CONF_DIR

    # hydra.run.dir=1e3: Hydra's own files went to 1e3/, the run's to 1000.0/
    (arg,) = quote_paths([f"hydra.run.dir={name}"], PATH_KEYS)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+task=classification", arg], return_hydra_config=True)
    assert OmegaConf.select(cfg, "hydra.run.dir") == name


def test_a_multirun_quotes_its_sweep_dir_and_leaves_sweeps_as_typed():
    from rlnas.cli import PATH_KEYS, quote_paths

    # -m hydra.sweep.dir=1e3 went to 1000.0/; the sweep dir is one for all jobs, never a sweep itself
    assert quote_paths(["-m", "hydra.sweep.dir=1e3", "seed=0,1"], PATH_KEYS) == [
        "-m",
        "hydra.sweep.dir='1e3'",
        "seed=0,1",
    ]
    assert quote_paths(["-m", "resume=1e3"], PATH_KEYS) == ["-m", "resume='1e3'"]
    swept = ["-m", "resume=runs/a,runs/b", "arch=glob(*.json)"]
    assert quote_paths(swept, PATH_KEYS) == swept  # a comma or a sweep function: the sweep typed
    # costs.latency_table=null (its default) was quoted into a file named "null": "no such file (null measures
    # a table in the run dir)"; a run dir stays a folder whatever its name
    nulls = ["costs.latency_table=null", "controller.init_from=null", "task.data.root=null"]
    assert quote_paths(nulls, PATH_KEYS) == nulls
    assert quote_paths(["hydra.run.dir=null"], PATH_KEYS) == ["hydra.run.dir='null'"]


@pytest.mark.parametrize("name", ["résumé données", "a~b", "x#1", "r&d!"])
def test_a_run_dir_of_any_characters_a_shell_passes_takes_the_run(tmp_path, name):
    """Hydra's grammar reads an accented letter, ``~``, ``#`` or ``&`` unquoted as an error: paths are quoted for it."""
    from rlnas.cli import PATH_KEYS, quote_paths
    from rlnas.config import CONF_DIR

    run = tmp_path / name
    (arg,) = quote_paths([f"hydra.run.dir={run}"], PATH_KEYS)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+task=classification", arg], return_hydra_config=True)
    assert cfg.hydra.run.dir == str(run)


def test_a_run_dir_name_too_long_for_the_system_is_one_line(tmp_path):
    proc = run_cli(f"hydra.run.dir={tmp_path / ('a' * 300)}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "File name too long" in proc.stderr.strip().splitlines()[-1]


def test_a_flag_between_overrides_is_the_same_command():
    proc = run_cli("+benchmark=toy", "--cfg", "job", "seed=3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert yaml.safe_load(proc.stdout)["seed"] == 3


def test_every_entry_point_explains_itself():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    for group in ("task", "space", "controller", "reward", "benchmark", "experiment"):
        for path in sorted((ROOT / "conf" / group).glob("*.yaml")):
            row = next((line for line in lines if line.split()[:1] == [path.stem]), None)
            assert row is not None, f"{group}={path.stem} missing from --help"
            assert len(row.split()) > 2, f"{group}={path.stem} has no description: {row!r}"
    retrain = subprocess.run(
        [sys.executable, "-m", "rlnas.retrain", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert retrain.returncode == 0 and "arch=RUN_DIR/best_arch.json" in retrain.stdout
    assert "compress:" in retrain.stdout and "controller" not in retrain.stdout  # its own settings, not the search's
    predict = subprocess.run(
        [sys.executable, "-m", "rlnas.predict", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert predict.returncode == 0 and "model (required)" in predict.stdout


def test_make_run_composes_a_valid_search_that_ends_with_the_ground_truth():
    """`make run` is a newcomer's first command: its arguments compose and pass every config check."""
    import re

    from rlnas.config import validate_config

    makefile = (ROOT / "Makefile").read_text()
    args = re.search(r"^RUN_ARGS \?= (.*)$", makefile, re.MULTILINE).group(1).split()
    assert "$(RUN_ARGS) $(ARGS)" in makefile
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", with_default_task(args))
    validate_config(cfg)
    assert cfg.ground_truth.random >= 1 and cfg.ground_truth.epochs >= 1  # the last line compares with random draws


def test_a_sweep_into_the_folder_of_an_earlier_sweep_is_refused_before_hydra_rewrites_its_record(tmp_path):
    """Hydra replaced the earlier sweep's multirun.yaml (its only record of the sweep) as the new one started."""
    sweep = tmp_path / "sweep"
    (sweep / "0_seed=0" / ".hydra").mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra: {mode: MULTIRUN}\n")
    (sweep / "0_seed=0" / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    (sweep / "0_seed=0" / "best_arch.json").write_text("{}")
    before = {p: p.read_bytes() for p in sorted(sweep.rglob("*")) if p.is_file()}
    proc = run_cli("-m", "+experiment=smoke", "seed=1,2", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"hydra.sweep.dir={sweep} already holds an earlier sweep (multirun.yaml); choose" in proc.stderr
    assert {p: p.read_bytes() for p in sorted(sweep.rglob("*")) if p.is_file()} == before
    from rlnas.utils.rundir import refuse_earlier_sweep

    (sweep / "multirun.yaml").unlink()  # a job's results alone are an earlier sweep too
    with pytest.raises(ValueError, match=r"earlier sweep \(0_seed=0/best_arch.json\)"):
        refuse_earlier_sweep(sweep)
    (tmp_path / "empty").mkdir()
    refuse_earlier_sweep(tmp_path / "empty")  # a new or empty folder is used
    refuse_earlier_sweep(tmp_path / "new")


@pytest.mark.parametrize("value", ["0", "1.5", "many", "-0"])
def test_a_joblib_job_count_that_joblib_cannot_take_is_named_before_the_sweep(value):
    from rlnas.config import ConfigError, check_overrides
    from rlnas.utils.rundir import check_launcher_jobs

    argv = ["-m", "+experiment=smoke", "seed=0,1", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={value}"]
    # n_jobs=0 was joblib's "n_jobs == 0 in Parallel has no meaning" traceback, for searches and retrains alike.
    with pytest.raises(ConfigError, match=rf"hydra.launcher.n_jobs={value} must be a whole number other than 0"):
        check_overrides(argv)
    with pytest.raises(ValueError, match="other than 0"):
        check_launcher_jobs(argv)
    for fine in ("-1", "2", "null"):
        check_launcher_jobs([f"hydra.launcher.n_jobs={fine}"])


def test_starts_in_the_same_second_get_their_own_run_dirs(tmp_path):
    """Two searches started in one second resolved one outputs/runs/DATE/TIME: the second, refused there,
    had already let Hydra replace the first one's .hydra/ record with its own settings."""
    import datetime

    year = datetime.datetime.now().strftime("%Y")
    user_conf = tmp_path / "conf"
    (user_conf / "hydra").mkdir(parents=True)
    # A time stamp that stays the same while the test runs, as the default's seconds do for two quick starts.
    (user_conf / "hydra" / "yearly.yaml").write_text("# @package hydra\nrun:\n  dir: runs/${now:%Y}\n")
    first = tmp_path / "runs" / year
    (first / ".hydra").mkdir(parents=True)
    (first / ".hydra" / "config.yaml").write_text("controller: {_target_: rlnas.controllers.ENASController}\n")
    (first / "best_arch.json").write_text("{}")
    before = {p: p.read_bytes() for p in sorted(first.rglob("*")) if p.is_file()}
    # A setting refused only once the job has started (after Hydra wrote .hydra/): no search needs to run.
    argv = ["--config-dir", str(user_conf), "hydra=yearly", "controller=random", "task.data.limit=-5"]
    proc = run_cli(*argv, cwd=tmp_path)
    assert proc.returncode == 2 and "task.data.limit must be >= 1" in proc.stderr, proc.stderr[-2000:]
    assert {p: p.read_bytes() for p in sorted(first.rglob("*")) if p.is_file()} == before
    second = tmp_path / "runs" / f"{year}_2"
    assert "RandomController" in (second / ".hydra" / "config.yaml").read_text()
    from rlnas.utils.rundir import new_run_dir

    overrides = ["+task=classification", f"hydra.run.dir={tmp_path}/r/${{now:%Y}}"]
    claimed = [new_run_dir(ROOT / "conf", "config", overrides) for _ in range(3)]
    assert claimed == [f"{tmp_path}/r/{year}", f"{tmp_path}/r/{year}_2", f"{tmp_path}/r/{year}_3"]
    assert new_run_dir(ROOT / "conf", "config", ["+task=classification", f"hydra.run.dir={tmp_path}/fixed"]) is None
    # A sweep's folder the same way, its swept overrides (which one composition cannot take) left out.
    sweep = ["-m", "+task=classification", "seed=0,1", f"hydra.sweep.dir={tmp_path}/s/${{now:%Y}}"]
    claimed = [new_run_dir(ROOT / "conf", "config", sweep, "sweep") for _ in range(2)]
    assert claimed == [f"{tmp_path}/s/{year}", f"{tmp_path}/s/{year}_2"]


def test_paths_as_typed_are_read_from_the_launch_dir_when_hydra_changes_into_the_run_dir(tmp_path):
    """hydra.job.chdir=true ran the job inside its run dir: task.data.root=data named run_dir/data there."""
    import subprocess
    import sys

    (tmp_path / "pets" / "cat").mkdir(parents=True)  # one class: refused by the loader, after the path is found
    proc = run_cli(
        "hydra.job.chdir=true", "task.data.name=imagefolder", "task.data.root=pets", "hydra.run.dir=run", cwd=tmp_path
    )
    assert proc.returncode == 2 and "is not a directory" not in proc.stderr, proc.stderr[-2000:]
    assert str(tmp_path / "pets") in proc.stderr
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "best_arch.json").write_text("[]")
    retrain = [sys.executable, "-m", "rlnas.retrain", "arch=search", "hydra.job.chdir=true", "hydra.run.dir=out"]
    proc = subprocess.run(retrain, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no such file" not in proc.stderr, proc.stderr[-2000:]
    assert str(tmp_path / "search") in proc.stderr


@pytest.mark.parametrize(
    "word, hint",
    [
        ("classification", "; did you mean +task=classification?"),
        ("evolution", "; did you mean controller=evolution?"),
        ("seed", ""),
    ],
)
def test_a_word_that_is_not_key_value_is_named_with_the_group_it_may_mean(word, hint):
    """Hydra's own message was its grammar: "Error parsing override 'classification': missing EQUAL at '<EOF>'"."""
    from rlnas.config import ConfigError, check_overrides

    with pytest.raises(ConfigError) as err:
        check_overrides(["+experiment=smoke", word])
    assert str(err.value) == f"argument {word!r} is not key=value (a setting key=value, a config GROUP=NAME){hint}"
    check_overrides(["--config-dir", "conf", "+task=classification"])  # a flag's value is no such word


def test_retrain_names_a_run_dir_given_without_arch(monkeypatch, capsys):
    import rlnas.retrain

    monkeypatch.setattr(sys, "argv", ["rlnas.retrain", "outputs/runs/x"])
    with pytest.raises(SystemExit) as stop:
        rlnas.retrain.main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "rlnas.retrain: error: argument 'outputs/runs/x' is not key=value; did you mean arch=outputs/runs/x?"
    )


@pytest.mark.parametrize(
    "variable, value, named",
    [
        # torchmetrics read LOCAL_RANK when first imported, at the search's final scoring: "invalid literal for
        # int() with base 10: 'abc'" after every epoch, no best_arch.json
        ("LOCAL_RANK", "abc", "environment variable LOCAL_RANK='abc' is not a whole number"),
        ("WORLD_SIZE", "two", "environment variable WORLD_SIZE='two' is not a whole number"),
        ("RANK", "-1", "environment variable RANK='-1' is not a whole number"),
        # import matplotlib failed at the search's first figure, after its epochs
        ("MPLBACKEND", "nonsense", "environment variable MPLBACKEND='nonsense' is not a matplotlib backend"),
    ],
)
def test_an_environment_that_would_fail_late_is_named(variable, value, named, monkeypatch):
    import matplotlib  # noqa: F401 - as in a process that drew before: the variable is asked of it directly

    from rlnas.utils.errors import environment_error

    monkeypatch.setenv(variable, value)
    assert environment_error().startswith(named)
    monkeypatch.setenv(variable, "0" if variable != "MPLBACKEND" else "agg")
    assert environment_error() is None


def test_a_world_size_without_its_ranks_is_named(monkeypatch):
    """WORLD_SIZE=2 left set in a shell (no torchrun) stopped with "rlnas: error: RANK", a KeyError's message."""
    from rlnas.utils.errors import environment_error

    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert environment_error() == (
        "environment variable WORLD_SIZE=2 without RANK: start the ranks with torchrun (or unset it)"
    )
    monkeypatch.setenv("RANK", "5")
    assert environment_error().startswith("environment variable RANK=5 is not below WORLD_SIZE=2")
    monkeypatch.setenv("RANK", "1")
    assert environment_error() is None


def test_an_argument_the_locale_could_not_decode_is_named_before_any_work(monkeypatch):
    # LC_ALL=POSIX PYTHONUTF8=0 and hydra.run.dir=日本: "'utf-8' codec can't encode characters in position
    # 10-15: surrogates not allowed", naming nothing, after a half-made run dir
    from rlnas.utils.errors import environment_error

    undecoded = "日本".encode().decode("ascii", "surrogateescape")  # as Python decodes argv in an ASCII locale
    monkeypatch.setattr(sys, "argv", ["rlnas", "seed=1", f"hydra.run.dir=/runs/{undecoded}"])
    assert environment_error().startswith("argument hydra.run.dir=/runs/日本 holds bytes that are not text")
    monkeypatch.setattr(sys, "argv", ["rlnas", "hydra.run.dir=/runs/日本"])  # decoded: nothing to say
    assert environment_error() is None


def test_every_command_names_such_an_environment_before_any_work(tmp_path, monkeypatch, capsys):
    from rlnas.retrain import main as retrain_main
    from tools._common import run_tool

    run_dir = tmp_path / "run"
    proc = subprocess.run(  # the search, as typed
        [sys.executable, "-m", "rlnas", "+experiment=smoke", f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        env={**os.environ, "LOCAL_RANK": "abc"},
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and not run_dir.exists()
    assert proc.stderr.strip() == (
        "rlnas: error: environment variable LOCAL_RANK='abc' is not a whole number; torchrun sets it (unset it)"
    )
    # the retrain and the tools, in this process: each stops before any work
    monkeypatch.setenv("MPLBACKEND", "nonsense")
    for prog, start in [
        ("rlnas.retrain", retrain_main),
        ("bench_tabular.py", lambda: run_tool(lambda: pytest.fail("the tool ran"))),
    ]:
        monkeypatch.setattr(sys, "argv", [prog, "arch=x.json", f"hydra.run.dir={run_dir}"])
        with pytest.raises(SystemExit) as info:
            start()
        assert info.value.code == 2 and not run_dir.exists()
        assert capsys.readouterr().err.startswith(f"{prog}: error: environment variable MPLBACKEND='nonsense'")


def test_a_run_dir_the_output_encoding_cannot_spell_is_printed_escaped(tmp_path):
    # PYTHONIOENCODING=ascii: the search's last line raised UnicodeEncodeError after all its work (exit 1)
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    run_dir = tmp_path / "résumé"
    proc = subprocess.run(
        [sys.executable, "-m", "rlnas", "+benchmark=toy", "benchmark.evaluations=20", f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "r\\xe9sum\\xe9" in proc.stdout and (run_dir / "summary.json").is_file()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (every write: no space left)")
def test_a_search_whose_standard_streams_fail_or_are_closed_keeps_its_run(tmp_path):
    """``> /dev/full``: every log line printed "--- Logging error ---" and a traceback, and the last line
    ended the finished search with exit 1 and Hydra's bare "OSError: [Errno 28]"."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    run_dir = tmp_path / "run"
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "rlnas", "+benchmark=toy", "benchmark.evaluations=20", f"hydra.run.dir={run_dir}"],
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=env,
        )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.count("rlnas: warning: standard output: No space left on device") == 1
    assert json.loads((run_dir / "summary.json").read_text())["evaluations"] == 20
    # Started with stderr closed (2>&-): the first progress bar failed the run ("'NoneType' object has no
    # attribute 'write'", exit 1).
    closed = tmp_path / "closed"
    command = (
        f"exec 2>&-; exec {sys.executable} -m rlnas +benchmark=toy benchmark.evaluations=20 hydra.run.dir={closed}"
    )
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and "best:" in proc.stdout, proc.stdout[-2000:]
    assert json.loads((closed / "status.json").read_text())["status"] == "completed"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (every write: no space left)")
@pytest.mark.parametrize(
    "command, prog",
    [
        (["-m", "rlnas", "--help"], "rlnas"),  # "a run file: No space left on device" (it was stdout)
        (["-m", "rlnas.retrain", "--help"], "rlnas.retrain"),  # an OSError traceback
        (["tools/summarize_sweep.py", "--help"], "summarize_sweep"),  # the same
    ],
)
def test_help_to_a_full_device_is_named_once(command, prog):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, *command], cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, env=env
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == f"{prog}: warning: standard output: No space left on device; nothing more is printed there\n"


def test_hydra_flags_that_replace_the_config_or_need_another_flag_are_one_line(tmp_path):
    """--config-name/--config-path ended in Hydra's multi-line "Cannot find primary config" report, --resolve alone
    in a ValueError traceback; the config every run is checked against cannot be swapped."""
    from rlnas.utils.errors import flag_error

    for argv in (["--config-name", "mine"], ["--config-path=/tmp"], ["-cn", "x"], ["-cp", "x"]):
        assert flag_error(argv).startswith(f"{argv[0].split('=')[0]} replaces conf/config.yaml")
    assert flag_error(["--resolve"]) == "--resolve prints a config resolved: give it with --cfg job (or --help)"
    assert flag_error(["--cfg", "job", "--resolve"]) is None and flag_error(["--config-dir", "d", "seed=1"]) is None
    done = run_cli("--config-name", "nosuch", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "rlnas: error: --config-name replaces conf/config.yaml, which every run is built from; add your configs "
        "with --config-dir DIR instead (they join conf/: DIR/task/mine.yaml is +task=mine)"
    ]
    assert not (tmp_path / "run").exists()
