"""Candidate operations of the ENAS macro space.

Every operation maps ``(B, C, H, W) -> (B, C, H, W)`` (stride 1, same padding),
so any of them can sit in any layer of a stage. In 1-D spaces ``H`` is 1 and
kernels are (1, K).
"""

from __future__ import annotations

from torch import nn

from rlnas.spaces.macro import parse_op


def make_activation(name: str) -> nn.Module:
    """Builds the activation named in the space config."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.1)
    if name == "relu6":
        return nn.ReLU6()
    if name == "gelu":
        return nn.GELU()
    if name == "silu":
        return nn.SiLU()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}")


def batch_norm(channels: int, track_running_stats: bool) -> nn.BatchNorm2d:
    """BatchNorm used everywhere in the networks.

    Inside the supernet, ``track_running_stats=False`` makes every forward use
    the statistics of its own batch: running averages mixed over many sampled
    architectures would fit none of them (a known failure of weight sharing).
    Standalone children trained from scratch track running statistics as usual.
    """
    return nn.BatchNorm2d(channels, track_running_stats=track_running_stats)


def kernel(k: int, dims: int) -> tuple[int, int]:
    """A (K, K) kernel, or (1, K) in a 1-D space."""
    return (k, k) if dims == 2 else (1, k)


def same_padding(k: int, dims: int, dilation: int = 1) -> tuple[int, int]:
    """Padding that keeps a stride-1 map's size under a :func:`kernel` of ``k`` (none across a 1-D map's height)."""
    pad = dilation * (k // 2)
    return (pad, pad) if dims == 2 else (0, pad)


def make_op(name: str, channels: int, activation: str, track_running_stats: bool, dims: int = 2) -> nn.Module:
    """Builds one candidate operation, following the ENAS macro branches.

    ``conv``: Conv(k) - BN - act. ``dilconv``: the same with dilation 2 (as
    DARTS's dilated convolutions, Liu et al., 2019, widen the receptive field
    at the same weights). ``sepconv``: depthwise Conv(k) - pointwise Conv(1) -
    BN - act. ``maxpool``/``avgpool``: Conv(1) - BN - act - Pool(k), where the
    1x1 convolution before pooling is the one ENAS uses in its pooling branches
    (Pham et al., 2018, general_child.py). ``identity``: the input itself.
    """
    family, k = parse_op(name, dims)
    if family == "identity":
        return nn.Identity()
    size = kernel(k, dims)
    pad = same_padding(k, dims)
    bn = batch_norm(channels, track_running_stats)
    if family in ("conv", "dilconv"):
        dilation = 2 if family == "dilconv" else 1
        return nn.Sequential(
            nn.Conv2d(channels, channels, size, padding=same_padding(k, dims, dilation), dilation=dilation, bias=False),
            bn,
            make_activation(activation),
        )
    if family == "sepconv":
        return nn.Sequential(
            nn.Conv2d(channels, channels, size, padding=pad, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            bn,
            make_activation(activation),
        )
    pool: nn.Module
    if family == "maxpool":
        pool = nn.MaxPool2d(size, stride=1, padding=pad)
    else:
        pool = nn.AvgPool2d(size, stride=1, padding=pad, count_include_pad=False)
    return nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), bn, make_activation(activation), pool)


class Adapter(nn.Sequential):
    """Brings a feature map into a later stage: AvgPool(stride) - Conv(1) - BN.

    Used both for the main path at a reduction and for skip connections that
    cross one or more reductions (ENAS uses a factorized reduction there; a
    pooled 1x1 projection keeps the same shapes with one module per pair).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, track_running_stats: bool, dims: int = 2
    ) -> None:
        layers: list[nn.Module] = []
        if stride > 1:
            layers.append(
                nn.AvgPool2d(kernel(stride, dims), kernel(stride, dims), ceil_mode=True, count_include_pad=False)
            )
        layers += [nn.Conv2d(in_channels, out_channels, 1, bias=False), batch_norm(out_channels, track_running_stats)]
        super().__init__(*layers)
