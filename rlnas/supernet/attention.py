"""Shared-weight supernet and standalone children of the attention space.

Pre-norm residual encoder blocks (Xiong et al., 2020): ``x + mixer(LN(x))`` then
``x + FFN(LN(x))``. The mixer is multi-head self-attention or a
depthwise-separable 1-D convolution over time; the FFN's hidden width is
searched. Weights are shared as in AutoFormer (Chen et al., 2021): the
supernet holds the widest FFN and a narrower choice uses its leading rows
(first layer) and columns (second layer); head counts split the same
projections differently. Inputs are embedded by a linear layer plus the
sinusoidal position code of Vaswani et al. (2017, §3.5); the output is the mean
over time of the final LayerNorm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlnas.spaces.base import Arch
from rlnas.spaces.sequence import AttentionSpace
from rlnas.supernet.sharing import ChildExtraction

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}


def positions(steps: int, width: int, device: torch.device) -> Tensor:
    """Sinusoidal position code (steps, width) (Vaswani et al., 2017, eq. in §3.5)."""
    pos = torch.arange(steps, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width))
    code = torch.zeros(steps, width, device=device)
    code[:, 0::2] = torch.sin(pos * freq)
    code[:, 1::2] = torch.cos(pos * freq)[:, : width // 2]
    return code


class SelfAttention(nn.Module):
    """LayerNorm, then multi-head self-attention with a head count chosen per call."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor, heads: int) -> Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.norm(x)).view(B, T, 3, heads, D // heads).permute(2, 0, 3, 1, 4)  # 3 x (B, h, T, d)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, T, d)
        return self.proj(out.transpose(1, 2).reshape(B, T, D))


class ConvMixer(nn.Module):
    """LayerNorm, then a depthwise convolution over time and a pointwise projection."""

    def __init__(self, width: int, kernel_size: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.depthwise = nn.Conv1d(width, width, kernel_size, padding=kernel_size // 2, groups=width)
        self.pointwise = nn.Linear(width, width)

    def forward(self, x: Tensor, heads: int = 1) -> Tensor:
        y = self.depthwise(self.norm(x).transpose(1, 2)).transpose(1, 2)  # (B, T, D)
        return self.pointwise(F.gelu(y))


class SlicedFFN(nn.Module):
    """LayerNorm and a two-layer MLP whose hidden width is the leading ``hidden`` of its own."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor, hidden: int, act: str) -> Tensor:
        h = F.linear(self.norm(x), self.fc1.weight[:hidden], self.fc1.bias[:hidden])  # (B, T, hidden)
        return F.linear(ACTIVATIONS[act](h), self.fc2.weight[:, :hidden], self.fc2.bias)


class _Encoder(nn.Module):
    """Embedding, ``num_layers`` blocks holding the mixers in ``mixers[l]`` and an FFN of ``ffn_widths[l]``."""

    def __init__(
        self, space: AttentionSpace, in_channels: int, mixers: Sequence[Sequence[str]], ffn_widths: Sequence[int]
    ) -> None:
        super().__init__()
        self.space = space
        self.in_channels = in_channels
        d = space.d_model
        self.embed = nn.Linear(in_channels, d)
        self.layers = nn.ModuleList()
        for kinds, hidden in zip(mixers, ffn_widths):
            block = nn.ModuleDict()
            if "attention" in kinds:
                block["attention"] = SelfAttention(d)
            if "conv" in kinds:
                block["conv"] = ConvMixer(d, space.kernel_size)
            block["ffn"] = SlicedFFN(d, hidden)
            self.layers.append(block)
        self.norm = nn.LayerNorm(d)
        self.out_channels = (d,)

    def _run(self, x: Tensor, layers: Sequence[tuple[str, int, int, str]]) -> list[Tensor]:
        """``x`` (B, T, F) -> [(B, d_model)]."""
        d = self.space.d_model
        h = self.embed(x) + positions(x.shape[1], d, x.device)
        for block, (kind, heads, ratio, act) in zip(self.layers, layers):
            h = h + block[kind](h, heads)
            h = h + block["ffn"](h, ratio * d, act)
        return [self.norm(h).mean(dim=1)]


class AttentionSuperNet(ChildExtraction, _Encoder):
    """Both mixers and the widest FFN in every block; ``forward(x, arch)`` runs one path.

    Shapes:
        ``x``: (B, steps, features) -> ``[(B, d_model)]``.
    """

    def __init__(self, space: AttentionSpace, in_channels: int) -> None:
        widest = max(space.ffn_ratios) * space.d_model
        super().__init__(space, in_channels, [space.layer_types] * space.num_layers, [widest] * space.num_layers)

    def forward(self, x: Tensor, arch: Sequence[int]) -> list[Tensor]:  # type: ignore[override]
        return self._run(x, self.space.layers(arch))

    def choice_modules(self) -> Iterator[tuple[str, nn.Module]]:
        yield "embed", self.embed
        yield "norm", self.norm
        for i, block in enumerate(self.layers):
            for kind in self.space.layer_types:
                yield f"layers.{i}.{kind}", block[kind]

    def param_counts(self) -> dict[str, int]:
        """Parameters per module of :meth:`used_modules`, a sliced FFN counted at its own width."""
        counts = {name: sum(p.numel() for p in m.parameters()) for name, m in self.choice_modules()}
        d = self.space.d_model
        for i in range(self.space.num_layers):
            for r in self.space.ffn_ratios:
                counts[f"layers.{i}.ffn.x{r}"] = 2 * d + (d * r * d + r * d) + (r * d * d + d)  # norm, fc1, fc2
        return counts

    def used_modules(self, arch: Sequence[int]) -> list[str]:
        used = ["embed", "norm"]
        for i, (kind, _, ratio, _) in enumerate(self.space.layers(arch)):
            used += [f"layers.{i}.{kind}", f"layers.{i}.ffn.x{ratio}"]
        return used

    def timing_calls(self, x: Tensor) -> dict[str, Callable[[], object]]:
        """One call per entry of :meth:`param_counts` (attention timed with its most heads)."""
        h = self.embed(x)
        d = self.space.d_model
        calls: dict[str, Callable[[], object]] = {
            "embed": lambda: self.embed(x) + positions(x.shape[1], d, x.device),
            "norm": lambda: self.norm(h).mean(dim=1),
        }
        for i, block in enumerate(self.layers):
            for kind in self.space.layer_types:
                calls[f"layers.{i}.{kind}"] = lambda m=block[kind]: m(h, max(self.space.heads))
            for r in self.space.ffn_ratios:
                calls[f"layers.{i}.ffn.x{r}"] = lambda m=block["ffn"], w=r * d: m(h, w, "relu")
        return calls


class AttentionChild(_Encoder):
    """A standalone encoder of one architecture: its mixer per block and an FFN of its own width."""

    def __init__(self, space: AttentionSpace, arch: Sequence[int], in_channels: int, track_running_stats: bool = True):
        self.arch: Arch = space.validate(arch)
        self._layers = space.layers(self.arch)
        super().__init__(
            space,
            in_channels,
            [[kind] for kind, *_ in self._layers],
            [ratio * space.d_model for _, _, ratio, _ in self._layers],
        )

    def forward(self, x: Tensor) -> list[Tensor]:  # type: ignore[override]
        return self._run(x, self._layers)
