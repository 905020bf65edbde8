"""Shared-weight supernet and standalone children of the ENAS recurrent cell space.

ENAS (Pham et al., 2018, §2.2) with its highway nodes (Zilly et al., 2017):
node 0 computes ``c = sigmoid(W_c [x_t, h_{t-1}])`` and
``h_0 = c * f_0(W_h [x_t, h_{t-1}]) + (1 - c) * h_{t-1}``; node ``i`` reading node
``j`` computes ``c = sigmoid(W_c^{(j,i)} h_j)`` and
``h_i = c * f_i(W_h^{(j,i)} h_j) + (1 - c) * h_j``. The next hidden state is the
mean of the loose ends. One weight matrix per ordered pair ``(j, i)`` is shared
by every architecture using that edge, whatever its activation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn

from rlnas.spaces.base import Arch
from rlnas.spaces.sequence import RNNCellSpace
from rlnas.supernet.sharing import ChildExtraction

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda t: t,
    "sigmoid": torch.sigmoid,
}


class _RNNCellNetwork(nn.Module):
    """The cell unrolled over the steps of a sequence; holds the edges ``(j, i)`` given."""

    def __init__(self, space: RNNCellSpace, in_channels: int, edges: Iterable[tuple[int, int]]) -> None:
        super().__init__()
        self.space = space
        self.in_channels = in_channels
        hidden = space.hidden_size
        # Gate and candidate of node 0 in one product: (x_t, h_{t-1}) -> (c, h~).
        self.input = nn.Linear(in_channels + hidden, 2 * hidden)
        self.edges = nn.ModuleDict({f"{j}_{i}": nn.Linear(hidden, 2 * hidden, bias=False) for j, i in edges})
        self.out_channels = (hidden,)

    def _run(self, x: Tensor, inputs: Sequence[int], acts: Sequence[str], loose: Sequence[int]) -> list[Tensor]:
        """``x`` (B, T, F) -> [h_T (B, hidden)]."""
        h = x.new_zeros(x.shape[0], self.space.hidden_size)
        for t in range(x.shape[1]):
            gate, cand = self.input(torch.cat([x[:, t], h], dim=1)).chunk(2, dim=1)
            c = torch.sigmoid(gate)
            nodes = [c * ACTIVATIONS[acts[0]](cand) + (1 - c) * h]
            for i in range(1, len(inputs)):
                src = nodes[inputs[i]]
                gate, cand = self.edges[f"{inputs[i]}_{i}"](src).chunk(2, dim=1)
                c = torch.sigmoid(gate)
                nodes.append(c * ACTIVATIONS[acts[i]](cand) + (1 - c) * src)
            h = torch.stack([nodes[k] for k in loose]).mean(dim=0)
        return [h]


def _cell_edges(space: RNNCellSpace, arch: Arch) -> list[tuple[int, int]]:
    inputs, _, _ = space.cell(arch)
    return [(inputs[i], i) for i in range(1, space.num_nodes)]


class RNNCellSuperNet(ChildExtraction, _RNNCellNetwork):
    """Every edge ``(j, i)``, ``j < i``, stored once; ``forward(x, arch)`` runs one cell.

    Shapes:
        ``x``: (B, steps, features) -> ``[h (B, hidden)]``, the last hidden state.
    """

    def __init__(self, space: RNNCellSpace, in_channels: int) -> None:
        all_edges = [(j, i) for i in range(1, space.num_nodes) for j in range(i)]
        super().__init__(space, in_channels, all_edges)

    def forward(self, x: Tensor, arch: Sequence[int]) -> list[Tensor]:  # type: ignore[override]
        return self._run(x, *self.space.cell(arch))

    def choice_modules(self) -> Iterator[tuple[str, nn.Module]]:
        yield "input", self.input
        for key, module in self.edges.items():
            yield f"edges.{key}", module

    def used_modules(self, arch: Sequence[int]) -> list[str]:
        return ["input"] + [f"edges.{j}_{i}" for j, i in _cell_edges(self.space, self.space.validate(arch))]

    def timing_calls(self, x: Tensor) -> dict[str, Callable[[], object]]:
        """Each module applied once per step of ``x``, as the unrolled cell applies it."""
        steps = x.shape[1]
        h = x.new_zeros(x.shape[0], self.space.hidden_size)
        joined = torch.cat([x[:, 0], h], dim=1)
        calls: dict[str, Callable[[], object]] = {"input": lambda: [self.input(joined) for _ in range(steps)]}
        for key, module in self.edges.items():
            calls[f"edges.{key}"] = lambda m=module: [m(h) for _ in range(steps)]
        return calls


class RNNCellChild(_RNNCellNetwork):
    """A standalone recurrent network of one cell: only the edges it uses."""

    def __init__(self, space: RNNCellSpace, arch: Sequence[int], in_channels: int, track_running_stats: bool = True):
        self.arch: Arch = space.validate(arch)
        self._cell = space.cell(self.arch)
        super().__init__(space, in_channels, _cell_edges(space, self.arch))

    def forward(self, x: Tensor) -> list[Tensor]:  # type: ignore[override]
        return self._run(x, *self._cell)
