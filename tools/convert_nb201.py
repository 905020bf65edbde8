"""NAS-Bench-201's published results file -> the CSV table ``+benchmark=nb201_cifar10`` reads.

NAS-Bench-201 (Dong & Yang, ICLR 2020) publishes its results as one torch
pickle (``NAS-Bench-201-v1_0-e61699.pth``, ``NAS-Bench-201-v1_1-096897.pth``):
a dict with ``meta_archs`` (the 15,625 architecture strings, by index) and
``arch2infos`` (index -> ``{"less": ..., "full": ...}``: 12- and 200-epoch
results, each with ``all_results`` keyed by ``(dataset, seed)`` holding
``eval_acc1es`` such as ``{"ori-test@199": 94.1, ...}``, ``params`` and
``flop``). This tool writes one row per architecture: ``index``, ``arch`` and,
for each column below found in the file, the accuracy at the last epoch
averaged over the seeds::

    cifar10_test_acc      cifar10         ori-test   (what conf/benchmark/nb201_cifar10.yaml reads)
    cifar10_valid_acc     cifar10-valid   x-valid
    cifar100_valid_acc    cifar100        x-valid
    cifar100_test_acc     cifar100        x-test
    imagenet16_valid_acc  ImageNet16-120  x-valid
    imagenet16_test_acc   ImageNet16-120  x-test
    params_m, flops_m     cifar10         (millions)

Usage::

    python tools/convert_nb201.py NAS-Bench-201-v1_1-096897.pth --out nb201.csv
    RLNAS_NB201_CIFAR10=nb201.csv python -m rlnas +benchmark=nb201_cifar10

The file is a pickle. It is read with ``torch.load(weights_only=True)``
(numbers, strings, containers and NumPy scalars and arrays: no code runs); a
file that needs anything else names it, and ``--trust`` reads it with the full
unpickler, which runs whatever the file names: only for a file you trust.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import check_out_file, run_tool  # noqa: E402

#: Output column -> (dataset, evaluation split) of the results file.
COLUMNS = {
    "cifar10_test_acc": ("cifar10", "ori-test"),
    "cifar10_valid_acc": ("cifar10-valid", "x-valid"),
    "cifar100_valid_acc": ("cifar100", "x-valid"),
    "cifar100_test_acc": ("cifar100", "x-test"),
    "imagenet16_valid_acc": ("ImageNet16-120", "x-valid"),
    "imagenet16_test_acc": ("ImageNet16-120", "x-test"),
}


class ConvertError(ValueError):
    """The results file is not in NAS-Bench-201's format; the message says what is missing."""


def last_epoch_accuracy(result: Mapping[str, Any], split: str) -> float | None:
    """The accuracy on ``split`` at the last evaluated epoch (``split@EPOCH`` keys), or None."""
    accs = result.get("eval_acc1es") or {}
    epochs = [(int(k.rsplit("@", 1)[1]), v) for k, v in accs.items() if k.rsplit("@", 1)[0] == split and "@" in k]
    return float(max(epochs)[1]) if epochs else None


def arch_row(index: int, arch: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """One CSV row from an architecture's ``full`` (or ``less``) results."""
    results = info.get("all_results")
    if not isinstance(results, Mapping):
        raise ConvertError(f"architecture {index}: no all_results")
    row: dict[str, Any] = {"index": index, "arch": arch}
    for column, (dataset, split) in COLUMNS.items():
        values = [
            a
            for (ds, _seed), r in results.items()
            if ds == dataset
            for a in [last_epoch_accuracy(r, split)]
            if a is not None
        ]
        if values:
            row[column] = sum(values) / len(values)
    cifar = [r for (ds, _seed), r in results.items() if ds == "cifar10"]
    for column, field in (("params_m", "params"), ("flops_m", "flop")):
        values = [float(r[field]) for r in cifar if isinstance(r.get(field), (int, float)) and math.isfinite(r[field])]
        if values:
            row[column] = sum(values) / len(values)
    return row


def load_results(path: Path, trust: bool = False) -> Any:
    """The results file's object; without ``trust``, only data types are unpickled (no code runs).

    Raises:
        ConvertError: For an unreadable file, or one naming a type beyond data (and that type).
    """
    import numpy as np
    import torch

    if trust:
        loader = contextlib.nullcontext()
    else:
        # NumPy scalars and arrays are rebuilt from a dtype and bytes: data, like the containers torch allows.
        multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
        numpy_data = [multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype]
        numpy_data += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
        loader = torch.serialization.safe_globals(numpy_data)
    try:
        with loader:
            return torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as err:  # noqa: BLE001 - a truncated, foreign or crafted file raises many types
        named = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", str(err))
        if named:
            raise ConvertError(
                f"{path}: names {named.group(1)}, which is not data; read it with --trust only if you trust "
                "the file (the full unpickler runs what it names)"
            ) from None
        raise ConvertError(f"{path}: not a readable torch file ({type(err).__name__})") from None


def convert(path: Path, out: Path, which: str = "full", trust: bool = False) -> int:
    """Writes the CSV; returns the number of rows.

    Raises:
        ConvertError: Naming what the file lacks.
    """
    data = load_results(path, trust)
    if not isinstance(data, Mapping) or "meta_archs" not in data or "arch2infos" not in data:
        raise ConvertError(f"{path}: not a NAS-Bench-201 results file (needs meta_archs and arch2infos)")
    archs, infos = data["meta_archs"], data["arch2infos"]
    rows = []
    for index, arch in enumerate(archs):
        entry = infos.get(index)
        if entry is None:
            continue
        if which not in entry:
            raise ConvertError(f"{path}: architecture {index} has no {which!r} results (choose --which less|full)")
        rows.append(arch_row(index, str(arch), entry[which]))
        if (index + 1) % 1000 == 0:
            print(f"convert_nb201: {index + 1}/{len(archs)} architectures", file=sys.stderr)
    if not rows:
        raise ConvertError(f"{path}: no architecture has results")
    columns = ["index", "arch"] + [c for c in [*COLUMNS, "params_m", "flops_m"] if any(c in r for r in rows)]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    tmp.replace(out)
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="NAS-Bench-201 results file (.pth)")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    parser.add_argument(
        "--which",
        choices=("full", "less"),
        default="full",
        help="full: 200-epoch results (the published table); less: 12 epochs",
    )
    parser.add_argument(
        "--trust",
        action="store_true",
        help="read a file that names types beyond data with the full unpickler (it runs what the file names)",
    )
    args = parser.parse_args(argv)
    if not args.results.is_file():
        raise SystemExit(f"convert_nb201: error: {args.results}: no such file")
    check_out_file(args.out, "--out", None, (args.results,))  # the results file would be replaced by the table
    try:
        n = convert(args.results, args.out, args.which, args.trust)
    except ConvertError as err:
        raise SystemExit(f"convert_nb201: error: {err}") from None
    print(f"{args.out}: {n} architectures")


if __name__ == "__main__":
    run_tool(main)
