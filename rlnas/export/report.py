"""What a retrain run reports: deployed variants scored on raw inputs, their table rows and ``report.md``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from rlnas.data.base import Split
from rlnas.export.formats import stats_shape


def denormalize(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """Normalised inputs back in raw [0, 1] units (what exported models take), on the CPU."""
    x = x.detach().cpu()
    if not mean:
        return x
    shape = stats_shape(x.dim())
    return x * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)


def raw_images(split: Split, mean: list[float], std: list[float], n: int) -> torch.Tensor:
    """The first ``n`` inputs of ``split`` in raw [0, 1] units."""
    return denormalize(split.x[:n], mean, std)


class RawInputs(nn.Module):
    """Evaluates a deployed model (raw-image input, CPU: quantised, ONNX) on a split's normalised inputs."""

    def __init__(self, fn: Callable[[torch.Tensor], Any], mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.fn = fn
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.fn(denormalize(x, self.mean, self.std))).to(x.device)


def variant_row(name: str, metrics: dict[str, float], params: int, size_mb: float, latency: float, **extra) -> dict:
    return {
        "variant": name,
        **{f"test_{k}": v for k, v in metrics.items()},
        "params": params,
        "size_mb": size_mb,
        "latency_ms": latency,
        **extra,
    }


def report_markdown(report: dict[str, Any]) -> str:
    """``report.md``: what was trained and one row per exported or compressed variant."""
    metric_keys = [k for k in report["variants"][0] if k.startswith("test_")]
    recipe, searched = report["recipe"], report.get("searched_settings") or {}
    lines = [
        f"# Retrained {report['task']} model",
        "",
        f"- Architecture: `{report['description']}`",
        f"- From: `{report['source']}` (init: {report['init']})",
        f"- Recipe: {recipe['epochs']} epochs, {recipe['optimizer']} lr {recipe['lr']:g}, "
        f"batch {recipe['batch_size']}, weight decay {recipe['weight_decay']:g}, "
        f"augment {recipe['augment']}",
        *(
            [f"- Training settings from the search: {', '.join(f'{k} {v}' for k, v in searched.items())}"]
            if searched
            else []
        ),
        f"- Validation during the search ({report.get('search_scored', 'shared weights')}): "
        + ", ".join(f"{k} {v:.4f}" for k, v in report["search_val"].items()),
        "- Validation after retraining: " + ", ".join(f"{k} {v:.4f}" for k, v in report["val"].items()),
        f"- Device: {report['device']}; latency is batch 1 on the CPU, median of 31; {report['seconds']:.0f} s in all",
        "",
        "| variant | " + " | ".join(metric_keys) + " | params | size (MB) | latency (ms) | notes |",
        "|---|" + "---|" * (len(metric_keys) + 4),
    ]
    for row in report["variants"]:
        notes = []
        if "max_abs_diff" in row:
            # No "|" in a cell: Markdown would take it for a column border.
            notes.append(f"largest difference to PyTorch {row['max_abs_diff']:.1e}")
        if "nonzero_params" in row:
            notes.append(f"{row['nonzero_params']:,} non-zero ({row['sparse_size_mb']:.3f} MB sparse)")
        if "mflops" in row:
            notes.append(f"{row['mflops']:.2f} MFLOPs")
        cells = [
            row["variant"],
            *(f"{row[k]:.4f}" for k in metric_keys),
            f"{row['params']:,}",
            f"{row['size_mb']:.3f}",
            f"{row['latency_ms']:.3f}",
            "; ".join(notes),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
