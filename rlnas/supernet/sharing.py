"""How a child takes its weights from the supernet: by module name.

A child's modules carry the names of the supernet modules they come from, so
the shared entries of a supernet state dict that a child has, under the same
name, are exactly its weights. Where a supernet holds the widest choice of a
searched width (the attention space's feed-forward layers) the child takes
the leading slice, as in once-for-all / AutoFormer weight inheritance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn


def shared_weights(shared: Mapping[str, Tensor], child: nn.Module) -> dict[str, Tensor]:
    """The entries of ``shared`` that ``child`` has under the same name, sliced to the child's shape.

    An entry whose shape the child's cannot be cut from (more dimensions, or
    larger in one) is left out.
    """
    own = child.state_dict()
    out = {}
    for key, value in shared.items():
        if key not in own:
            continue
        shape = own[key].shape
        if shape == value.shape:
            out[key] = value
        elif len(shape) == value.dim() and all(a <= b for a, b in zip(shape, value.shape)):
            out[key] = value[tuple(slice(0, n) for n in shape)].clone()
    return out


class ChildExtraction:
    """``extract_child`` for a registered supernet (one with ``space`` and ``in_channels``)."""

    def extract_child(self, arch: Sequence[int], copy_weights: bool = True) -> nn.Module:
        """The standalone child of ``arch``, on the supernet's device, with its weights copied."""
        from rlnas.supernet.registry import build_child

        supernet: Any = self  # an nn.Module with space and in_channels
        device = next(supernet.parameters()).device
        child = build_child(supernet.space, arch, supernet.in_channels, track_running_stats=False).to(device)
        if copy_weights:
            # Strict: every child tensor is shared.
            child.load_state_dict(shared_weights(supernet.state_dict(), child))
        return child
