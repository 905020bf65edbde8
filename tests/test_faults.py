"""Numeric faults: NaN/inf losses and rewards are skipped and counted, never reach the weights or the checkpoint."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlnas.search.builder import build_search
from rlnas.search.checkpoint import CHECKPOINT, finite_weights, load_checkpoint
from rlnas.search.faults import NumericFaultError
from tests.conftest import ROOT, run_cli


def _search(run_dir, *overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["+task=classification", "+experiment=smoke", "search.epochs=3", *overrides])
    return build_search(cfg, run_dir, progress=False)


def _poison_loss(search, bad_calls: set[int] | None = None, from_call: int | None = None) -> None:
    """Makes the task's loss NaN on the given (0-based) calls, or on every call from ``from_call``."""
    loss, calls = search.task.loss, [0]

    def poisoned(outputs, targets):
        value = loss(outputs, targets)
        n = calls[0]
        calls[0] += 1
        bad = (bad_calls is not None and n in bad_calls) or (from_call is not None and n >= from_call)
        return value * float("nan") if bad else value

    search.task.loss = poisoned


def test_nan_losses_are_skipped_counted_and_logged(tmp_path):
    search = _search(tmp_path)
    _poison_loss(search, bad_calls={1, 4})  # one step in each of the first two epochs
    result = search.run()
    assert search.faults.loss == 2 and search.faults.backoffs == 0
    assert finite_weights(search.model)
    assert math.isfinite(result.best.reward)
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert rows and all(math.isfinite(float(r["reward"])) for r in rows)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.value for e in events.Scalars("faults/skipped_steps")] == [1.0, 2.0, 2.0]
    assert all(math.isfinite(e.value) for e in events.Scalars("supernet/loss"))


def test_repeated_faults_in_an_epoch_halve_the_learning_rate(tmp_path):
    clean = _search(tmp_path / "clean")
    clean.run()
    search = _search(tmp_path / "faulty", "search.fault_backoff_after=2")
    _poison_loss(search, bad_calls={0, 1})  # two of epoch 0's three steps
    search.run()
    assert search.faults.backoffs == 1
    assert search.scheduler.base_lrs[0] == pytest.approx(clean.scheduler.base_lrs[0] / 2)
    assert search.optimizer.param_groups[0]["lr"] == pytest.approx(clean.optimizer.param_groups[0]["lr"] / 2)


def test_past_the_limit_the_search_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    import signal

    search = _search(tmp_path, "search.fault_limit=2")
    _poison_loss(search, from_call=3)  # epoch 0 is clean, then every step is NaN
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(
        NumericFaultError, match="3 skipped supernet steps and 0 skipped rewards .* search.fault_limit=2"
    ):
        search.run()
    # The failed search gave Ctrl-C back: in a notebook or the next sweep job it stops again.
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert state["next_epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert not (tmp_path / "best_arch.json").exists()


def test_nan_rewards_are_left_out_of_the_controller_update(tmp_path):
    search = _search(tmp_path)
    reward, seen, observed = search.reward, [0], []

    def sometimes_nan(evaluation):
        seen[0] += 1
        return float("nan") if seen[0] % 3 == 0 else reward(evaluation)

    observe = search.controller.observe

    def recording_observe(archs, rewards):
        observed.extend(rewards)
        return observe(archs, rewards)

    search.reward, search.controller.observe = sometimes_nan, recording_observe
    search.run()
    assert search.faults.reward > 0
    assert observed and all(math.isfinite(r) for r in observed)
    assert all(math.isfinite(row["reward"]) for row in search.history)


def test_too_many_faults_is_one_line_and_keeps_earlier_outputs(tmp_path):
    # A learning rate of 1e30 blows the weights up after the first step: every later step is NaN (without
    # weight decay: lr * weight_decay >= 1 is refused up front).
    proc = run_cli(
        "+experiment=smoke",
        "search.lr=1e30",
        "search.lr_min=0",
        "search.weight_decay=0",
        "search.fault_limit=2",
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rlnas: error: ") and "exceed search.fault_limit=2" in last
    assert "Traceback" not in proc.stderr
    assert '"status": "failed"' in (tmp_path / "status.json").read_text()
