"""Getting a found architecture out: deployable wrapper, ONNX/TorchScript export, parity, size, latency.

A :class:`Deployable` takes raw images in [0, 1] (the training statistics are
applied inside), so exported files need no preprocessing code beyond resizing.
Exports are checked against the PyTorch model on real inputs; a mismatch
raises :class:`ExportMismatchError` instead of leaving a silently wrong file.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rlnas.costs.latency import measure_ms
from rlnas.utils import write_bytes_atomic

#: Largest tolerated |exported - PyTorch| on the same inputs.
PARITY_ATOL = 1e-4


class ExportMismatchError(RuntimeError):
    """An exported model disagrees with the PyTorch model it came from."""


class Deployable(nn.Module):
    """A trained network with its input normalisation folded in.

    Args:
        network: ``forward(x) -> outputs`` on normalised inputs.
        mean: Per-channel mean the inputs were normalised with (per feature for sequences).
        std: Per-channel standard deviation.
        input_rank: Dims of an input batch: 4 for images (B, C, H, W), 3 for
            sequences (B, steps, features); it places the statistics.
    """

    def __init__(self, network: nn.Module, mean: Sequence[float], std: Sequence[float], input_rank: int = 4) -> None:
        super().__init__()
        self.network = network
        # Shaped once here: a branch on the input's rank would stop FX tracing (static int8).
        shape = stats_shape(input_rank)
        self.register_buffer("mean", torch.tensor(list(mean) or [0.0]).view(shape))
        self.register_buffer("std", torch.tensor(list(std) or [1.0]).view(shape))

    def forward(self, x: Tensor) -> Tensor:
        return self.network((x - self.mean) / self.std)


def stats_shape(rank: int) -> tuple[int, ...]:
    """How per-channel statistics broadcast over an input of ``rank`` dims.

    Images (B, C, H, W) have channels on dim 1; sequences (B, steps, features)
    on the last dim.
    """
    return (1, 1, -1) if rank == 3 else (1, -1, 1, 1)


def state_size_mb(model: nn.Module) -> float:
    """Bytes of the serialised state dict, in MB (10^6); counts quantised tensors at their real width."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


#: Timed calls behind each latency figure (the median is reported).
LATENCY_REPEATS = 31


def torch_latency_ms(model: nn.Module, example: Tensor) -> float:
    """Batch-1 latency of a PyTorch module on ``example``'s device (median)."""
    return measure_ms(lambda: model(example), example.device, repeats=LATENCY_REPEATS)


def onnx_latency_ms(session, example: Tensor) -> float:
    """Batch-1 latency of an onnxruntime session (median)."""
    feed = {"images": example.cpu().numpy()}
    return measure_ms(lambda: session.run(None, feed), torch.device("cpu"), repeats=LATENCY_REPEATS)


def export_onnx(model: nn.Module, example: Tensor, path: Path) -> None:
    """Writes ``model`` as ONNX with a dynamic batch axis (input ``images``, output ``outputs``)."""
    model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        # The TorchScript-based exporter needs no extra package (the dynamo one
        # needs onnxscript); it warns that it is no longer the default.
        warnings.simplefilter("ignore")
        buffer = io.BytesIO()
        torch.onnx.export(
            model,
            (example.cpu(),),
            buffer,
            input_names=["images"],
            output_names=["outputs"],
            dynamic_axes={"images": {0: "batch"}, "outputs": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    import onnx

    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    write_bytes_atomic(path, buffer)


def onnx_session(path: Path):
    """An onnxruntime CPU session of ``path``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_torchscript(model: nn.Module, example: Tensor, path: Path) -> None:
    """Writes ``model`` traced to TorchScript (the graph has no data-dependent control flow)."""
    model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example.cpu())
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.14 marks torch.jit.save deprecated in favour of torch.export; model.ts is still what
        # C++ (libtorch) and mobile runtimes load, and model.onnx is written beside it.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.save.* is deprecated", category=FutureWarning)
        torch.jit.save(traced, buffer)
    write_bytes_atomic(path, buffer)


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """Loads a TorchScript file on the CPU (quietly: torch announces the format's deprecation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu")


def check_parity(name: str, expected: Tensor, actual: np.ndarray | Tensor, atol: float = PARITY_ATOL) -> float:
    """Max |expected - actual|; raises :class:`ExportMismatchError` above ``atol``."""
    actual_t = torch.as_tensor(np.asarray(actual) if not isinstance(actual, Tensor) else actual).float()
    if actual_t.shape != expected.shape:
        raise ExportMismatchError(f"{name}: output shape {tuple(actual_t.shape)} != PyTorch {tuple(expected.shape)}")
    diff = float((actual_t - expected.float().cpu()).abs().max())
    if not diff <= atol:
        raise ExportMismatchError(f"{name}: max |diff| to PyTorch = {diff:.3g} > {atol:g}")
    return diff
