"""What a trial search keeps on disk: the trial log, the controller's checkpoint and the tables.

``trials.jsonl`` gets one line per finished trial, appended and flushed to
disk as the trial ends, so a driver killed at any moment loses only the trials
still training. ``trials_state.pt`` holds the controller after its latest
update and the trials it had learnt from (tensors, numbers and strings only:
it loads with ``weights_only=True``). A resume reads both: finished trials are
never trained again, and those the controller had not learnt from yet are
shown to it first.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlnas.search.callbacks import arch_to_str
from rlnas.spaces.base import SearchSpace
from rlnas.trials.planner import Outcome
from rlnas.utils import atomic_file, parse_json, save_atomic
from rlnas.utils.trust import load_tensor_file

#: The trial log, the controller checkpoint and the table of trials, in the run dir.
LOG_FILE = "trials.jsonl"
STATE_FILE = "trials_state.pt"
TABLE_FILE = "trials.csv"
#: Format of ``trials_state.pt``.
VERSION = 1


class TrialLog:
    """Append-only log of finished trials (JSON lines)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, outcome: Outcome) -> None:
        """Adds one finished trial; on disk when this returns."""
        line = json.dumps(outcome.as_record(), allow_nan=False)
        with self.path.open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self, space: SearchSpace, epochs: int | None = None) -> list[Outcome]:
        """The finished trials, in the order they finished.

        A last line cut short (a kill while it was written) is dropped; any other
        unreadable line is an error.

        Args:
            space: The run's space; every architecture must be one of its.
            epochs: The run's top fidelity (``trials.epochs``): a completed trial trained that many epochs, a
                stopped one fewer (``None``: not checked).

        Raises:
            ValueError: Naming the file and line of a malformed or repeated record (a trial index or an
                architecture trained twice: the search trains each architecture once).
        """
        if not self.path.is_file():
            return []
        text = self.path.read_text()
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        elif lines:  # no newline after the last record: the write was cut short
            lines.pop()
        outcomes: list[Outcome] = []
        indices: set[int] = set()
        archs: dict[tuple[int, ...], int] = {}
        for number, line in enumerate(lines, start=1):
            try:
                record = parse_json(line)
                outcome = Outcome.from_record(record)
                space.validate(outcome.arch)
                _check_epochs(outcome, epochs)
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{self.path}: line {number} is not a trial record ({err})") from None
            if outcome.index in indices:
                raise ValueError(f"{self.path}: line {number} repeats trial {outcome.index}")
            if outcome.arch in archs:
                raise ValueError(
                    f"{self.path}: line {number} repeats the architecture of trial {archs[outcome.arch]} "
                    f"(trial {outcome.index}); a search trains each architecture once"
                )
            indices.add(outcome.index)
            archs[outcome.arch] = outcome.index
            outcomes.append(outcome)
        return outcomes


def _check_epochs(outcome: Outcome, epochs: int | None) -> None:
    """A completed trial reached ``epochs``, a stopped one fewer, none more (ValueError otherwise)."""
    if epochs is None:
        return
    if outcome.epochs > epochs:
        raise ValueError(f"{outcome.epochs} epochs, more than the run's trials.epochs={epochs}")
    if outcome.status == "completed" and outcome.epochs != epochs:
        raise ValueError(f"a completed trial of {outcome.epochs} epochs; the run's trials train {epochs}")
    if outcome.status == "stopped" and outcome.epochs == epochs:
        raise ValueError(f"a stopped trial that trained all {epochs} epochs")


def save_state(path: str | Path, controller_state: dict[str, Any], observed: Sequence[int], config: str) -> None:
    """Writes the controller checkpoint (atomically)."""
    save_atomic(
        {"version": VERSION, "config": config, "controller": controller_state, "observed": [int(i) for i in observed]},
        path,
    )


def load_state(path: str | Path) -> dict[str, Any]:
    """Reads ``trials_state.pt``.

    Raises:
        ValueError: Naming the file when it is not a trial search's checkpoint.
    """
    state = load_tensor_file(path, "trial search checkpoint")
    if not isinstance(state, dict) or state.get("version") != VERSION or "controller" not in state:
        raise ValueError(f"{path}: not a trial search checkpoint (format {VERSION})")
    return state


def write_table(path: str | Path, space: SearchSpace, outcomes: Sequence[Outcome]) -> None:
    """``trials.csv``: one row per trial in the order they started."""
    rows = sorted(outcomes, key=lambda o: o.index)
    metrics = list(dict.fromkeys(k for o in rows for k in o.metrics))
    costs = list(dict.fromkeys(k for o in rows for k in o.costs))
    with atomic_file(path) as f:
        out = csv.writer(f)
        header = ["trial", "status", "epochs", "reward", *metrics, *costs, "seconds", "arch", "description", "error"]
        out.writerow(header)
        for o in rows:
            out.writerow(
                [
                    o.index,
                    o.status,
                    o.epochs,
                    f"{o.reward:.6g}",
                    *(f"{o.metrics.get(k, float('nan')):.6g}" for k in metrics),
                    *(f"{o.costs.get(k, float('nan')):.6g}" for k in costs),
                    f"{o.seconds:.2f}",
                    arch_to_str(o.arch),
                    space.describe(o.arch),
                    o.error,
                ]
            )
