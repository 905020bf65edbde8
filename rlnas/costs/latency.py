"""Per-operation latency lookup table (LUT) for the macro space.

Each module a child can contain (stem, every op of every layer, every adapter,
every post-skip BatchNorm, the head) is timed alone at batch 1 on its own input
shape, after a warm-up, as the median of repeats. An architecture's predicted
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

from rlnas.spaces.macro import MacroSpace
from rlnas.supernet.macro import MacroSuperNet, used_modules


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
        cls, supernet: MacroSuperNet, head: nn.Module, input_shape: Sequence[int], device: torch.device,
        warmup: int = 5, repeats: int = 21,
    ) -> LatencyTable:
        """Times every module of ``supernet`` (and ``head``) on ``device``."""
        space: MacroSpace = supernet.space
        modes = (supernet.training, head.training)
        supernet.eval()
        head.eval()
        x = torch.randn(1, *input_shape, device=device)
        timed = lambda f: measure_ms(f, device, warmup, repeats)  # noqa: E731
        entries: dict[str, float] = {"stem": timed(lambda: supernet.stem(x))}
        with torch.no_grad():
            # Each stage's output has the shape of every layer input in that stage.
            feats = supernet(x, [0] * len(space))
            for i in range(space.num_layers):
                inp = feats[space.layer_stage[i]]
                for name, op in supernet.layers[i].items():
                    entries[f"layers.{i}.{name}"] = timed(lambda op=op, inp=inp: op(inp))
                if str(i) in supernet.post_bn:
                    bn = supernet.post_bn[str(i)]
                    entries[f"post_bn.{i}"] = timed(lambda bn=bn, inp=inp: bn(inp + inp))
            for key, adapter in supernet.adapters.items():
                src = feats[supernet._stage(int(key.split(">")[0]))]
                entries[f"adapters.{key}"] = timed(lambda a=adapter, src=src: a(src))
            entries["head"] = timed(lambda: head(feats))
        supernet.train(modes[0])
        head.train(modes[1])
        return cls(entries, str(device), input_shape)

    def predict(self, space: MacroSpace, arch: Sequence[int]) -> float:
        """Predicted latency (ms) of ``arch``: the sum over the modules it uses."""
        return self.entries["head"] + sum(self.entries[m] for m in used_modules(space, tuple(arch)))

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
