"""Optional accounting of the time spent in child computation; elapsed time and ETA for progress lines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class ComputeTimer:
    """Accumulates wall time inside ``with timer():`` blocks when enabled.

    The search wraps child forward/backward/optimiser steps and evaluation
    forwards in it; everything else (controller, env, rewards, logging, batch
    selection) is loop overhead. Disabled, it costs one attribute check per
    block; enabled, it synchronises CUDA so the time is the device's.
    """

    def __init__(self, device: torch.device | str = "cpu", enabled: bool = False) -> None:
        self.device = torch.device(device)
        self.enabled = enabled
        self.seconds = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds += time.perf_counter() - start


#: Seconds between the progress lines of long work where stderr is no terminal (its bar is off there).
PROGRESS_LINE_S = 30.0


class ProgressLines:
    """When long work logs its next progress line where stderr is no terminal: every :data:`PROGRESS_LINE_S`.

    Args:
        on: Whether lines are wanted at all (off where a progress bar shows instead).
    """

    def __init__(self, on: bool = True) -> None:
        self.on = on
        self.started = self.last = time.perf_counter()

    def due(self) -> bool:
        """True (and the clock restarted) when a line is due."""
        if not self.on or time.perf_counter() - self.last < PROGRESS_LINE_S:
            return False
        self.last = time.perf_counter()
        return True

    def elapsed_and_eta(self, done: int, left: int) -> tuple[str, str]:
        """:func:`elapsed_and_eta` since this work started."""
        return elapsed_and_eta(self.started, done, left)


def elapsed_and_eta(started: float, done: int, left: int) -> tuple[str, str]:
    """The time since ``started`` (``time.perf_counter``) and the time ``left`` more units will take at the
    pace of the ``done`` ones, as :func:`_clock` strings."""
    elapsed = time.perf_counter() - started
    return _clock(elapsed), _clock(elapsed / max(1, done) * max(0, left))


def _clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) of a duration."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
