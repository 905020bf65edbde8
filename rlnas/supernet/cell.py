"""Shared-weight supernet and standalone children of the NAS-Bench-201 cell space.

Network (Dong & Yang, 2020, Fig. 1): stem Conv3x3-BN; per stage
``cells_per_stage`` cells of the searched architecture; between stages a
residual reduction block (ReLU-Conv3x3/2-BN, ReLU-Conv3x3-BN, shortcut
AvgPool/2-Conv1x1). Each node sums its incoming edges; ``none`` edges are left
out of the sum (a node with only ``none`` inputs is zero).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from rlnas.spaces.base import Arch
from rlnas.spaces.cell import NB201_EDGES, NB201Space
from rlnas.supernet.ops import batch_norm
from rlnas.supernet.sharing import ChildExtraction


def make_cell_op(name: str, channels: int, track_running_stats: bool) -> nn.Module:
    """One NB201 edge operation; ``nor_conv`` is ReLU-Conv-BN as in the benchmark."""
    if name == "none":
        return nn.Identity()  # never called: a none edge is skipped
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    k = 1 if name == "nor_conv_1x1" else 3
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(channels, channels, k, padding=k // 2, bias=False),
        batch_norm(channels, track_running_stats),
    )


class ReductionBlock(nn.Module):
    """NB201's residual reduction between stages (ResNet basic block, stride 2)."""

    def __init__(self, c_in: int, c_out: int, track_running_stats: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
            batch_norm(c_out, track_running_stats),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            batch_norm(c_out, track_running_stats),
        )
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.shortcut(x)


class _CellNetwork(nn.Module):
    """Stem, cells and reductions holding ``op_choices[e]`` on edge ``e`` of every cell."""

    def __init__(
        self, space: NB201Space, in_channels: int, op_choices: Sequence[Sequence[str]], track_running_stats: bool
    ) -> None:
        super().__init__()
        self.space = space
        self.in_channels = in_channels
        c0 = space.channels[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c0, 3, stride=space.stem_stride, padding=1, bias=False),
            batch_norm(c0, track_running_stats),
        )
        self.reductions = nn.ModuleDict()
        self.cells = nn.ModuleList()
        self.cell_stage: list[int] = []
        for s, width in enumerate(space.channels):
            if s > 0:
                self.reductions[str(s)] = ReductionBlock(space.channels[s - 1], width, track_running_stats)
            for _ in range(space.cells_per_stage):
                edges = nn.ModuleList(
                    nn.ModuleDict({op: make_cell_op(op, width, track_running_stats) for op in names if op != "none"})
                    for names in op_choices
                )
                self.cells.append(edges)
                self.cell_stage.append(s)
        self.out_channels = tuple(space.channels)

    def _cell(self, edges: nn.ModuleList, x: Tensor, terms: Sequence[Sequence[tuple[str, Tensor | None]]]) -> Tensor:
        """One cell; edge ``e`` adds ``sum(w * op(node))`` over its (op name, weight or None for 1) terms."""
        nodes = [x]
        for j in (1, 2, 3):
            total: Tensor | None = None
            for e, (jj, i) in enumerate(NB201_EDGES):
                if jj != j:
                    continue
                for op, w in terms[e]:
                    if op == "none":  # the zero op adds nothing, whatever its weight
                        continue
                    out = edges[e][op](nodes[i])
                    out = out if w is None else w * out
                    total = out if total is None else total + out
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[3]

    def _run(self, x: Tensor, names: Sequence[str]) -> list[Tensor]:
        return self._run_terms(x, [((name, None),) for name in names])

    def _run_terms(self, x: Tensor, terms: Sequence[Sequence[tuple[str, Tensor | None]]]) -> list[Tensor]:
        h = self.stem(x)
        features: list[Tensor] = []
        for k, edges in enumerate(self.cells):
            s = self.cell_stage[k]
            if k > 0 and self.cell_stage[k - 1] != s:
                features.append(h)
                h = self.reductions[str(s)](h)
            h = self._cell(edges, h, terms)
        features.append(h)
        return features


