"""Compression of a trained network: int8 post-training quantisation and magnitude pruning."""

from __future__ import annotations

import copy
import logging
import warnings

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


def nonzero_params(model: nn.Module) -> int:
    """Parameters that are not exactly zero (what magnitude pruning leaves)."""
    return int(sum(int((p != 0).sum()) for p in model.parameters()))


def quantize_int8(model: nn.Module, calibration: Tensor, example: Tensor) -> nn.Module:
    """Static post-training int8 quantisation (torch.ao FX graph mode), calibrated on ``calibration``.

    Runs on the CPU, as torch's quantised kernels do. Weights are per-channel
    int8 and activations per-tensor uint8 (the backend's default qconfig).
    Networks FX cannot trace (a recurrent cell unrolled over a sequence of any
    length) get dynamic quantisation instead: int8 linear weights, activations
    quantised on the fly, the usual choice for RNNs and transformers.
    """
    from torch.ao.quantization import get_default_qconfig_mapping, quantize_dynamic
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "qnnpack"
    torch.backends.quantized.engine = engine
    float_model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao announces its move to torchao
        try:
            prepared = prepare_fx(float_model, get_default_qconfig_mapping(engine), (example.cpu(),))
        except Exception as err:  # noqa: BLE001 - FX raises several types for untraceable control flow
            log.info("static int8 needs a traceable network (%s); using dynamic int8", str(err).splitlines()[0])
            dynamic = quantize_dynamic(float_model, {nn.Linear}, dtype=torch.qint8)
            dynamic.int8_scheme = "dynamic"  # reports name the scheme
            return dynamic
        with torch.no_grad():
            for chunk in calibration.cpu().split(64):
                prepared(chunk)
        return convert_fx(prepared)


def prune_magnitude(model: nn.Module, amount: float) -> list[tuple[nn.Module, str]]:
    """Global L1 (magnitude) pruning of conv and linear weights with torch.nn.utils.prune.

    Returns the pruned (module, "weight") pairs; the masks stay attached so a
    fine-tune keeps pruned weights at zero, and :func:`finalize_pruning` makes
    them permanent.
    """
    from torch.nn.utils import prune

    if not 0 < amount < 1:
        raise ValueError(f"prune.amount must be in (0, 1), got {amount}")
    targets = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    return targets


def finalize_pruning(targets: list[tuple[nn.Module, str]]) -> None:
    """Folds the pruning masks into the weights (plain parameters again)."""
    from torch.nn.utils import prune

    for module, name in targets:
        prune.remove(module, name)
