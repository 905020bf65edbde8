"""The trial search: ask/tell between controller and trials, training decisions, Ray Tune runs, resume."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from rlnas.controllers.base import Controller, RandomController
from rlnas.controllers.baselines import EvolutionController
from rlnas.controllers.enas import ENASController
from rlnas.spaces import MacroSpace
from rlnas.spaces.training import TrainingSpace
from rlnas.trials.planner import Outcome, TrialPlanner
from rlnas.trials.records import TrialLog
from tests.conftest import ROOT, run_cli

#: A small MNIST-1D (180 training signals) and two-epoch trials: seconds per search.
SMALL = [
    "+task=mnist1d",
    "+trials=default",
    "task.data.num_samples=1200",
    "trials.epochs=2",
    "trials.grace_period=1",
    "trials.budget=4",
    "trials.batch=2",
    "ground_truth.random=0",
]


class Recorder(Controller):
    """Proposes from a fixed list (repeats included) and records what it observes."""

    def __init__(self, space, proposals):
        super().__init__(space)
        self.proposals = [tuple(a) for a in proposals]
        self.observed: list[tuple[list, list]] = []

    def propose(self, n):
        out, self.proposals = self.proposals[:n], self.proposals[n:]
        return out or [self.sample_allowed() for _ in range(n)]

    def observe(self, archs, rewards):
        self.observed.append((list(archs), list(rewards)))
        return {}


def _cfg(*overrides):
    """The app's config for ``overrides``."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", list(overrides))


def _distinct(space, n):
    """``n`` different architectures of ``space``."""
    return [tuple(a) for a in itertools.islice(itertools.product(*(range(int(k)) for k in space.num_choices)), n)]


def _outcome(index, arch, reward=0.5, status="completed"):
    return Outcome(index, tuple(arch), status, reward, 2)


@pytest.fixture
def tiny_space():
    return MacroSpace(num_layers=2, ops=["conv3x3", "maxpool3x3"], channels=[8])


def test_off_a_terminal_a_trial_search_logs_its_progress(tmp_path, tiny_space, caplog):
    """``make run > log``, nohup, CI, a cluster job: no bar is drawn, so a line every 5 % of the trials says how far."""
    import logging

    from rlnas.trials.outputs import TrialOutputs

    outputs = TrialOutputs(tmp_path, tiny_space, "accuracy", {}, progress=None, total=40)
    outputs.restore([_outcome(0, _distinct(tiny_space, 1)[0], 0.3)])  # a resumed run: 1 trial finished before
    with caplog.at_level(logging.INFO, logger="rlnas.trials"):
        for i, arch in enumerate(_distinct(tiny_space, 5)[1:], start=1):
            outputs.add(_outcome(i, arch, 0.5 + i / 100))
    outputs.close_progress()
    lines = [r.getMessage() for r in caplog.records if r.name == "rlnas.trials"]
    assert len(lines) == 2 and lines[0].startswith("trial 2/40: best so far 0.5100, last completed, ")
    assert lines[1].startswith("trial 4/40: best so far 0.5300") and "ETA" in lines[1]


def test_batches_are_observed_in_order_and_repeats_start_no_trial(tiny_space):
    a, b, c, d = _distinct(tiny_space, 4)
    ctrl = Recorder(tiny_space, [a, b, a, c, d, d])
    planner = TrialPlanner(ctrl, budget=10, batch=2)
    started = [planner.next_arch() for _ in range(3)]  # batch [a, b], then [a, c]: a runs already
    assert [s[1] for s in started] == [a, b, c]
    assert planner.next_arch() is None  # two batches open: wait for results
    planner.tell(_outcome(2, c, 0.9))  # the newer batch's trial first: nothing to observe yet
    assert ctrl.observed == []
    planner.tell(_outcome(1, b, 0.2))
    assert ctrl.observed == []  # batch 1 still waits for a
    planner.tell(_outcome(0, a, 0.7))
    # Both batches complete: observed oldest first, the repeat answered with a's result.
    assert ctrl.observed == [([a, b], [0.7, 0.2]), ([a, c], [0.7, 0.9])]
    assert planner.started == 3 and planner.observed == [0, 1, 2]
    index, arch = planner.next_arch()
    assert (index, arch) == (3, d)  # [d, d]: one trial


