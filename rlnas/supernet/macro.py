"""Shared-weight supernet and standalone children for the ENAS macro space."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from torch import Tensor, nn

from rlnas.spaces.base import Arch
from rlnas.spaces.macro import MacroSpace
from rlnas.supernet.ops import Adapter, batch_norm, kernel, make_activation, make_op, same_padding
from rlnas.supernet.sharing import ChildExtraction

# Per layer: (op name, indices of the earlier layers added as skips).
Plan = tuple[tuple[str, tuple[int, ...]], ...]
# (op name or skip source, its weight or None for 1) of one layer's weighted sum.
Terms = Sequence[tuple[Any, Tensor | None]]
STEM = -1  # layer index of the stem output in adapter keys


class _MacroNetwork(nn.Module):
    """Builds the modules of a macro network holding ``op_choices`` per layer.

    The supernet holds every op of every layer; a child holds only its chosen
    ones. Module names are the same in both, so a child's ``state_dict`` is a
    subset of the supernet's and weights move between them by name.
    """

    def __init__(
        self,
        space: MacroSpace,
        in_channels: int,
        op_choices: Sequence[Sequence[str]],
        adapter_pairs: Sequence[tuple[int, int]],
        post_bn_layers: Sequence[int],
        track_running_stats: bool,
    ) -> None:
        super().__init__()
        self.space = space
        c0 = space.channels[0]
        stem: list[nn.Module] = []
        stride, c_in = space.stem_stride, in_channels
        while True:  # one stride-2 conv per factor 2 of the stem stride, at least one conv
            s = 2 if stride > 1 else 1
            stem += [
                nn.Conv2d(
                    c_in,
                    c0,
                    kernel(3, space.dims),
                    stride=kernel(s, space.dims),
                    padding=same_padding(3, space.dims),
                    bias=False,
                ),
                batch_norm(c0, track_running_stats),
                make_activation(space.activation),
            ]
            stride, c_in = stride // s, c0
            if stride == 1:
                break
        self.stem = nn.Sequential(*stem)
        self.layers = nn.ModuleList()
        for i, names in enumerate(op_choices):
            width = space.channels[space.layer_stage[i]]
            self.layers.append(
                nn.ModuleDict(
                    {name: make_op(name, width, space.activation, track_running_stats, space.dims) for name in names}
                )
            )
        # Keys "j>s": output of layer j (or the stem, j = -1) adapted to stage s.
        self.adapters = nn.ModuleDict()
        for j, s in adapter_pairs:
            src_stage = self._stage(j)
            self.adapters[f"{j}>{s}"] = Adapter(
                space.channels[src_stage], space.channels[s], 2 ** (s - src_stage), track_running_stats, space.dims
            )
        # BatchNorm after adding skip connections, per layer as in ENAS.
        self.post_bn = nn.ModuleDict(
            {str(i): batch_norm(space.channels[space.layer_stage[i]], track_running_stats) for i in post_bn_layers}
        )
        self.out_channels = tuple(space.channels)

    def _stage(self, layer: int) -> int:
        return 0 if layer == STEM else self.space.layer_stage[layer]

    def _run(self, x: Tensor, plan: Plan) -> list[Tensor]:
        """Runs ``plan`` on ``x`` (B, C_in, H, W); returns the last feature map of each stage."""
        return self._run_terms(x, [(((op, None),), tuple((j, None) for j in skips)) for op, skips in plan])

    def _run_terms(self, x: Tensor, layers: Sequence[tuple[Terms, Terms]]) -> list[Tensor]:
        """Runs per-layer weighted sums: ``(ops, skips)``, each a sequence of (name or source layer, weight).

        A weight of None is 1 (a single path); a layer with skip terms gets its
        post-addition BatchNorm, as in ENAS.
        """
        stage_of = self.space.layer_stage
        outs: dict[int, Tensor] = {STEM: self.stem(x)}
        adapted: dict[tuple[int, int], Tensor] = {}

        def fetch(j: int, s: int) -> Tensor:
            if self._stage(j) == s:
                return outs[j]
            if (j, s) not in adapted:
                adapted[(j, s)] = self.adapters[f"{j}>{s}"](outs[j])
            return adapted[(j, s)]

        def weighted(value: Tensor, weight: Tensor | None) -> Tensor:
            return value if weight is None else weight * value

        features: list[Tensor] = []
        for i, (ops, skips) in enumerate(layers):
            s = stage_of[i]
            if i > 0 and stage_of[i - 1] != s:
                features.append(outs[i - 1])
            inp = fetch(i - 1, s)
            out = sum_terms([weighted(self.layers[i][op](inp), w) for op, w in ops])
            if skips:
                out = out + sum_terms([weighted(fetch(j, s), w) for j, w in skips])
                out = self.post_bn[str(i)](out)
            outs[i] = out
        features.append(outs[len(layers) - 1])
        return features

    @staticmethod
    def needed_adapters(space: MacroSpace, plan: Plan) -> list[tuple[int, int]]:
        pairs: set[tuple[int, int]] = set()
        stage = lambda j: 0 if j == STEM else space.layer_stage[j]  # noqa: E731
        for i, (_, skips) in enumerate(plan):
            s = space.layer_stage[i]
            for j in (i - 1, *skips):
                if stage(j) != s:
                    pairs.add((j, s))
        return sorted(pairs)


def make_plan(space: MacroSpace, arch: Arch) -> Plan:
    """Per-layer (op name, skip sources) of an architecture."""
    return tuple((space.layer_op(arch, i), space.layer_skips(arch, i)) for i in range(space.num_layers))


def used_modules(space: MacroSpace, arch: Arch) -> list[str]:
    """Names of the supernet modules (``stem``, ``layers.i.op``, ``adapters.j>s``,
    ``post_bn.i``) that the child of ``arch`` contains; per-module tables of
    parameters or latency add up over this list."""
    plan = make_plan(space, arch)
    names = ["stem"] + [f"layers.{i}.{op}" for i, (op, _) in enumerate(plan)]
    names += [f"post_bn.{i}" for i, (_, skips) in enumerate(plan) if skips]
    names += [f"adapters.{j}>{s}" for j, s in _MacroNetwork.needed_adapters(space, plan)]
    return names


class MacroSuperNet(ChildExtraction, _MacroNetwork):
    """Every candidate op of every layer, stored once; ``forward(x, arch)`` runs one path.

    Args:
        space: The macro search space.
        in_channels: Channels of the input images.

    Shapes:
        ``x``: (B, in_channels, H, W) -> list of stage feature maps,
        ``(B, channels[s], H / 2**s, W / 2**s)``.
    """

    def __init__(self, space: MacroSpace, in_channels: int) -> None:
        L = space.num_layers
        every_pair = [
            (j, s)
            for j in range(STEM, L)
            for s in range(len(space.channels))
            if s > (0 if j == STEM else space.layer_stage[j])
        ]
        super().__init__(
            space,
            in_channels,
            op_choices=[space.ops] * L,
            adapter_pairs=every_pair,
            post_bn_layers=range(1, L),
            track_running_stats=False,
        )
        self.in_channels = in_channels
        self._plans: dict[Arch, Plan] = {}

    def plan(self, arch: Sequence[int]) -> Plan:
        key = tuple(arch)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = make_plan(self.space, self.space.validate(key))
        return plan

    def forward(self, x: Tensor, arch: Sequence[int]) -> list[Tensor]:  # type: ignore[override]
        return self._run(x, self.plan(arch))

    def forward_weighted(
        self, x: Tensor, weights: Sequence[Tensor], active: Sequence[Sequence[int]] | None = None
    ) -> list[Tensor]:
        """A weighted mixture of paths, for differentiable search (DARTS, GDAS).

        Each layer outputs ``sum_k w[op, k] * op_k(input) + sum_j w[skip j, 1] * h_j``
        (Liu et al., 2019, eq. 2, with the skip decisions as two-way choices
        whose "off" branch adds nothing).

        Args:
            x: Input images (B, C_in, H, W).
            weights: Per decision, a weight per choice (``len(space)`` vectors).
            active: Per decision, the choices to compute (None: all). GDAS
                computes only its sampled choice; its weight carries the gradient.
        """
        space = self.space
        layers = []
        for i in range(space.num_layers):
            d = space.op_index[i]
            ops = tuple((space.ops[k], weights[d][k]) for k in (active[d] if active else range(len(space.ops))))
            skips = tuple(
                (j, weights[dj][1]) for j, dj in enumerate(space.skip_index[i]) if not active or 1 in active[dj]
            )
            layers.append((ops, skips))
        return self._run_terms(x, layers)

    def choice_modules(self) -> Iterator[tuple[str, nn.Module]]:
        """Every module a child may contain, by the name :meth:`used_modules` uses."""
        yield "stem", self.stem
        for i, layer in enumerate(self.layers):
            for op, module in layer.items():
                yield f"layers.{i}.{op}", module
        for key, module in self.post_bn.items():
            yield f"post_bn.{key}", module
        for key, module in self.adapters.items():
            yield f"adapters.{key}", module

    def used_modules(self, arch: Sequence[int]) -> list[str]:
        """Names of the modules the child of ``arch`` contains."""
        return used_modules(self.space, tuple(arch))

    def timing_calls(self, x: Tensor) -> dict[str, Callable[[], object]]:
        """One call per module of :meth:`choice_modules`, on its own input shape, for a latency table."""
        space = self.space
        calls: dict[str, Callable[[], object]] = {"stem": lambda: self.stem(x)}
        # Each stage's output has the shape of every layer input in that stage.
        feats = self(x, [0] * len(space))
        for i in range(space.num_layers):
            inp = feats[space.layer_stage[i]]
            for name, op in self.layers[i].items():
                calls[f"layers.{i}.{name}"] = lambda op=op, inp=inp: op(inp)
            if str(i) in self.post_bn:
                calls[f"post_bn.{i}"] = lambda bn=self.post_bn[str(i)], inp=inp: bn(inp + inp)
        for key, adapter in self.adapters.items():
            src = feats[self._stage(int(key.split(">")[0]))]
            calls[f"adapters.{key}"] = lambda a=adapter, src=src: a(src)
        return calls


class MacroChild(_MacroNetwork):
    """A standalone network for one architecture: only its chosen ops, no arch argument.

    Args:
        space: The macro search space.
        arch: The architecture (tuple of ints).
        in_channels: Channels of the input images.
        track_running_stats: Whether BatchNorm keeps running statistics
            (True for retraining, False to match the supernet exactly).
    """

    def __init__(self, space: MacroSpace, arch: Sequence[int], in_channels: int, track_running_stats: bool = True):
        self.arch: Arch = space.validate(arch)
        plan = make_plan(space, self.arch)
        super().__init__(
            space,
            in_channels,
            op_choices=[[op] for op, _ in plan],
            adapter_pairs=self.needed_adapters(space, plan),
            post_bn_layers=[i for i, (_, skips) in enumerate(plan) if skips],
            track_running_stats=track_running_stats,
        )
        self._plan = plan

    def forward(self, x: Tensor) -> list[Tensor]:  # type: ignore[override]
        return self._run(x, self._plan)


def count_params(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def sum_terms(terms: Sequence[Tensor]) -> Tensor:
    """The sum of one or more tensors (the first one itself when alone, so a single path stays exact)."""
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total
