"""One writer per run dir, finished runs left alone, progress in logs, run dirs whose names hold = , and spaces."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from rlnas.sweep.jobs import LOCK_FILE
from tests.conftest import ROOT, run_cli


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rlnas", *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_second_writer_is_refused_while_a_run_holds_its_dir(tmp_path):
    run = tmp_path / "run"
    first = _start("+experiment=smoke", "search.epochs=200", f"hydra.run.dir={run}")
    try:
        deadline = time.monotonic() + 120
        while not (run / "config.yaml").exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.2)
        assert first.poll() is None, first.communicate()[1][-2000:]
        config = (run / "config.yaml").read_text()
        for args in (["+experiment=smoke", "seed=5", f"hydra.run.dir={run}"], [f"resume={run}"]):
            second = run_cli(*args)
            assert second.returncode == 2
            assert second.stderr.strip().splitlines()[-1] == (
                f"rlnas: error: {run} is in use by another rlnas run (pid {first.pid}); "
                "wait for it to end or choose another directory"
            )
        assert (run / "config.yaml").read_text() == config  # nothing of the second start landed
        assert json.loads((run / "status.json").read_text())["status"] == "running"
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"


def test_finished_runs_are_left_alone_and_progress_shows_in_logs(smoke_run):
    run, proc = smoke_run  # +experiment=smoke: 2 epochs
    # stderr is a pipe here, as in a log file or a cluster job: a line per epoch and the final phase,
    # on the console and in the run's log file.
    for text in (proc.stdout + proc.stderr, (run / "__main__.log").read_text()):
        assert "epoch 1/2: loss" in text and "epoch 2/2: loss" in text and "ETA" in text
        assert "final re-scoring: " in text
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "completed" and status["faults"] == {"skipped_steps": 0, "skipped_rewards": 0}
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != LOCK_FILE}
    again = run_cli(f"resume={run}")
    assert again.returncode == 2 and "that run has finished" in again.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name in files} == files
    best = run / "best_arch.json"
    proc = run_cli(f"resume={best}")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f"rlnas: error: {best} is a file, not a run directory"
    )


@pytest.mark.slow  # 13 s: two searches, a stop and a resume in a folder named like a sweep job
def test_run_dirs_named_like_sweep_jobs_resume_from_the_printed_hint(tmp_path):
    run = tmp_path / "0_controller=enas,seed=0 copy"
    proc = run_cli("+experiment=smoke", "search.epochs=3", "checkpoint.stop_after=1", f"hydra.run.dir={run}")
    assert proc.returncode == 130, proc.stderr[-2000:]
    hint = proc.stderr.strip().splitlines()[-1].split("continue with: ")[1]
    args = shlex.split(hint)
    assert args[:3] == ["python", "-m", "rlnas"]
    resumed = run_cli(*args[3:])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert (run / "best_arch.json").is_file()


def _wait_for(proc: subprocess.Popen, condition, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-2000:]


def test_a_stop_during_the_final_rescoring_is_honoured_and_resumable(tmp_path):
    from rlnas.search.checkpoint import CHECKPOINT, load_checkpoint

    run = tmp_path / "run"
    proc = _start(
        "+experiment=smoke",
        "search.epochs=2",
        "search.final_samples=400",
        "search.random_baseline=400",
        f"hydra.run.dir={run}",
    )
    _wait_for(
        proc, lambda: (run / "__main__.log").exists() and "final re-scoring" in (run / "__main__.log").read_text()
    )
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and time.monotonic() - started < 30
    assert err.strip().splitlines()[-1] == (
        "rlnas: interrupted during the final re-scoring (all epochs are saved); "
        f"continue with: python -m rlnas resume={run}"
    )
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert load_checkpoint(run / CHECKPOINT)["next_epoch"] == 2 and not (run / "best_arch.json").exists()


@pytest.mark.slow
def test_a_second_signal_stops_at_once_and_leaves_a_final_status(tmp_path):
    run = tmp_path / "run"
    proc = _start("+experiment=smoke", "search.epochs=500", "search.supernet_steps=200", f"hydra.run.dir={run}")
    _wait_for(proc, lambda: (run / "checkpoint.pt").exists())
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "stopped at once by a second SIGTERM; the last checkpoint (after epoch" in err.strip().splitlines()[-1]
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"


def test_a_run_dir_that_cannot_be_made_or_is_a_file_is_one_line(tmp_path):
    from rlnas.__main__ import user_error_message
    from rlnas.sweep.jobs import lock_run_dir

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError) as err:  # hydra.run.dir below a file
        lock_run_dir(blocker / "run")
    assert user_error_message(err.value) == f"{blocker}/run: cannot write the run's files there (Not a directory)"
    with pytest.raises(ValueError) as err:  # resume= a file
        lock_run_dir(blocker)
    assert user_error_message(err.value) == f"{blocker} is a file, not a run directory"
    assert blocker.read_text() == "not a directory"
    # A folder where the lock file goes was "cannot write the run's files there (Is a directory)".
    (tmp_path / "run" / ".rlnas.lock").mkdir(parents=True)
    with pytest.raises(ValueError) as err:
        lock_run_dir(tmp_path / "run")
    assert (
        user_error_message(err.value)
        == f"{tmp_path}/run/.rlnas.lock is a directory where the run's lock file goes; move it away"
    )


def test_a_checkpoint_of_another_space_is_refused_naming_it(tmp_path):
    import torch
    from hydra import compose, initialize_config_dir

    from rlnas.search.builder import build_search
    from rlnas.search.checkpoint import SearchInterrupted

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["+task=classification", "+experiment=smoke", "checkpoint.stop_after=1"])
    run = tmp_path / "run"
    with pytest.raises(SearchInterrupted):
        build_search(cfg, run, progress=False).run()
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    # As a run of another space would have left it: a layer of another width.
    name = next(k for k in state["model"] if k.endswith("conv3x3.0.weight"))
    state["model"][name] = torch.zeros(8, 8, 3, 3)
    torch.save(state, run / "checkpoint.pt")
    before = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError) as err:
        build_search(cfg, run, progress=False, resume=True)
    assert str(err.value).startswith(
        f"{run}/checkpoint.pt: the checkpoint holds another supernet than the "
        f"run's config.yaml describes ({name}: (8, 8, 3, 3) in the checkpoint, ("
    )
    assert (run / "checkpoint.pt").read_bytes() == before  # nothing lost


def test_a_full_disk_stops_the_run_in_one_line_and_keeps_what_was_written(tmp_path):
    run = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'tests' / 'full_disk'}{os.pathsep}{ROOT}",
        "RLNAS_TEST_DISK_WRITES": "4",
    }  # status, latency table, checkpoint 1, then full
    proc = subprocess.run(
        [sys.executable, "-m", "rlnas", "+experiment=smoke", "search.epochs=4", f"hydra.run.dir={run}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    assert any(
        line.startswith(f"rlnas: error: {run}/")
        and "No space left on device; nothing written before it is lost" in line
        for line in lines
    ), lines[-3:]
    # The status is final even so: rewritten in place, it fits where the full disk has no room for a copy.
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
    assert not list(run.glob("*.tmp"))  # no half-written files
    assert (run / "checkpoint.pt").exists()  # the last checkpoint that fitted


def test_a_stop_while_the_search_is_built_is_one_line_and_final(tmp_path):
    run = tmp_path / "run"
    # Detection builds for seconds (3,000 canvases, then the latency table): the signal lands in that phase.
    first = _start("+task=detection", "+experiment=smoke", "task.data.num_images=6000", f"hydra.run.dir={run}")
    deadline = time.monotonic() + 120
    while not (run / "status.json").exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        "rlnas: stopped by SIGINT before the first epoch; nothing to resume and nothing lost: start the run again"
    )
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert not (run / "checkpoint.pt").exists()


def test_a_stop_inside_a_library_call_that_wraps_errors_is_still_a_stop(tmp_path):
    from hydra.utils import instantiate

    from rlnas.__main__ import stops_before_the_first_epoch
    from rlnas.search.checkpoint import SearchInterrupted

    # The handler raises inside Hydra's instantiate, which wraps it in an InstantiationException.
    kill = {"_target_": "signal.raise_signal", "_args_": [int(signal.SIGINT)]}
    with pytest.raises(SearchInterrupted, match="stopped by SIGINT before the first epoch"):
        with stops_before_the_first_epoch(str(tmp_path), False):
            instantiate(kill)


def test_model_files_that_do_not_fit_on_the_disk_are_one_error_naming_the_file(tmp_path):
    """torch's own writers reported a full disk as a bare RuntimeError ("unexpected pos", checkpoints)
    or aborted the whole process with a C++ terminate (TorchScript); a file-size limit stands in for
    the full disk here (a write past it fails with EFBIG, as on a full one with ENOSPC)."""
    script = f"""
