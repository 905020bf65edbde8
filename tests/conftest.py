"""Shared fixtures: small spaces, toy evaluators and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from rlnas.evaluators.base import Evaluation
from rlnas.spaces import MacroSpace

ROOT = Path(__file__).resolve().parents[1]


class MatchEvaluator:
    """Toy evaluator: reward = fraction of decisions equal to a hidden target arch."""

    reward_metric = "match"

    def __init__(self, target: Sequence[int]) -> None:
        self.target = np.asarray(target)
        self.calls = 0

    def evaluate(self, arch: Sequence[int]) -> Evaluation:
        self.calls += 1
        return Evaluation({"match": float(np.mean(np.asarray(arch) == self.target))}, {"params": float(sum(arch))})

    def evaluate_batch(self, archs):
        return [self.evaluate(a) for a in archs]


def toy_space() -> MacroSpace:
    """The toy problem's space: 4**5 ops x 2**10 skips = 1,048,576 architectures."""
    return MacroSpace(num_layers=5, ops=["conv3x3", "sepconv3x3", "maxpool3x3", "avgpool3x3"], channels=[8])


def evaluations_to_optimum(ctrl, target, budget: int, batch: int = 10) -> int | None:
    """Evaluations until ``ctrl`` proposes ``target`` on the match toy problem (None: not within budget)."""
    evaluator = MatchEvaluator(target)
    for used in range(batch, budget + 1, batch):
        archs = ctrl.propose(batch)
        rewards = [e.metrics["match"] for e in evaluator.evaluate_batch(archs)]
        ctrl.observe(archs, rewards)
        if max(rewards) == 1.0:
            return used
    return None


@pytest.fixture
def small_space() -> MacroSpace:
    return MacroSpace(num_layers=4, ops=["conv3x3", "sepconv5x5", "maxpool3x3", "avgpool3x3"], channels=[8, 16])


@pytest.fixture(autouse=True)
def _torch_threads():
    torch.set_num_threads(2)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs ``python -m rlnas ARGS`` and returns the finished process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "rlnas", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One finished ``python -m rlnas +experiment=smoke`` run and its process; tests only read it."""
    run_dir = tmp_path_factory.mktemp("smoke")
    proc = run_cli("+experiment=smoke", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, proc
