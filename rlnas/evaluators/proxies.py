"""Zero-cost proxies: what an untrained network's structure says about how well it will train.

Shared weights misjudge some architectures in a consistent way (on the
embedded digits, the supernet overrates the first layer's operation), and a
proxy computed on the untrained standalone network errs differently, so the
final choice can rank by both (``search.final_proxy``, :func:`proxy_adjusted`).
``tools/rank_study.py`` measures each alone and together against standalone
training; ``tools/proxy_check.py`` checks SynFlow on NAS-Bench-201.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

#: Proxies ``search.final_proxy`` accepts.
PROXIES = ("synflow",)


def synflow(network: nn.Module, input_shape: Sequence[int]) -> float:
    """log SynFlow of a freshly initialised network (Tanaka et al., 2020; as a NAS proxy, Abdelfattah et al., 2021).

    The score sums, over every parameter, |theta| times the gradient of
    R = 1^T (prod_l |W_l|) 1: the network with every weight made positive, fed
    an all-ones input. It needs no data and no labels. Computed in double
    precision (the product over layers overflows float32) in eval mode, so
    BatchNorm with fresh statistics is the identity and dropout is off.

    Args:
        network: The standalone network as initialised (left unchanged: a copy is scored).
        input_shape: Shape of one input, without the batch dimension.

    Returns:
        The natural log of the score (a cell that cuts the input off scores far
        lower: only the layers after it count); -inf when no parameter reaches
        the output.
    """
    model = copy.deepcopy(network).cpu().double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    outputs = model(torch.ones(1, *input_shape, dtype=torch.double))
    total = sum(t.sum() for t in _tensors(outputs) if t.is_floating_point())
    if not isinstance(total, torch.Tensor) or not total.requires_grad:
        return -math.inf
    total.backward()
    with torch.no_grad():
        score = sum(float((p.grad * p).sum()) for p in model.parameters() if p.grad is not None)
    return math.log(score) if score > 0 and math.isfinite(score) else (math.inf if score > 0 else -math.inf)


def arch_synflow(space: Any, task: Any, data: Any, arch: Sequence[int], seed: int = 0) -> float:
    """:func:`synflow` of ``arch``'s standalone network (with the task's head), initialised from ``seed``.

    Initialised under its own seed and scored on the CPU, so a score depends
    on the architecture alone, not on the random state of the run around it.
    """
    from rlnas.tasks.training import standalone_network

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = standalone_network(space, task, data, arch)
    return synflow(network, tuple(data.train.x.shape[1:]))


def check_proxy(name: str, network: nn.Module) -> None:
    """Raises ValueError, naming ``search.final_proxy``, when ``name`` cannot score networks like ``network``.

    SynFlow's score is a sum of non-negative path products only when every
    layer keeps positive inputs positive (convolutions and linear layers with
    positive weights, ReLU, pooling, BatchNorm with fresh statistics). A
    LayerNorm or GroupNorm subtracts a mean computed from the input itself, so
    scores turn negative or meaningless (the attention space, the detection
    head).
    """
    norms = [type(m).__name__ for m in network.modules() if isinstance(m, (nn.LayerNorm, nn.GroupNorm))]
    if norms:
        raise ValueError(
            f"search.final_proxy={name} cannot rank these networks: their {norms[0]} subtracts a "
            "mean of its input, which SynFlow's positive paths do not allow; use search.final_proxy=null"
        )


def _tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor in a network output (a tensor, or dicts, lists and tuples of them)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def proxy_adjusted(values: Sequence[float], proxy: Sequence[float]) -> list[float]:
    """The scored values, reassigned so that their order is the mean of their rank and the proxy's rank.

    Ranking by the sum of two ranks weighs the two scorers equally whatever
    their units. The result keeps the metric's own values (the k-th best
    combined rank gets the k-th best measured value), so rewards with cost
    penalties or hard limits still see a value of the metric's scale. Ties of
    the combined rank keep the order of ``values``.

    Args:
        values: The metric of each candidate (higher is better).
        proxy: The proxy of each candidate (higher is better; NaN counts as worst).

    Returns:
        The values in the combined order, one per candidate.
    """
    v = np.asarray(values, dtype=float)
    if len(v) != len(proxy):
        raise ValueError(f"{len(v)} values but {len(proxy)} proxy scores")
    if len(v) < 2:
        return v.tolist()
    p = np.nan_to_num(np.asarray(proxy, dtype=float), nan=-np.inf)
    from scipy.stats import rankdata  # here: a second of import the search needs only at its end

    combined = rankdata(v) + rankdata(p)
    order = np.lexsort((v, combined))  # worst first; ties by the measured value
    out = np.empty_like(v)
    out[order] = np.sort(v)
    return out.tolist()