def test_budget_counts_trials_and_failed_trials_follow_the_reward_config(tiny_space):
    archs = _distinct(tiny_space, 2)
    for failed_reward, expected in ((None, [0.5]), (-1.0, [0.5, -1.0])):
        ctrl = Recorder(tiny_space, archs[:2] * 3)
        planner = TrialPlanner(ctrl, budget=2, batch=2, failed_reward=failed_reward)
        first, second = planner.next_arch(), planner.next_arch()
        assert planner.next_arch() is None and planner.exhausted
        planner.tell(_outcome(first[0], first[1], 0.5))
        planner.tell(_outcome(second[0], second[1], math.nan, "failed"))
        assert ctrl.observed[0][1] == expected


def test_a_controller_that_only_repeats_stops_the_planner(tiny_space):
    arch = tuple(tiny_space.sample(np.random.default_rng(0)))
    ctrl = Recorder(tiny_space, [arch] * 1000)
    planner = TrialPlanner(ctrl, budget=50, batch=2, max_stall=10)
    index, got = planner.next_arch()
    planner.tell(_outcome(index, got))
    assert planner.next_arch() is None
    assert planner.stalled and planner.exhausted


def test_restore_shows_the_controller_what_it_had_not_learnt(tiny_space):
    archs = _distinct(tiny_space, 3)
    ctrl = Recorder(tiny_space, [])
    planner = TrialPlanner(ctrl, budget=5, batch=2)
    planner.restore([_outcome(i, a, 0.1 * i) for i, a in enumerate(archs)], observed=[0, 1])
    assert ctrl.observed == [([archs[2]], [pytest.approx(0.2)])]
    assert planner.started == 3 and planner.next_index == 3
    index, arch = planner.next_arch()
    assert index == 3 and arch not in archs  # a finished trial is never trained again


def test_trial_log_drops_a_torn_last_line_and_names_a_bad_one(tmp_path, tiny_space):
    log = TrialLog(tmp_path / "trials.jsonl")
    first, second = _distinct(tiny_space, 2)
    log.append(_outcome(0, first))
    log.append(_outcome(1, second, math.nan, "failed"))
    with log.path.open("a") as f:
        f.write('{"index": 2, "arch": [0')  # a kill in the middle of a write
    got = log.read(tiny_space)
    assert [o.index for o in got] == [0, 1] and got[1].status == "failed" and math.isnan(got[1].reward)
    log.path.write_text(log.path.read_text().replace('{"index": 2, "arch": [0', '{"index": 2}\n{"index": 3}\n'))
    with pytest.raises(ValueError, match=r"trials.jsonl: line 3 is not a trial record"):
        log.read(tiny_space)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("status", '"won"', "status 'won' is not one of"),
        ("reward", "Infinity", "reward inf is not finite"),
        ("reward", '"0.99"', "reward '0.99' is not a number"),
        ("index", "-1", "index and arch must be whole numbers"),
        # no search numbers its trials this far; from about 2**63 on, every later trial's seed overflows
        ("index", str(2**40), f"trial index {2**40} is beyond any search's"),
        ("arch", "[0.7, 1]", "index and arch must be whole numbers"),
        ("reward", "null", "a completed trial without a reward"),
        ("epochs", "-5", "epochs -5 is not a whole number"),
        ("seconds", "-3", "seconds -3 is not a time"),
        ("metrics", '{"accuracy": NaN}', "metrics must map names to finite numbers"),
        ("costs", "[1, 2]", "costs must map names to finite numbers"),
    ],
)
def test_a_tampered_trial_record_is_named_not_read_as_a_result(tmp_path, tiny_space, field, value, message):
    """A record no trial writes (an infinite reward would win the search, 0.7 would be read as choice 0)."""
    log = TrialLog(tmp_path / "trials.jsonl")
    log.append(_outcome(0, tiny_space.sample(np.random.default_rng(0)), 0.9))
    record = json.loads(log.path.read_text())
    record[field] = "__VALUE__"
    log.path.write_text(json.dumps(record).replace('"__VALUE__"', value) + "\n")
    with pytest.raises(ValueError, match=rf"trials.jsonl: line 1 is not a trial record \({re.escape(message)}"):
        log.read(tiny_space)


@pytest.mark.parametrize("line", ["[1, 2]", '"hello"', "7"])
def test_a_trial_log_line_that_is_not_an_object_is_named(tmp_path, tiny_space, line):
    log = TrialLog(tmp_path / "trials.jsonl")
    log.path.write_text(line + "\n")
    with pytest.raises(ValueError, match=r"trials.jsonl: line 1 is not a trial record \(\w+ instead of an object"):
        log.read(tiny_space)


