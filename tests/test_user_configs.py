"""Config dirs of a user's own: a tabular benchmark and a search space added without touching the package."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli

OPS = ["a", "b", "c"]


@pytest.fixture()
def user_dir(tmp_path):
    """A 27-row table (score grows with each choice's index, optimum c-c-c) and its YAML, plus a space YAML."""
    table = tmp_path / "table.csv"
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "score", "params"])
        for x, y, z in itertools.product(OPS, repeat=3):
            writer.writerow(
                [f"{x}-{y}-{z}", (OPS.index(x) + 2 * OPS.index(y) + OPS.index(z)) / 8, 100 + 10 * OPS.index(x)]
            )
    conf = tmp_path / "myconf"
    (conf / "benchmark").mkdir(parents=True)
    (conf / "benchmark" / "mytable.yaml").write_text(f"""# @package _global_
# A synthetic 27-row table.
benchmark:
  name: mytable
  path: {table}
  key_column: arch
  key_template: "{{x}}-{{y}}-{{z}}"
  metric: score
  costs: {{params: params}}
  decisions:
    x: [a, b, c]
    y: [a, b, c]
    z: [a, b, c]
  evaluations: 27
  archs_per_step: 9
""")
    (conf / "space").mkdir()
    (conf / "space" / "tiny.yaml").write_text("""# Four layers, two ops, one width.
_target_: rlnas.spaces.MacroSpace
num_layers: 4
ops: [conv3x3, avgpool3x3]
channels: [16]
""")
    return conf


@pytest.mark.parametrize("how", ["--config-dir", pytest.param("hydra.searchpath", marks=pytest.mark.slow)])
def test_a_users_own_benchmark_runs_from_their_config_dir(user_dir, tmp_path, how):
    add = ["--config-dir", str(user_dir)] if how == "--config-dir" else [f"hydra.searchpath=[file://{user_dir}]"]
    # grid enumerates all 27 rows: the table's optimum must be what it reports.
    proc = run_cli(*add, "+benchmark=mytable", "controller=grid", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = json.loads((tmp_path / "run" / "best_arch.json").read_text())
    assert best["arch"] == [2, 2, 2] and best["metrics"]["score"] == pytest.approx(1.0)
    assert "mytable" in run_cli(*add, "--help").stdout
    # Without the dir the choice is refused in one line naming it.
    proc = run_cli("+benchmark=mytable")
    assert proc.returncode == 2 and "benchmark=mytable is not a benchmark config" in proc.stderr.splitlines()[-1]


def test_a_users_own_space_config_searches(user_dir, tmp_path):
    proc = run_cli("--config-dir", str(user_dir), "space=tiny", "+experiment=smoke", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = json.loads((tmp_path / "r" / "best_arch.json").read_text())
    assert len(best["arch"]) == 4 + 6  # 4 op decisions and 0+1+2+3 skip decisions


@pytest.mark.slow
def test_comparison_tool_takes_a_config_dir(user_dir, tmp_path):
    tool = [
        sys.executable,
        str(ROOT / "tools" / "compare_controllers.py"),
        "--benchmark",
        "mytable",
        "--seeds",
        "2",
        "--controllers",
        "evolution",
        "--out",
        str(tmp_path / "cmp"),
    ]
    # a controller config of the user's own is compared beside the package's (it was "invalid choice")
    (user_dir / "controller").mkdir()
    (user_dir / "controller" / "mine.yaml").write_text("_target_: rlnas.controllers.LocalSearchController\n")
    mine = [*tool[:-2], "mine", *tool[-2:]]
    proc = subprocess.run([*mine, "--config-dir", str(user_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {r["controller"] for r in json.loads((tmp_path / "cmp" / "table.json").read_text())["rows"]} == {
        "random",
        "evolution",
        "mine",
    }
    proc = subprocess.run(mine, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--controllers mine is unknown; choose from" in proc.stderr
    proc = subprocess.run(tool, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "compare_controllers.py: error: benchmark=mytable is not a benchmark config; "
        "allowed: nb201_cifar10, nb201_cifar10_noisy, toy"
    ]
