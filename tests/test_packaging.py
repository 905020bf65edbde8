"""The built wheel carries its configs: an installed rlnas runs from any directory, no checkout needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow  # 11 s of building and installing a wheel; `make test-slow` and `make wheel-check` run it
def test_wheel_ships_every_config_and_runs_from_an_empty_directory(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(wheels),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("rlnas-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = sorted(p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml"))
    assert configs and [c for c in configs if f"rlnas/conf/{c}" not in names] == []

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    empty = tmp_path / "empty"
    empty.mkdir()
    # The installed copy first on the path: the checkout's configs must not be what is found.
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import rlnas.config as c; print(c.CONF_DIR)"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr[-2000:]
    assert Path(where.stdout.strip()) == site / "rlnas" / "conf"
    run = subprocess.run(
        [sys.executable, "-m", "rlnas", "+experiment=smoke", "hydra.run.dir=run"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    best = json.loads((empty / "run" / "best_arch.json").read_text())
    assert best["metrics"]["val_accuracy"] > 0
