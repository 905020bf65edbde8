"""Spaces for sequence models: the ENAS recurrent cell and a small transformer-encoder block space."""

from __future__ import annotations

from collections.abc import Sequence

from rlnas.spaces.base import Arch, Decision, SearchSpace, check_choices, check_supernet_fits

RNN_ACTIVATIONS = ("tanh", "relu", "identity", "sigmoid")
ATTENTION_ACTIVATIONS = ("relu", "gelu", "silu")
LAYER_TYPES = ("attention", "conv")


class RNNCellSpace(SearchSpace):
    """The ENAS recurrent cell (Pham et al., 2018, §2.2): a DAG of ``num_nodes`` nodes.

    Node 0 reads the step's input ``x_t`` and the previous hidden state; every
    later node ``i`` picks one earlier node as its input and each node picks an
    activation. The cell's output (the next hidden state) averages the loose
    ends, the nodes no other node reads.

    Decisions, in order: ``node0/act``, then ``node{i}/input`` and
    ``node{i}/act`` for ``i = 1 .. num_nodes - 1``.

    Args:
        num_nodes: Nodes of the cell (ENAS: 12 on Penn Treebank; 6 suit a CPU).
        activations: Candidate activations (a subset of :data:`RNN_ACTIVATIONS`).
        hidden_size: Width of the hidden state and of every node.
    """

    def __init__(self, num_nodes: int = 6, activations: Sequence[str] = RNN_ACTIVATIONS, hidden_size: int = 64) -> None:
        if int(num_nodes) < 1:
            raise ValueError(f"space.num_nodes must be >= 1, got {num_nodes}")
        check_choices("activations", list(activations))
        unknown = [a for a in activations if a not in RNN_ACTIVATIONS]
        if unknown:
            raise ValueError(
                f"space.activations={list(activations)} has unknown {unknown}; allowed: {list(RNN_ACTIVATIONS)}"
            )
        if int(hidden_size) < 1:
            raise ValueError(f"space.hidden_size must be >= 1, got {hidden_size}")
        # Every pair of nodes j < i has an edge of 2 * hidden^2 weights (node 0 reads x_t, about as wide).
        n, h = int(num_nodes), int(hidden_size)
        check_supernet_fits(
            (n * (n - 1) // 2 + 2) * 2 * h * h, f"space.num_nodes={num_nodes} and space.hidden_size={hidden_size}"
        )
        self.num_nodes = int(num_nodes)
        self.activations = tuple(activations)
        self.hidden_size = int(hidden_size)
        decisions = [Decision("node0/act", "activation", self.activations)]
        for i in range(1, self.num_nodes):
            decisions.append(Decision(f"node{i}/input", "input", tuple(f"node{j}" for j in range(i))))
            decisions.append(Decision(f"node{i}/act", "activation", self.activations))
        super().__init__(decisions)

    def cell(self, arch: Sequence[int]) -> tuple[list[int], list[str], list[int]]:
        """``(inputs, activations, loose_ends)``: node i reads node ``inputs[i]`` (-1: x_t and h_{t-1})."""
        values = self.validate(arch)
        inputs, acts = [-1], [self.activations[values[0]]]
        for i in range(1, self.num_nodes):
            inputs.append(values[2 * i - 1])
            acts.append(self.activations[values[2 * i]])
        read = set(inputs[1:])
        return inputs, acts, [i for i in range(self.num_nodes) if i not in read]

    def describe(self, arch: Sequence[int]) -> str:
        inputs, acts, loose = self.cell(arch)
        nodes = [f"{acts[0]}(x,h)"] + [f"{acts[i]}({inputs[i]})" for i in range(1, self.num_nodes)]
        return " | ".join(nodes) + f" -> avg{loose}"


class AttentionSpace(SearchSpace):
    """Transformer-encoder blocks with searched widths (as in AutoFormer, Chen et al., 2021).

    Each of ``num_layers`` pre-norm residual blocks chooses its token mixer
    (multi-head self-attention or a depthwise-separable 1-D convolution over
    time), its number of heads, the width ratio of its feed-forward network and
    that network's activation. Shared weights hold the widest choice; narrower
    ones use the leading slice.

    Decisions per layer ``l``: ``layer{l}/type``, ``layer{l}/heads``,
    ``layer{l}/ffn``, ``layer{l}/act`` (heads are ignored by a conv layer).

    Args:
        num_layers: Encoder blocks.
        d_model: Token width; every head count must divide it.
        heads: Candidate head counts.
        ffn_ratios: Candidate feed-forward widths, as multiples of ``d_model``.
        activations: Candidate feed-forward activations.
        layer_types: Candidate token mixers (``attention``, ``conv``).
        kernel_size: Kernel of the convolutional mixer.
    """

    def __init__(
        self,
        num_layers: int = 3,
        d_model: int = 64,
        heads: Sequence[int] = (1, 2, 4),
        ffn_ratios: Sequence[int] = (1, 2, 4),
        activations: Sequence[str] = ("relu", "gelu"),
        layer_types: Sequence[str] = LAYER_TYPES,
        kernel_size: int = 3,
    ) -> None:
        if int(num_layers) < 1:
            raise ValueError(f"space.num_layers must be >= 1, got {num_layers}")
        for key, given in (
            ("heads", heads),
            ("ffn_ratios", ffn_ratios),
            ("activations", activations),
            ("layer_types", layer_types),
        ):
            check_choices(key, list(given))
        bad_heads = [h for h in heads if int(h) < 1 or int(d_model) % int(h)]
        if bad_heads:
            raise ValueError(f"space.heads={list(heads)}: each must divide space.d_model={d_model}")
        if any(int(r) < 1 for r in ffn_ratios):  # an empty list is refused above
            raise ValueError(f"space.ffn_ratios={list(ffn_ratios)} must be positive integers")
        for key, given, allowed in (
            ("activations", activations, ATTENTION_ACTIVATIONS),
            ("layer_types", layer_types, LAYER_TYPES),
        ):
            unknown = [a for a in given if a not in allowed]
            if unknown:
                raise ValueError(f"space.{key}={list(given)} has unknown {unknown}; allowed: {list(allowed)}")
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ValueError(f"space.kernel_size must be odd and >= 1, got {kernel_size}")
        # Per block: attention (q, k, v and the projection: 4 d^2), the conv mixer (d * k + d^2) and the widest FFN.
        d = int(d_model)
        check_supernet_fits(
            int(num_layers) * (5 * d * d + d * int(kernel_size) + 2 * max(int(r) for r in ffn_ratios) * d * d),
            f"space.num_layers={num_layers}, space.d_model={d_model}, space.ffn_ratios={list(ffn_ratios)} "
            f"and space.kernel_size={kernel_size}",
        )
        self.num_layers, self.d_model, self.kernel_size = int(num_layers), int(d_model), int(kernel_size)
        self.heads = tuple(int(h) for h in heads)
        self.ffn_ratios = tuple(int(r) for r in ffn_ratios)
        self.activations = tuple(activations)
        self.layer_types = tuple(layer_types)
        decisions = []
        for layer in range(self.num_layers):
            decisions += [
                Decision(f"layer{layer}/type", "mixer", self.layer_types),
                Decision(f"layer{layer}/heads", "heads", tuple(str(h) for h in self.heads)),
                Decision(f"layer{layer}/ffn", "ffn", tuple(f"x{r}" for r in self.ffn_ratios)),
                Decision(f"layer{layer}/act", "activation", self.activations),
            ]
        super().__init__(decisions)

    def layers(self, arch: Sequence[int]) -> list[tuple[str, int, int, str]]:
        """Per layer ``(type, heads, ffn_ratio, activation)``."""
        v: Arch = self.validate(arch)
        return [
            (
                self.layer_types[v[4 * i]],
                self.heads[v[4 * i + 1]],
                self.ffn_ratios[v[4 * i + 2]],
                self.activations[v[4 * i + 3]],
            )
            for i in range(self.num_layers)
        ]

    def describe(self, arch: Sequence[int]) -> str:
        parts = []
        for kind, heads, ratio, act in self.layers(arch):
            mixer = f"attn{heads}h" if kind == "attention" else f"conv{self.kernel_size}"
            parts.append(f"{mixer}+ffn{ratio}x-{act}")
        return " | ".join(parts)
