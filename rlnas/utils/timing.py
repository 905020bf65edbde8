"""Optional accounting of the time spent in child computation."""

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