def test_a_trial_log_is_read_against_the_runs_epochs_and_its_one_training_per_architecture(tmp_path, tiny_space):
    """Epochs beyond the run's, a completed trial short of them, or one architecture trained twice: not this run's."""
    first, second = _distinct(tiny_space, 2)
    log = TrialLog(tmp_path / "trials.jsonl")
    log.append(_outcome(0, first))  # 2 epochs, completed
    log.append(Outcome(1, second, "stopped", 0.3, 1))
    assert [o.index for o in log.read(tiny_space, epochs=2)] == [0, 1]
    with pytest.raises(ValueError, match=r"line 1 is not a trial record \(2 epochs, more than .* trials.epochs=1"):
        log.read(tiny_space, epochs=1)
    with pytest.raises(ValueError, match=r"line 1 is not a trial record \(a completed trial of 2 epochs; .* train 3"):
        log.read(tiny_space, epochs=3)
    log.append(Outcome(2, second, "completed", 0.6, 2))
    with pytest.raises(ValueError, match=r"line 3 repeats the architecture of trial 1 \(trial 2\)"):
        log.read(tiny_space, epochs=2)


def test_training_decisions_are_decisions_like_any_other(small_space):
    space = TrainingSpace(small_space, {"lr": [0.01, 0.1], "batch_size": [32, 64, 128]})
    assert len(space) == len(small_space) + 2
    assert [d.name for d in space.decisions[-2:]] == ["train/lr", "train/batch_size"]
    for ctrl in (RandomController(space, 0), EvolutionController(space, 0), ENASController(space, seed=0)):
        archs = ctrl.propose(6)
        ctrl.observe(archs, [float(i) for i in range(6)])
        for arch in archs:
            base, settings = space.split(arch)
            assert small_space.validate(base) == base
            assert settings["lr"] in (0.01, 0.1) and settings["batch_size"] in (32, 64, 128)
    arch = (*small_space.sample(np.random.default_rng(0)), 1, 2)
    assert space.describe(arch).endswith("train/lr=0.1 train/batch_size=128")
    with pytest.raises(ValueError, match="trials.hparams.lr lists a value twice"):
        TrainingSpace(small_space, {"lr": [0.1, 0.1]})


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trials.budget=0"], "trials.budget must be >= 1"),
        (["trials.scheduler=hyperband"], "trials.scheduler='hyperband' is unknown"),
        (["trials.grace_period=30"], "trials.grace_period=30 exceeds trials.epochs=20"),
        (["+trials.hparams.momentum_typo=[0.9]"], "trials.hparams.momentum_typo is not a training setting"),
        (["+trials.train.epochs=5"], "trials.train.epochs: set trials.epochs"),
        (["+trials.concurency=3"], "trials.concurency is not a setting"),
        (["trials.hparams=[1,2]"], "trials.hparams must be a mapping of setting names to values"),
        (["trials.train=[1]"], "trials.train must be a mapping of setting names to values"),
        (["trials.hparams={lr:{a:1}}"], "trials.hparams.lr: {'a': 1} is not a value"),
        (["trials.budget=1.5"], "trials.budget must be a whole number, got 1.5"),
        (["trials.budget=abc"], "trials.budget must be a whole number, got 'abc'"),
        (["trials.concurrent=true"], "trials.concurrent must be a whole number, got True"),
        (["trials.failed_reward=abc"], "trials.failed_reward must be a number, got 'abc'"),
        (["trials.cpus_per_trial=[1]"], "trials.cpus_per_trial must be a number"),
        # both ways of scoring a candidate at once: an UnboundLocalError traceback after the table run
        (["+benchmark=toy"], "+trials trains each candidate and +benchmark looks it up in a table: choose one"),
    ],
)
def test_bad_trial_settings_stop_with_one_line(overrides, message):
    from rlnas.config import validate_config
    from rlnas.utils.errors import user_error_message

    cfg = _cfg("+task=mnist1d", "+trials=default", *overrides)
    with pytest.raises(Exception) as info:
        validate_config(cfg)
    assert message in (user_error_message(info.value) or "")


def test_the_grace_period_binds_only_the_scheduler_that_reads_it():
    from rlnas.config import validate_config

    # scheduler=none stops no trial: 1-epoch trials were refused for exceeding ASHA's unused grace period.
    validate_config(_cfg("+task=mnist1d", "+trials=default", "trials.scheduler=none", "trials.epochs=1"))


