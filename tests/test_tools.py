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
