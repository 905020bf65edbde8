"""Per-operation latency lookup table (LUT) of a supernet.

Each module a child can contain (for the macro space: stem, every op of every
layer, every adapter, every post-skip BatchNorm; always the head) is timed
alone at batch 1 on its own input shape, after a warm-up, as the median of
repeats. Supernets say which calls to time (``timing_calls``) and which
modules an architecture uses (``used_modules``). An architecture's predicted
latency is the sum over the modules it uses (the LUT approach of FBNet, Wu et
al. 2019, and ProxylessNAS, Cai et al. 2019).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from rlnas.spaces.base import SearchSpace


def measure_ms(fn: Callable[[], object], device: torch.device, warmup: int = 5, repeats: int = 21) -> float:
    """Median wall time of ``fn()`` in milliseconds (synchronising CUDA)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


class LatencyTable:
    """Latency of each supernet module at batch 1, keyed by module name.

    Args:
        entries: Module name -> milliseconds.
        device: Device the table was measured on (a table is only valid there).
        input_shape: (C, H, W) of the network input it was measured for.
    """

    def __init__(self, entries: dict[str, float], device: str, input_shape: Sequence[int]) -> None:
        self.entries = dict(entries)
        self.device = device
        self.input_shape = list(input_shape)

    @classmethod
    def measure(
        cls, supernet: nn.Module, head: nn.Module, input_shape: Sequence[int], device: torch.device,
        warmup: int = 5, repeats: int = 21,
    ) -> LatencyTable:
        """Times every module of ``supernet`` (and ``head``) on ``device``."""
        space: SearchSpace = supernet.space
        modes = (supernet.training, head.training)
        supernet.eval()
        head.eval()
        x = torch.randn(1, *input_shape, device=device)
        timed = lambda f: measure_ms(f, device, warmup, repeats)  # noqa: E731
        with torch.no_grad():
            entries = {name: timed(call) for name, call in supernet.timing_calls(x).items()}
            feats = supernet(x, [0] * len(space))
            entries["head"] = timed(lambda: head(feats))
        supernet.train(modes[0])
        head.train(modes[1])
        return cls(entries, str(device), input_shape)

    def predict(self, modules: Sequence[str]) -> float:
        """Predicted latency (ms) of a child made of ``modules`` (``supernet.used_modules(arch)``) and the head."""
        return self.entries["head"] + sum(self.entries[m] for m in modules)

    def save(self, path: str | Path) -> None:
        payload = {"device": self.device, "input_shape": self.input_shape, "entries_ms": self.entries}
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        try:
            payload = json.loads(Path(path).read_text())
            return cls(payload["entries_ms"], payload["device"], payload["input_shape"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a latency table ({err})") from None