@pytest.mark.parametrize("epochs, grace", [(20, 5), (3, 1), (1, 1), (40, 10)])
def test_a_short_trial_needs_no_second_setting(epochs, grace):
    from rlnas.trials.settings import trial_settings

    # trials.epochs=3 alone was refused for exceeding the fixed default grace period of 5.
    cfg = _cfg("+task=mnist1d", "+trials=default", f"trials.epochs={epochs}")
    assert trial_settings(cfg).grace_period == grace
    # a grace period the user sets is theirs, and still bounded by the epochs
    assert trial_settings(_cfg("+task=mnist1d", "+trials=default", "trials.grace_period=2")).grace_period == 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trials.hparams={lr:[0.1,-1]}"], "trials.hparams.lr: -1 cannot be used"),
        (["trials.hparams={optimizer:[sgd,lion]}"], "trials.hparams.optimizer: 'lion' cannot be used"),
        (["trials.hparams={dropout:[0.5,2]}"], "trials.hparams.dropout: 2 cannot be used"),
        # the search's ground truth trained with it after the trials and failed in torch (overflow)
        (
            ["trials.hparams={lr:[0.1,1e308]}"],
            "trials.hparams.lr: 1e\\+308 cannot be used .train.lr=1e\\+308 is past float32",
        ),
        (["trials.hparams={momentum:[0.9,0.0]}"], "trials.hparams.momentum: 0.0 cannot be used (train.nesterov"),
        (["+trials.train.lr=abc"], "trials.train.lr='abc' must be a number"),
        (["+trials.train.foo=1"], "trials.train: train.foo is not a setting"),
        (["reward=hard", "reward.mask_infeasible=true"], "reward.mask_infeasible=true needs a supernet"),
        (["controller=darts"], "controller=darts learns through a supernet; a trial search has none"),
        (["controller=gdas"], "controller=gdas learns through a supernet; a trial search has none"),
    ],
)
def test_settings_a_trial_search_cannot_honour_stop_it_before_any_trial(tmp_path, overrides, message):
    pytest.importorskip("ray")
    from rlnas.trials.run import run_trials

    cfg = _cfg(*SMALL, *overrides)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        run_trials(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "trials.jsonl").exists()


def test_a_dir_holding_a_trial_log_is_not_taken_by_another_run(tmp_path):
    pytest.importorskip("ray")
    from rlnas.trials.run import run_trials

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "trials.jsonl").write_text("")
    cfg = _cfg(*SMALL)
    with pytest.raises(ValueError, match=r"already holds a run or a file a search writes \(trials.jsonl\)"):
        run_trials(cfg, tmp_path / "run", progress=False)


def test_an_unreachable_cluster_is_named_at_once():
    from rlnas.trials.run import _check_reachable

    with pytest.raises(ValueError, match="trials.address=127.0.0.1:1: no Ray cluster answers there"):
        _check_reachable("127.0.0.1:1")
    with pytest.raises(ValueError, match="must be auto, HOST:PORT or ray://HOST:PORT"):
        _check_reachable("nohost")
    _check_reachable("auto")


def test_rays_own_address_variable_is_honoured_and_named(monkeypatch):
    """RAY_ADDRESS is how Ray's users name their cluster; trials.address wins over it."""
    from rlnas.trials.run import _check_reachable, cluster_address

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    assert cluster_address(SimpleNamespace(address=None)) == ("127.0.0.1:1", "RAY_ADDRESS")
    assert cluster_address(SimpleNamespace(address="auto")) == ("auto", "trials.address")
    with pytest.raises(ValueError, match="RAY_ADDRESS=127.0.0.1:1: no Ray cluster answers there.*unset RAY_ADDRESS"):
        _check_reachable(*cluster_address(SimpleNamespace(address=None)))
    monkeypatch.delenv("RAY_ADDRESS")
    assert cluster_address(SimpleNamespace(address=None)) == (None, "RAY_ADDRESS")


# -- on Ray --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def _run(tmp_path, local_ray, *overrides):
    from rlnas.trials.run import run_trials

    cfg = _cfg(*SMALL, *overrides)
    return run_trials(cfg, tmp_path / "run", progress=False)