def used_cell_modules(space: NB201Space, arch: Arch) -> list[str]:
    """Supernet module names in the child of ``arch`` (``none`` edges have none)."""
    names = [space.ops[a] for a in arch]
    used = ["stem"] + [f"reductions.{s}" for s in range(1, len(space.channels))]
    for k in range(len(space.channels) * space.cells_per_stage):
        used += [f"cells.{k}.{e}.{op}" for e, op in enumerate(names) if op != "none"]
    return used


class NB201SuperNet(ChildExtraction, _CellNetwork):
    """Every operation on every edge of every cell, stored once; ``forward(x, arch)`` runs one path.

    Shapes:
        ``x``: (B, in_channels, H, W) -> list of stage feature maps,
        ``(B, channels[s], H / (stem_stride * 2**s), ...)``.
    """

    def __init__(self, space: NB201Space, in_channels: int) -> None:
        super().__init__(space, in_channels, [space.ops] * len(NB201_EDGES), track_running_stats=False)

    def forward(self, x: Tensor, arch: Sequence[int]) -> list[Tensor]:  # type: ignore[override]
        return self._run(x, [self.space.ops[a] for a in self.space.validate(arch)])

    def forward_weighted(
        self, x: Tensor, weights: Sequence[Tensor], active: Sequence[Sequence[int]] | None = None
    ) -> list[Tensor]:
        """A weighted mixture of operations on every edge (DARTS, Liu et al., 2019, eq. 2), shared by all cells.

        Args:
            x: Input images (B, C_in, H, W).
            weights: Per edge, a weight per operation.
            active: Per edge, the operations to compute (None: all); GDAS computes only its sample.
        """
        ops = self.space.ops
        terms = [
            tuple((ops[k], weights[e][k]) for k in (active[e] if active else range(len(ops))))
            for e in range(len(NB201_EDGES))
        ]
        return self._run_terms(x, terms)

    def choice_modules(self) -> Iterator[tuple[str, nn.Module]]:
        yield "stem", self.stem
        for key, module in self.reductions.items():
            yield f"reductions.{key}", module
        for k, edges in enumerate(self.cells):
            for e, ops in enumerate(edges):
                for op, module in ops.items():
                    yield f"cells.{k}.{e}.{op}", module

    def used_modules(self, arch: Sequence[int]) -> list[str]:
        return used_cell_modules(self.space, self.space.validate(arch))

    def timing_calls(self, x: Tensor) -> dict[str, Callable[[], object]]:
        """One call per module of :meth:`choice_modules`, on its own input shape, for a latency table."""
        feats = self(x, [0] * len(NB201_EDGES))  # stage shapes do not depend on the architecture
        calls: dict[str, Callable[[], object]] = {"stem": lambda: self.stem(x)}
        for key, block in self.reductions.items():
            calls[f"reductions.{key}"] = lambda b=block, src=feats[int(key) - 1]: b(src)
        for k, edges in enumerate(self.cells):
            inp = feats[self.cell_stage[k]]
            for e, ops in enumerate(edges):
                for op, module in ops.items():
                    calls[f"cells.{k}.{e}.{op}"] = lambda m=module, inp=inp: m(inp)
        return calls


class NB201Child(_CellNetwork):
    """A standalone network of one cell architecture: only the chosen operation on each edge."""

    def __init__(self, space: NB201Space, arch: Sequence[int], in_channels: int, track_running_stats: bool = True):
        self.arch: Arch = space.validate(arch)
        self._names = [space.ops[a] for a in self.arch]
        super().__init__(space, in_channels, [[n] for n in self._names], track_running_stats)

    def forward(self, x: Tensor) -> list[Tensor]:  # type: ignore[override]
        return self._run(x, self._names)
