"""Checkpoint and resume: a resumed search ends exactly where an uninterrupted one does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from rlnas.search.builder import build_search
from rlnas.search.checkpoint import CHECKPOINT, Checkpointer, SearchInterrupted, load_checkpoint
from rlnas.search.loop import EpochStats
from tests.conftest import ROOT, run_cli

SMOKE = ["+experiment=smoke", "search.epochs=3"]


def _cfg(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=["+task=classification", *SMOKE, *overrides])


def _outputs(run_dir: Path) -> tuple[bytes, bytes, dict]:
    """history.csv, best_arch.json and summary.json without its wall time."""
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("seconds")
    return (run_dir / "history.csv").read_bytes(), (run_dir / "best_arch.json").read_bytes(), summary


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted 3-epoch smoke search; later runs reuse its latency table (measurements vary)."""
    run_dir = tmp_path_factory.mktemp("reference")
    build_search(_cfg(), run_dir, progress=False).run()
    return run_dir


def test_cli_stop_and_resume_reproduces_the_uninterrupted_run(reference, tmp_path):
    lut = f"costs.latency_table={reference / 'latency_lut.json'}"
    first = run_cli(*SMOKE, lut, "checkpoint.stop_after=1", "hydra.job.name=first", f"hydra.run.dir={tmp_path}")
    assert first.returncode == 130, first.stderr[-2000:]
    assert f"continue with: python -m rlnas resume={tmp_path}" in first.stderr
    assert load_checkpoint(tmp_path / CHECKPOINT)["next_epoch"] == 1
    assert not (tmp_path / "best_arch.json").exists()

    again = run_cli(*SMOKE, lut, f"hydra.run.dir={tmp_path}")
    assert again.returncode == 2 and f"resume={tmp_path}" in again.stderr  # no silent restart over a run

    resumed = run_cli(f"resume={tmp_path}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _outputs(tmp_path) == _outputs(reference)
    # One log for the run: the resume appends to the one its first start named.
    assert [p.name for p in tmp_path.glob("*.log")] == ["first.log"]
    assert "resum" in (tmp_path / "first.log").read_text().lower()


@pytest.mark.parametrize(
    "controller",
    [
        "evolution",
        "ppo",
        "maskable_ppo",
        pytest.param("recurrent_ppo", marks=pytest.mark.slow),
        "tpe",
        "gdas",
        "enas",
        "local_search",
    ],
)
def test_every_controller_state_survives_a_resume(controller, tmp_path):
    lut = f"costs.latency_table={tmp_path / 'ref' / 'latency_lut.json'}"
    build_search(_cfg(f"controller={controller}"), tmp_path / "ref", progress=False).run()
    with pytest.raises(SearchInterrupted):
        build_search(
            _cfg(f"controller={controller}", lut, "checkpoint.stop_after=2"), tmp_path / "cut", progress=False
        ).run()
    build_search(_cfg(f"controller={controller}", lut), tmp_path / "cut", progress=False, resume=True).run()
    assert _outputs(tmp_path / "cut") == _outputs(tmp_path / "ref")


def test_resume_rejects_overrides_that_change_the_run(reference, tmp_path):
    from rlnas.__main__ import resumed_config

    proc = run_cli(f"resume={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"rlnas: error: resume={tmp_path}: no config.yaml there (pass a search's run directory)"
    )
    cut = tmp_path / "cut"
    with pytest.raises(SearchInterrupted):
        build_search(_cfg("checkpoint.stop_after=1"), cut, progress=False).run()
    with pytest.raises(ValueError, match=r"resume: search.epochs=5 conflicts with the run's search.epochs=3"):
        resumed_config(str(cut), [f"resume={cut}", "search.epochs=5"])
    with pytest.raises(ValueError, match="controller=random would swap a config group"):
        resumed_config(str(cut), ["controller=random"])
    same = resumed_config(str(cut), ["search.epochs=3", "threads=1", "checkpoint.every=2"])
    assert same.search.epochs == 3 and same.threads == 1 and same.checkpoint.every == 2
    assert same.checkpoint.stop_after is None  # the drill's stop applied to the first start only
    with pytest.raises(ValueError, match="that run has finished"):
        build_search(_cfg(), reference, progress=False, resume=True)


def test_sigterm_finishes_the_epoch_writes_a_checkpoint_and_exits(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlnas",
            "+experiment=smoke",
            "search.epochs=200",
            "search.supernet_steps=20",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 240
    while not (tmp_path / CHECKPOINT).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert 1 <= state["next_epoch"] < 200
    assert f"interrupted after epoch {state['next_epoch']}" in err


def test_non_finite_weights_are_never_checkpointed(reference, tmp_path):
    search = build_search(_cfg(), tmp_path, progress=False, resume=False)
    checkpointer = Checkpointer(tmp_path)
    checkpointer.on_epoch_end(search, EpochStats(0, 1.0, None, 0.1))
    good = (tmp_path / CHECKPOINT).read_bytes()
    with torch.no_grad():
        next(search.model.parameters()).fill_(float("nan"))
    search.epoch = 1
    checkpointer.on_epoch_end(search, EpochStats(1, float("nan"), None, 0.1))
    assert (tmp_path / CHECKPOINT).read_bytes() == good
    assert not list(tmp_path.glob("*.tmp"))


def test_resume_refuses_a_config_edited_since_the_checkpoint(reference, tmp_path):
    from rlnas.__main__ import check_resume_dir, resumed_config

    lut = f"costs.latency_table={reference / 'latency_lut.json'}"
    with pytest.raises(SearchInterrupted):
        build_search(_cfg(lut, "checkpoint.stop_after=1"), tmp_path, progress=False).run()
    config = tmp_path / "config.yaml"
    config.write_text(config.read_text().replace("val_fraction: 0.2", "val_fraction: 0.3"))
    with pytest.raises(ValueError, match=r"config.yaml: task.data.val_fraction is 0.3 but the checkpoint was written"):
        build_search(resumed_config(str(tmp_path), []), tmp_path, progress=False, resume=True)
    with pytest.raises(ValueError, match="continues in its own directory"):
        check_resume_dir([f"resume={tmp_path}", f"hydra.run.dir={tmp_path / 'elsewhere'}"])
    check_resume_dir([f"resume={tmp_path}", f"hydra.run.dir={tmp_path}/"])  # the same dir, written another way


def test_a_resume_whose_latency_table_went_missing_says_so(tmp_path, caplog):
    with pytest.raises(SearchInterrupted):
        build_search(_cfg("checkpoint.stop_after=1"), tmp_path, progress=False).run()
    (tmp_path / "latency_lut.json").unlink()
    # Measured anew without a word: the history mixed two measurements, a latency target's rewards shifted.
    with caplog.at_level("WARNING", logger="rlnas.search.builder"):
        build_search(_cfg(), tmp_path, progress=False, resume=True)
    assert "latency_lut.json is missing: latencies are measured anew for the rest of the run" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="rlnas.search.builder"):  # a first start measures it, silently
        build_search(_cfg(), tmp_path / "fresh", progress=False)
    assert "is missing" not in caplog.text


@pytest.mark.parametrize(
    "grace, step_s",
    [
        (0.0, 0.0),  # checked at the end of a step
        pytest.param(
            0.5,
            30.0,  # one step far past the grace: the timer's alarm ends it
            marks=pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no interval timer on this system"),
        ),
    ],
)
def test_a_stop_request_abandons_an_epoch_that_outlasts_the_grace_and_resumes_bit_for_bit(
    reference, tmp_path, monkeypatch, grace, step_s
):
    """SIGTERM waited for the epoch to end, however long (search.controller_steps=1000000000 ran on until
    SIGKILL); past the grace the search stops from its last checkpoint, and the resume ends as one never stopped.
    The grace was checked between steps only: with search.archs_per_step=100000 one controller step ran on for
    minutes after SIGTERM, and the "abandoned after 20 s" the warning promised never came."""
    import time

    import rlnas.search.checkpoint as checkpoint
    from rlnas.search.loop import Callback

    monkeypatch.setattr(checkpoint, "STOP_GRACE_S", grace)
    lut = f"costs.latency_table={reference / 'latency_lut.json'}"
    search = build_search(_cfg(lut), tmp_path, progress=False)
    stopper = next(cb for cb in search.callbacks if isinstance(cb, Checkpointer))

    class SigtermMidEpoch(Callback):
        def on_step(self, search) -> None:
            if search.epoch == 1 and not stopper.stop_requested:
                stopper._request_stop(signal.SIGTERM, None)  # the handler a SIGTERM runs
                time.sleep(step_s)

    search.callbacks.insert(0, SigtermMidEpoch())
    start = time.monotonic()
    with pytest.raises(
        SearchInterrupted,
        match=r"stopped during epoch 2, still running 0 s after the stop request; "
        r"the last checkpoint \(after epoch 1\) is kept",
    ):
        search.run()
    assert time.monotonic() - start < 15
    assert load_checkpoint(tmp_path / CHECKPOINT)["next_epoch"] == 1
    assert signal.getsignal(signal.SIGTERM) != stopper._request_stop  # the handlers are given back
    if hasattr(signal, "setitimer"):  # and the grace's timer is off
        assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0, 0)
    build_search(_cfg(lut), tmp_path, progress=False, resume=True).run()
    assert _outputs(tmp_path) == _outputs(reference)