# One per family: baselines (evolution runs in the resume test), Bayesian, ENAS, the PPO family;
# enas with a latency target (each trial times its own network).
@pytest.mark.parametrize(
    "controller, extra",
    [
        ("local_search", []),
        ("tpe", []),
        ("enas", ["reward=mnas", "reward.targets.latency_ms=0.5"]),
        ("maskable_ppo", []),
    ],
)
def test_a_trial_search_per_controller_family(tmp_path, local_ray, controller, extra):
    result = _run(tmp_path, local_ray, f"controller={controller}", *extra)
    run = tmp_path / "run"
    rows = (run / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and len(result.outcomes) == 4
    assert len({o.arch for o in result.outcomes}) == 4  # the budget counts distinct architectures
    assert all(o.status in ("completed", "stopped") and 1 <= o.epochs <= 2 for o in result.outcomes)
    best = json.loads((run / "best_arch.json").read_text())
    assert best["reward"] == max(o.reward for o in result.outcomes if o.status == "completed")
    for name in ("history.csv", "summary.json", "pareto.csv", "controller.pt", "trials_state.pt", "config.yaml"):
        assert (run / name).is_file(), name
    from rlnas.trials.records import load_state

    assert sorted(load_state(run / "trials_state.pt")["observed"]) == [0, 1, 2, 3]  # it learnt from every trial
    if extra:  # MnasNet's soft reward: accuracy * (latency / target) ** -0.07, the latency measured in the trial
        for o in result.outcomes:
            assert o.costs["latency_ms"] > 0
            expected = o.metrics["accuracy"] * (o.costs["latency_ms"] / 0.5) ** -0.07
            assert o.reward == pytest.approx(expected, rel=1e-5)


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path, local_ray):
    result = _run(
        tmp_path,
        local_ray,
        "controller=random",
        "trials.budget=6",
        "trials.scheduler=none",
        "trials.failed_reward=0",
        "trials.hparams={lr:[0.05,1e30]}",
        "trials.train={weight_decay:0}",  # lr * weight_decay >= 1 is refused up front; lr alone diverges
    )
    failed = [o for o in result.outcomes if o.status == "failed"]
    fine = [o for o in result.outcomes if o.status != "failed"]
    assert failed and fine and len(result.outcomes) == 6
    assert all("FloatingPointError" in o.error and "loss is nan" in o.error for o in failed)
    assert all(result.space.split(o.arch)[1]["lr"] == 1e30 for o in failed)
    assert "FloatingPointError" in (tmp_path / "run" / "trials.csv").read_text()
    best = json.loads((tmp_path / "run" / "best_arch.json").read_text())
    assert best["train"] == {"lr": 0.05}  # the learning-rate decision of the pick, beside its architecture


def _signal_after_trials(args: list[str], log, trials: int, sig: int) -> tuple[subprocess.Popen, str]:
    """Starts a search driver, sends it ``sig`` once ``trials`` trials are in ``log``; the process and its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlnas", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # the driver's local Ray lives in its session: removed with it below
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < trials):
            time.sleep(0.2)
            assert proc.poll() is None, "the search ended before the signal"
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its local Ray
        except ProcessLookupError:
            pass
    return proc, err


def test_a_killed_driver_resumes_without_repeating_finished_trials(tmp_path):
    pytest.importorskip("ray")
    run = tmp_path / "run"
    # population_size 5 of the 7 trials: the default 20 is a random start that takes the whole budget (warned)
    args = [
        *SMALL,
        "controller=evolution",
        "controller.population_size=5",
        "trials.budget=7",
        "trials.concurrent=1",
        f"hydra.run.dir={run}",
    ]
    log = run / "trials.jsonl"
    _signal_after_trials(args, log, 3, signal.SIGKILL)
    before = log.read_text().splitlines()
    assert 3 <= len(before) < 7 and not (run / "best_arch.json").exists()
    done = run_cli(f"resume={run}", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WARNING" not in done.stderr  # a local Ray's start is quiet (its token-authentication notice)
    after = log.read_text().splitlines()
    assert after[: len(before)] == before  # finished trials kept as they were
    records = [json.loads(line) for line in after]
    assert len(records) == 7
    assert len({r["index"] for r in records}) == 7 and len({tuple(r["arch"]) for r in records}) == 7
    assert json.loads((run / "summary.json").read_text())["trials"] == 7


@pytest.mark.slow  # 17 s of a trial driver; make test-slow runs it
def test_sigterm_stops_a_trial_search_cleanly_with_the_resume_line(tmp_path):
    """As Ctrl-C does: Ray's own handler would end the driver at once, status.json left "running"."""
    pytest.importorskip("ray")
    run = tmp_path / "run"
    args = [*SMALL, "controller=random", "trials.budget=40", f"hydra.run.dir={run}"]
    log = run / "trials.jsonl"
    proc, err = _signal_after_trials(args, log, 2, signal.SIGTERM)
    kept = len(log.read_text().splitlines())
    assert proc.returncode == 130, err[-2000:]
    assert f"stopped after {kept} of 40 trials" in err and f"resume={run}" in err
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"


