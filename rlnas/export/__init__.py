"""Retrained networks out of the search: export formats, parity checks, compression, latency.

The command-line entry points are :mod:`rlnas.retrain` and :mod:`rlnas.predict`.
"""

from rlnas.export.compress import finalize_pruning, nonzero_params, prune_magnitude, quantize_int8
from rlnas.export.formats import (
    PARITY_ATOL,
    Deployable,
    ExportMismatchError,
    check_parity,
    export_onnx,
    export_torchscript,
    load_torchscript,
    onnx_latency_ms,
    onnx_session,
    state_size_mb,
    stats_shape,
    torch_latency_ms,
)

__all__ = [
    "PARITY_ATOL",
    "Deployable",
    "ExportMismatchError",
    "check_parity",
    "export_onnx",
    "export_torchscript",
    "finalize_pruning",
    "load_torchscript",
    "nonzero_params",
    "onnx_latency_ms",
    "onnx_session",
    "prune_magnitude",
    "quantize_int8",
    "state_size_mb",
    "stats_shape",
    "torch_latency_ms",
]