import errno, resource, signal, sys
from pathlib import Path
import torch
from rlnas.export.formats import export_onnx, export_torchscript
from rlnas.utils import save_atomic
from rlnas.utils.errors import user_error_message

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
model, example = torch.nn.Linear(200, 200), torch.zeros(1, 200)  # 160 kB of weights
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
out = Path({str(tmp_path)!r})
for name, write in [
    ("model.ts", lambda p: export_torchscript(model, example, p)),
    ("model.onnx", lambda p: export_onnx(model, example, p)),
    ("checkpoint.pt", lambda p: save_atomic(model.state_dict(), p)),
]:
    try:
        write(out / name)
    except OSError as err:
        print(name, err.errno == errno.EFBIG, user_error_message(err))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [
        f"{name} True {tmp_path / name}: File too large; nothing written before it is lost"
        for name in ("model.ts", "model.onnx", "checkpoint.pt")
    ]
    assert not list(tmp_path.iterdir())  # no half-written model or temporary file


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (every write: no space left)")
def test_a_log_file_on_a_full_disk_is_named_once_not_a_traceback_per_record(capsys):
    import contextlib
    import logging

    from rlnas.utils.errors import one_line_errors

    handler = logging.FileHandler("/dev/full")
    logging.getLogger().addHandler(handler)
    try:
        with one_line_errors("rlnas"):
            for i in range(3):
                logging.getLogger("rlnas").warning("record %d", i)
    finally:
        logging.getLogger().removeHandler(handler)
        with contextlib.suppress(OSError):  # its buffer cannot be flushed either
            handler.close()
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    assert err.count("rlnas: warning: /dev/full: No space left on device; the log file stops here") == 1