def test_a_crafted_trial_checkpoint_is_refused_without_running_code(tmp_path):
    pytest.importorskip("ray")
    import torch

    from rlnas.trials.run import run_trials
    from tests.test_trust import _Marker

    run, marker = tmp_path / "run", tmp_path / "pwned"
    run.mkdir()
    (run / "trials.jsonl").write_text("")
    torch.save({"version": 1, "controller": {}, "observed": [], "evil": _Marker(marker)}, run / "trials_state.pt")
    cfg = _cfg(*SMALL)
    with pytest.raises(ValueError, match="trials_state.pt"):
        run_trials(cfg, run, resume=True, progress=False)
    assert not marker.exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("trials.cpus_per_trial=3", "trials.cpus_per_trial=3 but the machine has 2; no trial could ever start"),
        ("trials.gpus_per_trial=1", "trials.gpus_per_trial=1 but the machine has 0"),
    ],
)
def test_a_trial_that_could_never_start_is_refused(tmp_path, local_ray, override, message):
    if "gpus" in override and local_ray.cluster_resources().get("GPU", 0) >= 1:
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match=message):
        _run(tmp_path, local_ray, override)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["--budget", "-5"], "--budget must be >= 1, got -5"),
        (["--concurrent", "0"], "--concurrent must be >= 1, got 0"),
        (["--truth-epochs", "0"], "--truth-epochs must be >= 1, got 0"),
        (["--controllers", "random", "darts"], "--controllers darts is unknown"),
        (["--controllers", "enas"], "--controllers must include random"),
        (["--trials", "jiont"], "--trials jiont: no conf/trials/jiont.yaml"),
        # the first search failed with the error in two lines, after "random seed 0 ..."
        (["--task", "mnist1dd"], "task=mnist1dd is not a task config; allowed:"),
        (["--controllers", "random", "--", "trials.epochs=abc"], "trials.epochs must be a whole number, got 'abc'"),
        (["--controllers", "random", "--", "trials.hparams={lr:[0.1,-1]}"], "trials.hparams.lr: -1 cannot be used"),
        # every trial failed, a Ray start later: "no supernet is registered for the space NB201Space"
        (["--controllers", "random", "--", "space=nb201"], "space=NB201Space does not fit the mnist1d task"),
    ],
)
def test_the_trial_study_tool_refuses_unusable_arguments_before_any_search(tmp_path, capsys, argv, message):
    from tools.trial_study import main

    with pytest.raises(SystemExit) as info:
        main(["--out", str(tmp_path / "study"), *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "study" / "runs").exists()


def test_a_study_whose_readme_block_is_missing_stops_before_its_searches(tmp_path, monkeypatch):
    """The block is written after hours of searches: a wrong --readme or --block is named before them."""
    import tools.trial_study as tool

    monkeypatch.setattr(tool, "study", lambda args, overrides: pytest.fail("searched"))
    readme = tmp_path / "results.md"
    readme.write_text("<!-- study:trials -->\n<!-- /study:trials -->\n")
    for argv, message in [
        (["--readme", str(tmp_path / "nope.md")], "nope.md: no such file"),
        (["--readme", str(readme), "--block", "trails"], "no '<!-- study:trails -->'"),
    ]:
        with pytest.raises(SystemExit, match=re.escape(message)):
            tool.main([*argv, "--out", str(tmp_path / "study")])
    assert not (tmp_path / "study").exists()


def test_the_trial_study_tool_never_mixes_the_runs_of_two_studies(tmp_path, monkeypatch):
    """Runs are reused by controller and seed: another study's settings in the same --out must be refused."""
    import tools.trial_study as tool

    searches = []
    monkeypatch.setattr(tool, "study", lambda args, overrides: searches.append(overrides))
    out = str(tmp_path / "study")
    tool.main(["--out", out, "--", "data_seed=0"])
    tool.main(["--out", out, "--", "data_seed=0"])  # the same study: continued
    assert len(searches) == 2
    for argv in (["--", "data_seed=1"], ["--trials", "joint", "--", "data_seed=0"], ["--budget", "50"]):
        with pytest.raises(SystemExit, match="holds the runs of another study"):
            tool.main(["--out", out, *argv])
    assert len(searches) == 2
    # A study stored before the marker existed is known by its table.
    legacy = tmp_path / "legacy"
    (legacy / "runs").mkdir(parents=True)
    (legacy / "table.json").write_text(
        json.dumps(
            {"args": {"task": "mnist1d"}, "overrides": ["data_seed=0", "trials.budget=100", "trials.concurrent=2"]}
        )
    )
    with pytest.raises(SystemExit, match="another study"):
        tool.main(["--out", str(legacy), "--", "data_seed=1"])
    tool.main(["--out", str(legacy), "--", "data_seed=0"])
    assert len(searches) == 3


def test_the_trial_study_reuses_a_finished_search_only_under_the_settings_it_was_made_with(tmp_path, monkeypatch):
    """A default changed since a stored search was made is in no override: what a trial reads is checked."""
    from omegaconf import OmegaConf

    import tools.trial_study as tool

    monkeypatch.setattr(tool.subprocess, "Popen", lambda *a, **k: pytest.fail("searched again"))
    run = tmp_path / "enas_seed0"
    run.mkdir()
    (run / "best_arch.json").write_text("{}")
    (run / "summary.json").write_text(json.dumps({"seconds": 12.5}))
    made = _cfg("+task=mnist1d", "+trials=default", "controller=enas", "seed=0", "ground_truth.random=0")
    made.trials.grace_period = 5  # what null stands for at 20 epochs: the same settings
    made.search.supernet_steps = 7  # the supernet's settings never touch a trial
    (run / "config.yaml").write_text(OmegaConf.to_yaml(made))
    assert tool.search("mnist1d", "enas", 0, run, []) == 12.5
    made.trials.epochs = 30
    (run / "config.yaml").write_text(OmegaConf.to_yaml(made))
    with pytest.raises(SystemExit, match=r"enas_seed0 was made with trials.epochs=30, this study now composes 20"):
        tool.search("mnist1d", "enas", 0, run, [])
    made.trials.epochs, made.search.lr = 20, 0.5  # a recipe value the trials take from search:
    (run / "config.yaml").write_text(OmegaConf.to_yaml(made))
    with pytest.raises(SystemExit, match=r"was made with recipe.lr=0.5"):
        tool.search("mnist1d", "enas", 0, run, [])


def test_the_closing_ground_truth_of_a_joint_search_trains_each_candidate_with_its_own_settings(
    tmp_path, small_space, monkeypatch
):
    """The pick and random search's draws come with training settings; each is trained with its own."""
    import rlnas.evaluators.standalone as standalone
    from rlnas.__main__ import ground_truth_line

    space = TrainingSpace(small_space, {"lr": [0.01, 0.1], "batch_size": [32, 64]})
    seen = {}

    def fake_compare(cfg, pick, randoms, seeds, epochs, device, settings=None, on_trained=None):
        seen.update(pick=pick, randoms=randoms, settings=settings)
        return {"metric": "accuracy", "epochs": epochs, "pick": {"mean": 0.9, "std": 0.0, "values": [0.9]},
                "random_mean": 0.5, "random_best": 0.6}  # fmt: skip

    monkeypatch.setattr(standalone, "compare_with_random", fake_compare)
    cfg = _cfg("+task=mnist1d", "ground_truth.random=3")
    pick = space.sample(np.random.default_rng(0))
    line = ground_truth_line(cfg, RandomController(space, seed=1), pick, str(tmp_path), space)
    assert seen["pick"] == space.split(pick)[0] and len(seen["randoms"]) == 3
    assert all(len(arch) == len(small_space) for arch in seen["randoms"])
    assert seen["settings"][0] == space.split(pick)[1]
    assert all(set(s) == {"lr", "batch_size"} for s in seen["settings"])
    assert "vs 3 random candidates (architecture and training settings) 0.5000 (best of them 0.6000)" in line
    assert json.loads((tmp_path / "ground_truth.json").read_text())["random_mean"] == 0.5


def test_the_finalist_study_trains_each_search_s_best_fully_trained_trials(tmp_path, capsys):
    """--finalists K: the K best trials that trained every epoch, by ground truth, from the stored searches."""
    from omegaconf import OmegaConf

    from rlnas.trials.trainable import trial_space
    from tools.trial_study import main

    cfg = _cfg(*(o if o != "+trials=default" else "+trials=joint" for o in SMALL))
    space = trial_space(cfg)
    rng = np.random.default_rng(0)
    for controller in ("random", "enas"):
        run = tmp_path / "study" / "runs" / f"{controller}_seed0"
        run.mkdir(parents=True)
        OmegaConf.save(cfg, run / "config.yaml")
        (run / "best_arch.json").write_text("{}")
        records = [
            {"index": i, "arch": [int(a) for a in space.sample(rng)], "status": status, "reward": reward}
            for i, (status, reward) in enumerate(
                [("completed", 0.5), ("stopped", 0.9), ("completed", 0.7), ("completed", 0.6)]
            )
        ]
        (run / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    argv = ["--trials", "joint", "--controllers", "random", "enas", "--seeds", "1", "--finalists", "2"]
    main([*argv, "--truth-seeds", "1", "--truth-epochs", "1", "--out", str(tmp_path / "study")])
    cached = json.loads((tmp_path / "study" / "runs" / "enas_seed0" / "finalists.json").read_text())
    assert [c["index"] for c in cached["candidates"]] == [2, 3]  # the stopped trial is no finalist
    assert set(cached["candidates"][0]["train"]) == {"lr", "batch_size", "weight_decay", "dropout", "momentum"}
    table = json.loads((tmp_path / "study" / "finalists.json").read_text())["rows"]
    for row, run in zip(table, ("random", "enas")):
        found = json.loads((tmp_path / "study" / "runs" / f"{run}_seed0" / "finalists.json").read_text())
        tests = [c["test"][0] for c in found["candidates"]]
        best_val = max(range(2), key=lambda i: found["candidates"][i]["val"][0])
        assert row["pick"] == [tests[0]] and row["best"] == [max(tests)] and row["repick"] == [tests[best_val]]
    header = "| controller | the pick | mean of the 2 | re-picked by validation | best of the 2 |"
    assert header in capsys.readouterr().out


def test_ctrl_c_after_the_trials_is_not_left_to_tunes_handler():
    """Tune installs its own Ctrl-C handler in fit() and leaves it; after the trials Ctrl-C must stop again."""
    from rlnas.trials.run import sigterm_as_sigint

    before = signal.getsignal(signal.SIGINT)
    with sigterm_as_sigint():
        signal.signal(signal.SIGINT, lambda signum, frame: None)  # what Tune does inside fit()
    assert signal.getsignal(signal.SIGINT) is before


def test_a_stop_during_the_ground_truth_comparison_ends_the_run_in_one_line(tmp_path, capsys):
    from rlnas.__main__ import stops_the_comparison

    before = signal.getsignal(signal.SIGINT)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with pytest.raises(SystemExit) as stopped, stops_the_comparison(str(tmp_path)):
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the trainings; the handler interrupts them
        assert stopped.value.code == 130
        assert capsys.readouterr().err.startswith(
            f"rlnas: stopped during the ground-truth comparison; the search is complete ({tmp_path / 'best_arch.json'})"
        )
    assert signal.getsignal(signal.SIGINT) is before


def test_the_driver_gets_its_sigterm_handler_back_from_ray(monkeypatch):
    """ray.init installs a SIGTERM handler that exits without a word and outlives ray.shutdown."""
    from rlnas.trials.run import _ray_session

    class FakeRay:
        running = False

        def is_initialized(self):
            return self.running

        def init(self, **kwargs):
            self.running = True
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))

        def shutdown(self):
            self.running = False

    def own(signum, frame):
        raise KeyboardInterrupt

    monkeypatch.setattr("rlnas.trials.run._check_reachable", lambda address, key: None)
    previous = signal.signal(signal.SIGTERM, own)
    try:
        fake = FakeRay()
        with _ray_session(fake, SimpleNamespace(address=None)):
            assert fake.running and signal.getsignal(signal.SIGTERM) is not own
        assert not fake.running and signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_stop_outside_tunes_experiment_ends_the_trial_search_with_the_resume_line(tmp_path):
    from rlnas.__main__ import stops_the_trial_search
    from rlnas.search.checkpoint import SearchInterrupted

    before = signal.getsignal(signal.SIGTERM)
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(SearchInterrupted, match=r"stopped; finished trials are kept; continue with: python -m rlnas"):
        with stops_the_trial_search(str(tmp_path)):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # writing the outputs; the handler interrupts it
    assert signal.getsignal(signal.SIGTERM) is before


