"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020), searched with weight sharing.

A cell is a DAG of 4 nodes; each of its 6 edges ``(j <- i)``, ``i < j``, carries
one of 5 operations. Every cell of the network uses the same architecture.
Decision names ``e0..e5`` and choice names are those of the NB201 table, so
an architecture found here can be looked up there
(``conf/benchmark/nb201_cifar10.yaml``).
"""

from __future__ import annotations

from collections.abc import Sequence

from rlnas.spaces.base import Decision, SearchSpace, check_choices, check_supernet_fits

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edges in NB201's string order: (node1<-0), (node2<-0), (node2<-1), (node3<-0), (node3<-1), (node3<-2).
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


class NB201Space(SearchSpace):
    """Six edge decisions of the NB201 cell, plus the fixed network around it.

    Args:
        ops: Candidate operations (a subset of :data:`NB201_OPS`, in any order).
        channels: Width of each stage; a residual reduction block (stride 2)
            sits between stages (NB201: 16, 32, 64).
        cells_per_stage: Cells per stage (NB201: 5; fewer suit a CPU).
        stem_stride: Stride of the stem convolution (1 or 2).
    """

    def __init__(
        self,
        ops: Sequence[str] = NB201_OPS,
        channels: Sequence[int] = (16, 32, 64),
        cells_per_stage: int = 1,
        stem_stride: int = 1,
    ) -> None:
        check_choices("ops", list(ops))
        unknown = [op for op in ops if op not in NB201_OPS]
        if unknown:
            raise ValueError(f"space.ops={list(ops)} has unknown {unknown}; allowed: {list(NB201_OPS)}")
        if all(op == "none" for op in ops):  # every cell would be disconnected: nothing to search
            raise ValueError(f"space.ops={list(ops)} needs an operation other than none")
        if not channels or any(int(c) < 1 for c in channels):
            raise ValueError(f"space.channels={list(channels)} must be a non-empty list of positive widths")
        if int(cells_per_stage) < 1:
            raise ValueError(f"space.cells_per_stage={cells_per_stage} must be >= 1")
        if stem_stride not in (1, 2):
            raise ValueError(f"space.stem_stride={stem_stride}; allowed: 1, 2")
        # Each cell's 6 edges hold a 1x1 and a 3x3 convolution at most (10 C^2 weights); each stage
        # after the first adds a residual reduction block (two 3x3 convolutions and a 1x1 shortcut).
        check_supernet_fits(
            sum(int(cells_per_stage) * 60 * int(c) ** 2 + 19 * int(c) ** 2 for c in channels),
            f"space.cells_per_stage={cells_per_stage} and space.channels={list(channels)}",
        )
        self.ops = tuple(ops)
        self.channels = tuple(int(c) for c in channels)
        self.cells_per_stage = int(cells_per_stage)
        self.stem_stride = int(stem_stride)
        super().__init__([Decision(f"e{k}", "edge", self.ops) for k in range(len(NB201_EDGES))])

    def nb201_string(self, arch: Sequence[int]) -> str:
        """The architecture in NB201's notation, e.g. ``|nor_conv_3x3~0|+|...|``."""
        names = [self.ops[a] for a in self.validate(arch)]
        nodes = []
        for j in (1, 2, 3):
            nodes.append("|" + "|".join(f"{names[k]}~{i}" for k, (jj, i) in enumerate(NB201_EDGES) if jj == j) + "|")
        return "+".join(nodes)
