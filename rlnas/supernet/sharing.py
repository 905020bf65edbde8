"""How a child takes its weights from the supernet: by module name.

A child's modules carry the names of the supernet modules they come from, so
the shared entries of a supernet state dict that a child has, under the same
name and shape, are exactly its weights.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn


def shared_weights(shared: Mapping[str, Tensor], child: nn.Module) -> dict[str, Tensor]:
    """The entries of ``shared`` that ``child`` has under the same name and shape."""
    own = child.state_dict()
    return {k: v for k, v in shared.items() if k in own and own[k].shape == v.shape}