def test_rays_retry_warnings_are_dropped_when_joining_fails_and_kept_when_it_works(capfd):
    from rlnas.trials.run import _stderr_kept_on_failure

    # An address that answers but is no Ray: 20 lines of Ray's C++ "Failed to get cluster ID from GCS
    # server" came before the one-line error naming the address.
    with pytest.raises(ConnectionError):
        with _stderr_kept_on_failure(True):
            os.write(2, b"[W gcs_client.cc:210] Failed to get cluster ID from GCS server\n")
            raise ConnectionError("Failed to connect to Ray cluster")
    with _stderr_kept_on_failure(True):
        os.write(2, b"joined\n")
    assert capfd.readouterr().err == "joined\n"


def test_a_search_whose_every_trial_failed_says_why_in_one_line():
    """It ended in a RuntimeError traceback naming no cause (a reward of the user's own returning None)."""
    from rlnas.trials.run import pick
    from rlnas.utils.errors import user_error_message

    failed = [
        Outcome(1, (1,), "failed", float("nan"), error="TypeError: second"),
        Outcome(0, (0,), "failed", float("nan"), error="ValueError: reward R returned None"),
    ]
    with pytest.raises(ValueError) as info:
        pick(failed)
    assert user_error_message(info.value) == (
        "all 2 trials failed (ValueError: reward R returned None); see trials.csv and the tracebacks under ray/"
    )
    assert pick([*failed, Outcome(2, (2,), "stopped", 0.4)]).index == 2