@pytest.mark.parametrize(
    "files, hinted",
    [
        (["history.csv", "checkpoint.pt"], True),  # a search stopped between epochs
        (["trials.jsonl"], True),  # a trial search stopped between trials
        (["history.csv"], False),  # nothing resume= could continue from
        (["checkpoint.pt", "best_arch.json"], False),  # finished: resume= refuses it
    ],
)
def test_the_resume_hint_is_given_for_an_unfinished_run_only_and_alike_before_and_after_hydra(tmp_path, files, hinted):
    """Both refusals of a used run dir (before Hydra starts, and the search's own claim) suggest resume= alike."""
    from rlnas.search.builder import claim_run_dir
    from rlnas.utils.rundir import refuse_earlier_job

    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    for name in files:
        (run / name).write_text("x")
    for refuse in (
        lambda: refuse_earlier_job(run, resumable_by=("checkpoint.pt", "trials.jsonl")),
        lambda: claim_run_dir(run, resume=False),
    ):
        with pytest.raises(ValueError, match="choose another directory") as err:
            refuse()
        assert (f"or continue it with {shlex.quote(f'resume={run}')}" in str(err.value)) == hinted


def test_json_nested_too_deeply_is_a_malformed_file_named_not_a_recursion_error(tmp_path):
    """100,000 nested brackets make json raise RecursionError (a traceback); every reader of users' JSON
    files names the file as malformed instead."""
    from rlnas.benchmarks.tabular import TabularBenchmark
    from rlnas.costs.latency import LatencyTable
    from rlnas.data.base import DataError
    from rlnas.export.model_folder import PredictError, load_model
    from rlnas.retrain import load_run
    from rlnas.spaces.cell import NB201Space

    deep = "[" * 100_000 + "]" * 100_000
    for name in ("table.json", "lat.json", "best_arch.json", "model/model.json"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(deep)
    (tmp_path / "model" / "model.onnx").write_bytes(b"")
    cases = [
        (lambda: LatencyTable.load(tmp_path / "lat.json"), ValueError),
        (lambda: load_run(str(tmp_path / "best_arch.json"), None), ValueError),
        (lambda: load_model(tmp_path / "model"), PredictError),
        (
            lambda: TabularBenchmark(NB201Space(), tmp_path / "table.json", "{e0}{e1}{e2}{e3}{e4}{e5}", metric="acc"),
            DataError,
        ),
    ]
    for load, error in cases:
        with pytest.raises(error, match="nested too deeply"):
            load()


def test_a_latency_table_that_is_not_utf8_is_named(tmp_path):
    """A UTF-16 or binary file given as costs.latency_table printed "'utf-8' codec can't decode", no file."""
    from rlnas.costs.latency import LatencyTable

    (tmp_path / "lat.json").write_bytes(b'\xff\xfe{"entries_ms": 1}')
    with pytest.raises(
        ValueError, match=re.escape(f"{tmp_path / 'lat.json'}: not a latency table (UnicodeDecodeError")
    ):
        LatencyTable.load(tmp_path / "lat.json")


def test_entries_of_the_wrong_kind_in_a_run_dir_are_named_before_any_work(tmp_path):
    """A folder named pareto.png in a resumed run dir failed the run after its last epoch (naming
    pareto.png.tmp); a file named tensorboard, or a folder named __main__.log, ended in tracebacks."""
    from rlnas.search.builder import claim_run_dir
    from rlnas.utils import atomic_file
    from rlnas.utils.rundir import refuse_planted_links

    run = tmp_path / "run"
    (run / "pareto.png").mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(f"resume={run}: pareto.png is a folder there, where the run")):
        claim_run_dir(run, resume=True)
    (run / "pareto.png").rmdir()
    (run / "tensorboard").write_text("")
    with pytest.raises(ValueError, match=re.escape(f"resume={run}: tensorboard is a file there, where the run")):
        claim_run_dir(run, resume=True)
    (run / "__main__.log").mkdir()
    with pytest.raises(ValueError, match=re.escape(f"{run / '__main__.log'} is a folder, where Hydra writes")):
        refuse_planted_links(run)
    (run / "__main__.log").rmdir()
    (run / ".hydra").write_text("")
    with pytest.raises(ValueError, match=re.escape(f"{run / '.hydra'} is a file, where Hydra writes its record")):
        refuse_planted_links(run)
    # A write that fails at its last step names the file, not its temporary.
    (run / "summary.json").mkdir()
    with pytest.raises(IsADirectoryError) as err, atomic_file(run / "summary.json") as f:
        f.write("{}")
    assert err.value.filename == str(run / "summary.json")
