"""Cost figures of an architecture, cached per architecture.

``params`` (trainable parameters of the standalone child with its head),
``size_mb`` (fp32 weights, 4 bytes each, in 10^6 bytes), ``size_int8_mb`` (1 byte
per weight: an estimate for int8 quantisation), ``mflops`` (10^6 floating-point
operations of one forward pass at batch 1, counted by
``torch.utils.flop_counter.FlopCounterMode`` on the standalone child; a
multiply-add counts 2) and ``latency_ms`` (predicted from a
:class:`~rlnas.costs.latency.LatencyTable`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from rlnas.costs.latency import LatencyTable
from rlnas.spaces.base import Arch, SearchSpace
from rlnas.supernet.macro import count_params

COST_NAMES = ("params", "size_mb", "size_int8_mb", "mflops", "latency_ms")


def forward_mflops(model: nn.Module, example: Tensor) -> float:
    """Forward MFLOPs of ``model`` on ``example`` (``FlopCounterMode``: a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode  # here: its import costs every command a tenth of a second

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(example)
    return counter.get_total_flops() / 1e6


class CostModel:
    """Computes and caches the costs of architectures.

    Parameters add up exactly over the supernet modules a child uses, so they
    come from a per-module table (no network is built); FLOPs need a forward
    pass of the standalone child and are computed only when asked for.

    Args:
        space: The search space.
        supernet: The supernet (backbone) whose modules the children share; it
            lists them (``choice_modules()``) and those an architecture uses
            (``used_modules(arch)``).
        head: The task head (its parameters count for every architecture).
        child_factory: arch -> standalone network (backbone + head), for FLOPs.
        input_shape: (C, H, W) of one input.
        latency: Latency table, needed for ``latency_ms``.
        track: Costs reported for every sampled architecture; :meth:`full`
            reports all of them.
    """

    def __init__(
        self,
        space: SearchSpace,
        supernet: nn.Module,
        head: nn.Module,
        child_factory: Callable[[Arch], nn.Module],
        input_shape: Sequence[int],
        latency: LatencyTable | None = None,
        track: Sequence[str] = ("params", "size_mb", "size_int8_mb", "latency_ms"),
    ) -> None:
        unknown = sorted(set(track) - set(COST_NAMES))
        if unknown:
            raise ValueError(f"costs.track: unknown cost {unknown[0]!r}; allowed: {list(COST_NAMES)}")
        self.space = space
        self.child_factory = child_factory
        self.input_shape = tuple(input_shape)
        self.latency = latency
        self.track = tuple(n for n in track if n != "latency_ms" or latency is not None)
        self.head_params = count_params(head)
        self.supernet = supernet
        # Supernets whose modules are sliced per choice report per-choice counts themselves.
        counts = getattr(supernet, "param_counts", None)
        self.module_params = counts() if counts else {name: count_params(m) for name, m in supernet.choice_modules()}
        self._cache: dict[Arch, dict[str, float]] = {}
        self._flops: dict[Arch, float] = {}

    def params(self, arch: Sequence[int]) -> int:
        return self.head_params + sum(self.module_params[m] for m in self.supernet.used_modules(tuple(arch)))

    def mflops(self, arch: Sequence[int]) -> float:
        key = tuple(arch)
        if key not in self._flops:
            child = self.child_factory(key).eval()
            self._flops[key] = forward_mflops(child, torch.zeros(1, *self.input_shape))
        return self._flops[key]

    def _all_cheap(self, arch: Arch) -> dict[str, float]:
        params = float(self.params(arch))
        out = {"params": params, "size_mb": params * 4 / 1e6, "size_int8_mb": params / 1e6}
        if self.latency is not None:
            out["latency_ms"] = self.latency.predict(self.supernet.used_modules(arch))
        return out

    def __call__(self, arch: Sequence[int]) -> dict[str, float]:
        """The tracked costs of ``arch`` (cached)."""
        key = tuple(arch)
        if key not in self._cache:
            cheap = self._all_cheap(key)
            out = {n: cheap[n] for n in self.track if n in cheap}
            if "mflops" in self.track:
                out["mflops"] = self.mflops(key)
            self._cache[key] = out
        return self._cache[key]

    def full(self, arch: Sequence[int]) -> dict[str, float]:
        """Every cost this model can compute, FLOPs included."""
        return {**self._all_cheap(tuple(arch)), "mflops": self.mflops(arch)}
