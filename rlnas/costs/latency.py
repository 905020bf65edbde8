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
from rlnas.utils import atomic_file, parse_json

#: Largest latency of one module a table may hold: an hour, in milliseconds.
MAX_MODULE_MS = 3_600_000.0


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
        #: The file the table was loaded from (``None``: measured here).
        self.source: str | None = None

    @classmethod
    def measure(
        cls,
        supernet: nn.Module,
        head: nn.Module,
        input_shape: Sequence[int],
        device: torch.device,
        warmup: int = 5,
        repeats: int = 21,
    ) -> LatencyTable:
        """Times every module of ``supernet`` (and ``head``) on ``device``."""
        space: SearchSpace = supernet.space
        modes = (supernet.training, head.training)
        supernet.eval()
        head.eval()
        x = torch.randn(1, *input_shape, device=device)
        timed = lambda f: measure_ms(f, device, warmup, repeats)  # noqa: E731
        with torch.no_grad():
            try:  # the head's input, computed once, and a check that one sample runs at all
                feats = supernet(x, [0] * len(space))
            except ValueError as err:  # BatchNorm's batch statistics of one 1x1 feature map: nothing to normalise
                raise ValueError(
                    f"an input of {list(input_shape)} shrinks to single-pixel feature maps in this space, too small "
                    f"to run one sample ({err}); use a larger task.data.image_size"
                ) from None
            entries = {name: timed(call) for name, call in supernet.timing_calls(x).items()}
            entries["head"] = timed(lambda: head(feats))
        supernet.train(modes[0])
        head.train(modes[1])
        return cls(entries, str(device), input_shape)

    def save(self, path: str | Path) -> None:
        payload = {"device": self.device, "input_shape": self.input_shape, "entries_ms": self.entries}
        with atomic_file(path) as f:
            f.write(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """A table saved by :meth:`save`; every entry must be a finite, non-negative number of milliseconds.

        Raises:
            ValueError: Naming the file (and the entry) when it is unreadable or an entry is not a latency.
        """
        try:
            payload = parse_json(Path(path).read_text(encoding="utf-8-sig"))
            entries, device, shape = payload["entries_ms"], payload["device"], payload["input_shape"]
        except (OSError, ValueError, KeyError, TypeError) as err:  # ValueError: malformed JSON, not UTF-8
            raise ValueError(f"{path}: not a latency table ({type(err).__name__}: {err})") from None
        if not isinstance(entries, dict) or "head" not in entries:
            raise ValueError(
                f"{path}: not a latency table (entries_ms must map module names, 'head' among them, to milliseconds)"
            )
        for name, value in entries.items():
            # Past an hour per module it is no measurement (1e308 summed to inf in the search's cost means).
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_MODULE_MS:
                raise ValueError(
                    f"{path}: entries_ms.{name}={value!r} is not a latency (milliseconds >= 0 and at most an hour, "
                    f"{MAX_MODULE_MS:,.0f})"
                )
        table = cls({k: float(v) for k, v in entries.items()}, str(device), shape)
        table.source = str(path)
        return table

    def predict(self, modules: Sequence[str]) -> float:
        """Predicted latency (ms) of a child made of ``modules`` (``supernet.used_modules(arch)``) and the head.

        Raises:
            KeyError: Naming the module the table has no entry for (a table of another space).
        """
        try:
            return self.entries["head"] + sum(self.entries[m] for m in modules)
        except KeyError as err:  # looked for only on failure: predict runs for every scored architecture
            raise KeyError(
                f"the latency table{f' {self.source}' if self.source else ''} has no entry for module "
                f"{err.args[0]!r} (measured for another space? costs.latency_table=null measures a new "
                "one)"
            ) from None
