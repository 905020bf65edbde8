"""The ENAS macro search space (Pham et al., 2018, "Efficient Neural
Architecture Search via Parameter Sharing", section 2.3).

A network of ``num_layers`` layers. Layer ``i`` takes the previous layer's
output, applies one operation chosen among ``ops`` and adds the outputs of any
earlier layers whose skip decision is on. Decisions are taken layer by layer:
first the operation, then one on/off skip decision per earlier layer
(``i`` of them for layer ``i``), as in the ENAS controller.

With ``dims=1`` the same space searches networks over 1-D signals (e.g.
MNIST-1D): operations are named by one kernel size (``conv5``, ``dilconv3``)
and run on (B, C, 1, L) maps with (1, K) kernels, which is exactly a 1-D
convolution, so the supernet, children, costs and exports serve both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rlnas.spaces.base import (
    Arch,
    Decision,
    SearchSpace,
    check_choices,
    check_decision_count,
    check_supernet_fits,
)

#: Operation families the supernet knows how to build; ``K`` is the kernel size
#: (``KxK`` in 2-D spaces, ``K`` in 1-D ones). ``dilconv`` is a convolution
#: with dilation 2 (its receptive field ``2K - 1``), ``identity`` passes its input on.
OP_PATTERN = re.compile(r"^(conv|sepconv|dilconv|maxpool|avgpool)(\d+)(?:x(\d+))?$")
IDENTITY = "identity"
ACTIVATIONS = ("relu", "leaky_relu", "relu6", "gelu", "silu", "tanh")
SKIP_CHOICES = ("off", "on")


def parse_op(name: str, dims: int = 2) -> tuple[str, int]:
    """Splits an op name such as ``"sepconv5x5"`` (or ``"sepconv5"`` when ``dims=1``) into ``("sepconv", 5)``.

    ``identity`` is ``("identity", 1)``.

    Raises:
        ValueError: If the name is not ``{conv,sepconv,dilconv,maxpool,avgpool}KxK``
            (``...K`` in 1-D) with an odd ``K``, nor ``identity``.
    """
    if name == IDENTITY:
        return IDENTITY, 1
    match = OP_PATTERN.match(name)
    square = match is not None and match.group(3) is not None and match.group(2) == match.group(3)
    flat = match is not None and match.group(3) is None
    if not match or not (square if dims == 2 else flat) or int(match.group(2)) % 2 == 0:
        example = "conv3x3, sepconv5x5, dilconv3x3, maxpool3x3" if dims == 2 else "conv5, sepconv5, dilconv3, maxpool3"
        kernel = "an odd square kernel" if dims == 2 else "an odd kernel size (1-D space)"
        raise ValueError(
            f"unknown operation {name!r}: use conv|sepconv|dilconv|maxpool|avgpool followed by {kernel}, "
            f"e.g. {example}; or identity"
        )
    return match.group(1), int(match.group(2))


def op_weights(name: str, dims: int, width: int) -> int:
    """About how many weights one op holds at ``width`` channels (an upper bound, for the memory check)."""
    family, k = parse_op(name, dims)
    area = k * k if dims == 2 else k
    if family in ("conv", "dilconv"):
        return area * width**2 + 4 * width
    if family == "sepconv":  # depthwise K, then pointwise 1
        return area * width + width**2 + 4 * width
    return width**2 + 4 * width  # pooling and identity: at most a 1x1 projection and its BatchNorm


class MacroSpace(SearchSpace):
    """ENAS macro space with configurable operations, widths and activation.

    Args:
        num_layers: Number of searched layers ``L``.
        ops: Allowed operation names (see :func:`parse_op`).
        channels: Width of each stage; ``len(channels)`` stages separated by
            stride-2 reductions (ENAS doubles the width at each reduction).
        reduction_layers: Indices of the layers that start a new stage; by
            default the stages split the layers evenly.
        activation: Activation used after every convolution.
        width_multiplier: Scales every width (e.g. 0.25 turns 128-256 into
            32-64 so a CPU default stays fast).
        stem_stride: Downsampling of the fixed stem (a power of two: one
            stride-2 convolution per factor 2), for large inputs such as
            detection canvases.
        dims: 2 for images (B, C, H, W); 1 for signals, given as (B, C, 1, L).

    Raises:
        ValueError: On an unknown op/activation or inconsistent stage layout,
            naming the offending field.
    """

    def __init__(  # noqa: C901 - one check per argument, each naming its key (see the class docstring)
        self,
        num_layers: int = 6,
        ops: Sequence[str] = ("conv3x3", "sepconv3x3", "maxpool3x3", "avgpool3x3"),
        channels: Sequence[int] = (32, 64),
        reduction_layers: Sequence[int] | None = None,
        activation: str = "relu",
        width_multiplier: float = 1.0,
        stem_stride: int = 1,
        dims: int = 2,
    ) -> None:
        if int(dims) not in (1, 2):
            raise ValueError(f"space.dims must be 1 (signals) or 2 (images), got {dims}")
        self.dims = int(dims)
        if int(num_layers) < 1:
            raise ValueError(f"space.num_layers must be >= 1, got {num_layers}")
        # An operation per layer and a skip to each earlier layer: quadratic in the layers.
        check_decision_count(int(num_layers) * (int(num_layers) + 1) // 2, f"space.num_layers={num_layers}")
        for key, value in (("ops", ops), ("channels", channels)):
            if isinstance(value, str):  # iterated letter by letter, 'conv3x3' was the unknown operation 'c'
                raise ValueError(f"space.{key} must be a list, got {value!r}")
        ops = tuple(str(o) for o in ops)
        if not ops:
            raise ValueError("space.ops must list at least one operation")
        for op in ops:
            try:
                parse_op(op, self.dims)
            except ValueError as err:
                raise ValueError(f"space.ops: {err}") from None
        check_choices("ops", ops)
        if not float(width_multiplier) > 0:
            raise ValueError(f"space.width_multiplier must be > 0, got {width_multiplier}")
        if int(stem_stride) < 1 or int(stem_stride) & (int(stem_stride) - 1):
            raise ValueError(f"space.stem_stride must be a power of two, got {stem_stride}")
        if not channels or min(int(c) for c in channels) < 1:
            raise ValueError(f"space.channels must be positive widths, got {list(channels)}")
        channels = tuple(max(1, round(int(c) * float(width_multiplier))) for c in channels)
        if activation not in ACTIVATIONS:
            raise ValueError(f"space.activation={activation!r} is unknown; allowed: {list(ACTIVATIONS)}")
        self.num_layers = int(num_layers)
        # Every layer holds every op at the widest width: refuse a supernet that cannot fit before building it
        # (a kernel of 99999 on a 40-step signal holds 1.6 GB per op and layer).
        check_supernet_fits(
            self.num_layers * sum(op_weights(op, self.dims, max(channels)) for op in ops),
            f"space.num_layers={self.num_layers}, space.channels={list(channels)} and space.ops={list(ops)}",
        )
        num_stages = len(channels)
        if num_stages > self.num_layers:
            raise ValueError(f"space.channels has {num_stages} stages but there are only {self.num_layers} layers")
        if reduction_layers is None:
            reduction_layers = [round(s * self.num_layers / num_stages) for s in range(1, num_stages)]
        reductions = tuple(int(r) for r in reduction_layers)
        if (
            len(reductions) != num_stages - 1
            or list(reductions) != sorted(set(reductions))
            or any(not 0 < r < self.num_layers for r in reductions)
        ):
            raise ValueError(
                f"space.reduction_layers={list(reductions)} must hold {num_stages - 1} increasing layer "
                f"indices in 1..{self.num_layers - 1} (one per stage after the first)"
            )
        self.ops = ops
        self.channels = channels
        self.reduction_layers = reductions
        self.activation = activation
        self.stem_stride = int(stem_stride)
        # Stage index of each layer.
        self.layer_stage = tuple(sum(i >= r for r in reductions) for i in range(self.num_layers))

        decisions: list[Decision] = []
        self.op_index: list[int] = []
        self.skip_index: list[list[int]] = []
        for i in range(self.num_layers):
            self.op_index.append(len(decisions))
            decisions.append(Decision(f"layer{i}/op", "op", ops))
            skips = []
            for j in range(i):
                skips.append(len(decisions))
                decisions.append(Decision(f"layer{i}/skip{j}", "skip", SKIP_CHOICES))
            self.skip_index.append(skips)
        super().__init__(decisions)

    def layer_op(self, arch: Arch, layer: int) -> str:
        """Name of the operation chosen for ``layer``."""
        return self.ops[arch[self.op_index[layer]]]

    def layer_skips(self, arch: Arch, layer: int) -> tuple[int, ...]:
        """Indices of the earlier layers whose output is added to ``layer``."""
        return tuple(j for j, idx in enumerate(self.skip_index[layer]) if arch[idx] == 1)

    def describe(self, arch: Sequence[int]) -> str:
        arch = self.validate(arch)
        parts = []
        for i in range(self.num_layers):
            skips = self.layer_skips(arch, i)
            parts.append(self.layer_op(arch, i) + (f"+skip{list(skips)}" if skips else ""))
        return " | ".join(parts)
