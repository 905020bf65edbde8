"""How well does the per-op latency table predict real latency?

Measures the LUT for the configured space and task on one device, then the
end-to-end batch-1 latency of >= 20 random standalone children, and prints the
predictor's mean absolute percentage error (MAPE).

    .venv/bin/python tools/profile_latency.py                      # classification space, CPU
    .venv/bin/python tools/profile_latency.py +task=detection --archs 30 --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import build_parts, check_out_file, run_tool, seed_arg  # noqa: E402

from rlnas.costs import LatencyTable, measure_ms  # noqa: E402
from rlnas.supernet import build_child  # noqa: E402
from rlnas.tasks import Network  # noqa: E402
from rlnas.utils import write_text_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. +task=detection space=macro_paper")
    parser.add_argument(
        "--archs", type=int, default=25, help="random architectures to time (>= 2; 20 or more for a stable figure)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--seed", type=seed_arg, default=0)
    parser.add_argument("--out", default="outputs/profile_latency.json")
    args = parser.parse_args()
    for flag, value, low in (("--archs", args.archs, 2), ("--repeats", args.repeats, 1)):
        if value < low:  # a correlation needs 2 architectures, a median 1 timing
            parser.error(f"{flag} must be >= {low}, got {value}")
    check_out_file(Path(args.out), "--out", ("device", "mape_pct", "rows"))
    _, device, space, task, data, model = build_parts(args.overrides, args.device, args.seed)
    shape = tuple(data.train.x.shape[1:])
    supernet, head = model.backbone, model.head
    table = LatencyTable.measure(supernet, head, shape, device, repeats=args.repeats)

    rng = np.random.default_rng(args.seed)
    rows = []
    x = torch.randn(1, *shape, device=device)
    print(f"{'arch':<70} {'predicted':>10} {'measured':>10} {'error':>7}")
    for _ in range(args.archs):
        arch = space.sample(rng)
        child = Network(build_child(space, arch, data.in_channels), task.build_head(supernet.out_channels, data))
        child = child.to(device).eval()
        measured = measure_ms(lambda child=child: child(x), device, repeats=args.repeats)
        predicted = table.predict(supernet.used_modules(arch))
        error = abs(predicted - measured) / measured
        rows.append(
            {"arch": list(arch), "predicted_ms": predicted, "measured_ms": measured, "abs_pct_error": 100 * error}
        )
        print(f"{space.describe(arch)[:70]:<70} {predicted:10.3f} {measured:10.3f} {100 * error:6.1f}%")
    mape = float(np.mean([r["abs_pct_error"] for r in rows]))
    corr = float(np.corrcoef([r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows])[0, 1])
    print(f"\nlatency predictor on {device}: MAPE {mape:.1f}% over {len(rows)} architectures, Pearson r {corr:.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        out, json.dumps({"device": str(device), "mape_pct": mape, "pearson_r": corr, "rows": rows}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    run_tool(main)
