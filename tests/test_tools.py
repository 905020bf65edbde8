"""The analysis tools that read a finished run (tools/score_run.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli


def _score_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "score_run.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_score_run_reproduces_the_best_score_and_scores_random_archs(tmp_path):
    run = tmp_path / "run"
    proc = run_cli("+experiment=smoke", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
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


def test_score_run_names_what_is_missing(tmp_path):
    proc = _score_run("--run-dir", str(tmp_path))
    assert proc.returncode != 0
    assert f"--run-dir {tmp_path}: no best_arch.json there" in proc.stderr


def test_rank_study_statistics():
    import numpy as np

    from tools.rank_study import mean_ceiling, noise_ceiling, top_precision

    truth = np.arange(20.0)
    assert top_precision(truth, truth) == 1.0  # top 2 of 20 by the truth itself
    assert top_precision(-truth, truth) == 0.0
    # Ties at the boundary count as in the truth's top: every tied arch is as good as the k-th.
    assert top_precision(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0, 1.0]), fraction=0.25) == 0.0
    assert top_precision(np.array([0.0, 3.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0, 1.0]), fraction=0.25) == 1.0
    # Identical seeds: ceiling 1; a mean of more runs is easier to agree with than one run.
    assert noise_ceiling(np.stack([truth, truth, truth], 1)) == pytest.approx(1.0)
    assert mean_ceiling(1.0, 3) == pytest.approx(1.0) and mean_ceiling(0.0, 3) == 0.0
    assert 0.283 < mean_ceiling(0.283, 3) < mean_ceiling(0.283, 5) < 1.0


@pytest.mark.slow
def test_rank_study_runs_on_a_finished_search(tmp_path):
    run = tmp_path / "run"
    proc = run_cli("+experiment=smoke", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "study"
    args = ["--run-dir", str(run), "--label", "smoke", "--archs", "5", "--seeds", "2", "--epochs", "1",
            "--calibrate", "64", "--out", str(out)]
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "rank_study.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
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
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "rank_study.py"), *args[:2], "--label", "again",
                           *args[4:]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "standalone: 0 s" in proc.stdout
    assert json.loads((out / "standalone.json").read_text()) == cached
    assert set(json.loads((out / "study.json").read_text())["variants"]) == {"smoke", "again"}
